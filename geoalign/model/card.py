"""The model card: what a shipped model was trained on and how well it does (JSON next to weights)."""

from __future__ import annotations

import json
from pathlib import Path

from geoalign.io.atomic import atomic_path

CARD = "model_card.json"


def write_card(model_dir: str | Path, card: dict) -> Path:
    """Write (atomically) ``model_card.json``: data, scales, GSD, parameters, metrics, held-out regions."""
    path = Path(model_dir) / CARD
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(card, indent=2, default=str))
    return path


def read_card(model_dir: str | Path) -> dict:
    path = Path(model_dir) / CARD
    return json.loads(path.read_text()) if path.exists() else {}


def update_card(model_dir: str | Path, **entries) -> Path:
    card = read_card(model_dir)
    card.update(entries)
    return write_card(model_dir, card)
