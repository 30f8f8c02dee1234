"""The model card (``model_card.json`` next to the weights): what a model is, how it was trained,
which alignment pipeline it selects, and what the benchmarks measured with it.

Every entry comes from a command: ``geoalign train`` writes the card from scratch
(:func:`training_card`); benchmark commands add their figures under ``"benchmarks"`` through
:func:`record_benchmark`, each with the command that measures it. Nothing is written by hand.

The pipeline entries ``geoalign align`` follows (:mod:`geoalign.align.resolve`):

* ``align_pipeline`` — ``"learned"`` (the chain alone) or ``"local+learned"`` (the classical
  local-offset search, then the chain on its residual);
* ``combination.learned_scales`` — the chain's scales that run behind the classical stage;
* ``combination.pick_scales`` — the chain's scales of a second proposal behind the classical
  stage, picked building by building by the image's edges (:mod:`geoalign.inference.pick`);
* ``chain_scales`` — the scales the chain alone (``align_pipeline`` ``"learned"``, or ``align
  --method learned``) runs, coarse to fine; a scale listed twice runs twice, each run reaching
  another ``range_px`` pixels of the scale (absent: each of ``scales`` coarser than 1 twice,
  the others once, :func:`~geoalign.model.chain.chain_alone_scales`);
* ``realign_with`` — what realigned the training maps between rounds;
* ``smooth_sigma_px`` — the parameter-free smoothing layer of the chain (pixels of each scale).
"""

from __future__ import annotations

import json
from pathlib import Path

from geoalign.io.atomic import atomic_path

CARD = "model_card.json"
PIPELINES = ("learned", "local+learned")


def write_card(model_dir: str | Path, card: dict) -> Path:
    """Write (atomically) ``model_card.json``."""
    path = Path(model_dir) / CARD
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(card, indent=2, default=str) + "\n")
    return path


def read_card(model_dir: str | Path) -> dict:
    path = Path(model_dir) / CARD
    return json.loads(path.read_text()) if path.exists() else {}


def training_card(*, chain, gsd_m: float, training: dict, held_out: dict, metrics: dict,
                  align_pipeline: str, learned_scales: tuple[int, ...] | None, realign_with: str,
                  command: str, pick_scales: tuple[int, ...] | None = None,
                  chain_scales: tuple[int, ...] | None = None) -> dict:
    """The card ``geoalign train`` writes: the chain's figures (computed from ``chain``), the
    pipeline it selects, and how it was trained (``command``: the command line)."""
    from geoalign.model.scale_net import count_parameters, flops_per_megapixel

    card = {
        "model": "geoalign chained multiscale alignment network",
        "gsd_m": gsd_m, "scales": list(chain.config.scales), "shared_weights": chain.config.shared,
        "parameters": count_parameters(chain),
        "parameters_per_scale_net": count_parameters(chain.net(chain.config.scales[0])),
        "flops_per_megapixel_per_scale": flops_per_megapixel(chain.config.net),
        **({"scale_nets": {str(s): {"parameters": count_parameters(chain.net(s)),
                                    "flops_per_megapixel": flops_per_megapixel(c), **c.to_json()}
                           for s, c in chain.config.scale_nets}} if chain.config.scale_nets else {}),
        "context_px": chain.context_px, "smooth_sigma_px": chain.config.smooth_sigma_px,
        "align_pipeline": align_pipeline, "realign_with": realign_with,
        "training_command": command, "training": training, "held_out": held_out, "metrics": metrics,
    }
    if chain_scales:
        card["chain_scales"] = list(chain_scales)
    if align_pipeline == "local+learned":
        scales = list(learned_scales) if learned_scales else list(chain.config.scales)
        card["combination"] = {"learned_scales": scales}
        if pick_scales:
            card["combination"]["pick_scales"] = list(pick_scales)
    return card


def record_benchmark(model_dir: str | Path, name: str, figures: dict, *, command: str) -> Path:
    """Add (or replace) one benchmark's figures on the card: ``card["benchmarks"][name]``, with the
    ``command`` that measures them."""
    card = read_card(model_dir)
    card.setdefault("benchmarks", {})[name] = {"command": command, **figures}
    return write_card(model_dir, card)
