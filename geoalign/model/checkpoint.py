"""Model folders: ``config.json`` (versioned) + ``weights.pt`` (a plain state_dict).

Weights are read with ``torch.load(weights_only=True)`` (no pickled code runs). Anything wrong,
a missing file, a truncated or foreign weights file, another format version, mismatching tensor
shapes, raises :class:`geoalign.errors.CheckpointError` saying what to do.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from geoalign.errors import CheckpointError
from geoalign.io.atomic import atomic_path
from geoalign.io.versioned_json import read_versioned_json
from geoalign.model.chain import Chain, ChainConfig

FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "weights.pt"


def save_model(chain: Chain, model_dir: str | Path, *, gsd_m: float | None, extra: dict | None = None) -> Path:
    """Write the chain's weights and config into ``model_dir`` (each file atomically)."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / WEIGHTS) as tmp:
        torch.save({k: v.detach().cpu() for k, v in chain.state_dict().items()}, tmp)
    config = {"format_version": FORMAT_VERSION, "kind": "geoalign-chain", "gsd_m": gsd_m,
              "chain": chain.config.to_json(), **(extra or {})}
    with atomic_path(model_dir / CONFIG) as tmp:
        Path(tmp).write_text(json.dumps(config, indent=2))
    return model_dir


def check_model_dir_writable(model_dir: str | Path, *, inputs=()) -> None:
    """Refuse a model folder whose weights, config or card geoalign did not write (or that is an
    input): training replaces those three files."""
    from geoalign.io.guard import OutputNotOursError, refuse_folder_over_input
    from geoalign.model.card import CARD

    model_dir = Path(model_dir)
    names = (WEIGHTS, CONFIG, CARD)
    refuse_folder_over_input(model_dir, names, inputs)
    present = [n for n in names if (model_dir / n).exists()]
    if not present:
        return
    try:
        ours = json.loads((model_dir / CONFIG).read_text()).get("kind") == "geoalign-chain"
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise OutputNotOursError(f"{model_dir / present[0]} exists and was not written by geoalign; "
                                 "choose a new or empty model folder.")


def read_config(model_dir: str | Path) -> dict:
    model_dir = Path(model_dir)
    path = model_dir / CONFIG
    return read_versioned_json(
        path, version=FORMAT_VERSION, error=CheckpointError, kind="geoalign-chain",
        missing=f"{model_dir}: not a geoalign model folder (no {CONFIG}); pass the folder written by "
                "`geoalign train -o`.",
        corrupt=f"{path}: corrupt model config; re-train or re-download the model.",
        mismatch=f"{path}: model format version {{found}} is not supported by this geoalign (expects "
                 "{expected}); use a matching geoalign or re-train the model.")


def read_chain_config(model_dir: str | Path, config: dict | None = None) -> ChainConfig:
    """The chain's configuration in ``config.json`` (``config``: that file, already read); reads
    no weights, so what a model runs can be decided before it is loaded."""
    config = read_config(model_dir) if config is None else config
    try:
        return ChainConfig.from_json(config["chain"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{Path(model_dir) / CONFIG}: invalid chain config ({e}).") from e


def load_model(model_dir: str | Path) -> tuple[Chain, dict]:
    """Rebuild the chain from ``config.json`` and load ``weights.pt`` into it (eval mode)."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    chain = Chain(read_chain_config(model_dir, config))
    path = model_dir / WEIGHTS
    if not path.exists():
        raise CheckpointError(f"{model_dir}: weights file {WEIGHTS} is missing.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's text would advise loading it unsafely: never
        raise CheckpointError(f"{path}: holds pickled Python objects, not only tensors (loading "
                              "them could run code); refused. Re-train or restore the model.") from None
    except Exception as e:  # torch raises many kinds for truncated/foreign files
        raise CheckpointError(f"{path}: corrupt or unreadable weights ({type(e).__name__}); "
                              "re-train or restore the model.") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: weights are not a state_dict.")
    try:
        chain.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the config (incompatible model): "
                              f"{str(e).splitlines()[0]}") from e
    chain.eval()
    return chain, config
