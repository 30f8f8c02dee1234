"""``geoalign train``'s logic: synthetic pre-training, then realignment rounds on a built dataset.

Stages, each resumable (a kill loses at most ``checkpoint_every`` steps):

1. ``pretrain``: ``pretrain_steps`` on procedurally rendered cities (:mod:`geoalign.synthetic`),
   validated on the dataset's held-out pairs (what synthetic data alone buys on real imagery);
2. ``round{r}`` for r < rounds: train on D_r (+ synthetic pairs at ``synthetic_weight``), then
   realign the original maps of D0 → D_{r+1} (:func:`geoalign.train.realign.realign_rounds`).

The final model (weights + config + model card) is written to ``model_dir``; checkpoints, histories
and realigned maps live in ``work_dir``. The card (:func:`geoalign.model.card.training_card`) also
records the pipeline ``geoalign align`` runs with the model (``align_pipeline``,
``combination.learned_scales``) and the smoothing layer added to the trained chain
(``smooth_sigma_px``: parameter-free, so it is set after training, not learned).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from geoalign.dataset import DatasetConfig, SourcePair
from geoalign.dataset.build import MANIFEST
from geoalign.dataset.torch_dataset import read_manifest
from geoalign.errors import OptionError
from geoalign.model.card import PIPELINES, read_card, training_card, write_card
from geoalign.model.chain import Chain, ChainConfig
from geoalign.model.checkpoint import check_model_dir_writable, load_model, save_model
from geoalign.model.threads import torch_threads
from geoalign.synthetic import build_synthetic_dataset
from geoalign.train.distributed import is_main, on_main, rank_rows
from geoalign.train.realign import CascadeSets, realign_rounds
from geoalign.train.round_similarity import collect_rounds
from geoalign.train.trainer import STATE, TrainConfig, TrainSet, load_state, train_chain


def dataset_sources(dataset_dir: str | Path) -> tuple[list[SourcePair], DatasetConfig]:
    """The sources and pair-generation config a dataset was built from (its manifest)."""
    manifest = read_manifest(dataset_dir)
    cfg = dict(manifest["config"])
    cfg["scales"], cfg["channels"] = tuple(cfg["scales"]), tuple(cfg["channels"])
    cfg["gsd_m"] = manifest["gsd_m"]
    sources = [SourcePair(Path(s["image"]), Path(s["buildings_path"]), s["split"]) for s in manifest["sources"]]
    return sources, DatasetConfig(**cfg)


def train_model(
    dataset_dir: str | Path, model_dir: str | Path, *, work_dir: str | Path | None = None, rounds: int = 3,
    steps: int = 500, pretrain_steps: int = 500, synthetic_pairs: int = 3000, synthetic_weight: float = 0.3,
    seed: int = 0, threads: int = 1, batch_size: int = 12, resume: bool = False, progress: bool = True,
    chain_config: ChainConfig = ChainConfig(), realign_with: str = "learned",
    align_pipeline: str = "local+learned", learned_scales: tuple[int, ...] | None = (1,),
    pick_scales: tuple[int, ...] | None = None, chain_scales: tuple[int, ...] | None = None,
    smooth_sigma_px: float = 6.0, command: str = "",
    cascade_weight: float = 0.0,
    cascade_dataset: str | Path | None = None, init_model: str | Path | None = None,
    per_scale_nets: bool = False, train_scales: tuple[int, ...] | None = None, realign_smooth_px: float = 0.0,
    realign_symmetries: int = 1, widen_nets: tuple[tuple[int, int, int], ...] = (), average_tail: float = 0.0,
    rounds_lr: float | None = None,
) -> dict:
    """Train a chain on a built dataset; returns the model card.

    ``realign_with``: what realigns D0 between rounds (:func:`geoalign.train.realign.realign_rounds`);
    ``align_pipeline``, ``learned_scales``, ``pick_scales`` and ``chain_scales`` (the chain alone's
    scales, a scale given twice running twice): the pipeline the card selects for ``geoalign align``;
    ``smooth_sigma_px``: the smoothing layer of the saved chain; ``command``: the command line,
    recorded on the card; ``cascade_weight`` > 0: cascade pairs at ``learned_scales`` (the
    classical stage's residual, :mod:`geoalign.dataset.cascade`) join every round's mixture, cut
    from that round's maps (``cascade_dataset``: those of D0, already built by ``geoalign dataset
    build --cascade``, whose settings the later rounds reuse); ``init_model``: a model folder whose
    weights (and chain configuration) training starts from; ``per_scale_nets``: one network per
    scale (a shared one of ``init_model`` is copied to every scale); ``train_scales``: only pairs
    at these scales are drawn, so with per-scale networks only theirs train (None: all);
    ``realign_smooth_px`` > 0: the realigning field is averaged over neighbouring buildings within
    that many pixels, ``realign_symmetries`` > 1 over that many rotations/flips of each tile
    (:func:`geoalign.train.realign.realigner`); ``widen_nets``: (scale, features, hidden) of
    networks made wider before training (:meth:`~geoalign.model.chain.Chain.widened`);
    ``average_tail`` > 0: each realignment round ends on the mean weights of that last fraction of
    its steps (:mod:`geoalign.train.averaging`); ``rounds_lr``: the rounds' peak learning rate
    (None: pretraining's, :attr:`TrainConfig.lr`)."""
    if not 0.0 <= average_tail <= 1.0:
        raise OptionError(f"average_tail must be within [0, 1], got {average_tail}")
    if rounds_lr is not None and not rounds_lr > 0:
        raise OptionError(f"rounds_lr must be positive, got {rounds_lr}")
    if align_pipeline not in PIPELINES:
        raise OptionError(f"align_pipeline must be one of {PIPELINES}, got {align_pipeline!r}")
    rank_rows(batch_size)  # every process needs rows of each batch: checked before any work
    with torch_threads(threads):
        return _train(dataset_dir, model_dir, work_dir=work_dir, rounds=rounds, steps=steps,
                      pretrain_steps=pretrain_steps, synthetic_pairs=synthetic_pairs,
                      synthetic_weight=synthetic_weight, seed=seed, threads=threads, batch_size=batch_size,
                      resume=resume, progress=progress, chain_config=chain_config, realign_with=realign_with,
                      align_pipeline=align_pipeline, learned_scales=learned_scales, pick_scales=pick_scales,
                      chain_scales=chain_scales, smooth_sigma_px=smooth_sigma_px, command=command,
                      cascade_weight=cascade_weight,
                      cascade_dataset=cascade_dataset, init_model=init_model, per_scale_nets=per_scale_nets,
                      train_scales=tuple(train_scales or ()), realign_smooth_px=realign_smooth_px,
                      realign_symmetries=realign_symmetries, widen_nets=tuple(widen_nets),
                      average_tail=average_tail, rounds_lr=rounds_lr)


def initial_chain(chain_config: ChainConfig, init_model: str | Path | None, per_scale_nets: bool,
                  train_scales: tuple[int, ...], widen_nets: tuple[tuple[int, int, int], ...] = (),
                  seed: int = 0) -> Chain:
    """The chain training starts from: ``init_model``'s weights without its smoothing layer, or
    fresh ones; untied into one network per scale with ``per_scale_nets``; the networks of
    ``widen_nets`` (scale, features, hidden) made wider, starting from what they compute."""
    if init_model is not None:
        chain = load_model(init_model)[0].copy_with(smooth_sigma_px=0.0).train()
        if per_scale_nets:
            chain = chain.untied()
    else:
        chain = Chain(replace(chain_config, shared=chain_config.shared and not per_scale_nets))
    for scale, features, hidden in widen_nets:
        chain = chain.widened(scale, features, hidden, seed=seed)
    unknown = sorted(set(train_scales) - set(chain.config.scales))
    if unknown:
        raise OptionError(f"train scales {unknown} are not scales of the chain {list(chain.config.scales)}")
    return chain


def steps_seconds(pre_hist: list[dict], round_metrics: list[dict]) -> float:
    """Seconds spent in training steps, pre-training and every round, over all invocations of a
    resumed run (each stage's history carries its own clock across resumes)."""
    stages = [pre_hist[-1] if pre_hist else {}] + [m.get("val", {}) for m in round_metrics]
    return float(sum(h.get("time_s", 0.0) for h in stages))


def cascade_sets(dataset_config: DatasetConfig, weight: float, learned_scales: tuple[int, ...],
                 cascade_dataset: str | Path | None) -> CascadeSets | None:
    """What ``cascade_weight`` and ``cascade_dataset`` of :func:`train_model` ask for."""
    if weight <= 0:
        return None
    if cascade_dataset is None:
        return CascadeSets(replace(dataset_config, scales=tuple(learned_scales), cascade="local"), weight)
    _, config = dataset_sources(cascade_dataset)
    if config.cascade is None:
        raise OptionError(f"{cascade_dataset} holds plain pairs: build cascade pairs with "
                          "`geoalign dataset build --cascade local`.")
    return CascadeSets(config, weight, Path(cascade_dataset))


def _train(dataset_dir, model_dir, *, work_dir, rounds, steps, pretrain_steps, synthetic_pairs, synthetic_weight,
           seed, threads, batch_size, resume, progress, chain_config, realign_with, align_pipeline,
           learned_scales, pick_scales, chain_scales, smooth_sigma_px, command, cascade_weight, cascade_dataset,
           init_model, per_scale_nets, train_scales, realign_smooth_px, realign_symmetries, widen_nets, average_tail,
           rounds_lr) -> dict:
    dataset_dir, model_dir = Path(dataset_dir), Path(model_dir)
    check_model_dir_writable(model_dir, inputs=[dataset_dir / MANIFEST])
    work_dir = Path(work_dir) if work_dir else Path("runs") / model_dir.name
    work_dir.mkdir(parents=True, exist_ok=True)
    sources, dcfg = dataset_sources(dataset_dir)
    cascade = cascade_sets(dcfg, cascade_weight, tuple(learned_scales or (1,)), cascade_dataset)
    torch.manual_seed(seed)
    chain = initial_chain(chain_config, init_model, per_scale_nets, train_scales, widen_nets, seed)
    start = time.perf_counter()
    base = TrainConfig(batch_size=batch_size, seed=seed, threads=threads, train_scales=train_scales)
    extra: list[TrainSet] = []
    pre_hist: list[dict] = []
    if pretrain_steps > 0:
        synth = work_dir / "synthetic"
        if on_main(lambda: not (synth / MANIFEST).exists()):  # one answer for every rank
            on_main(build_synthetic_dataset, synth, n_train=synthetic_pairs, n_val=200, patch_px=dcfg.patch_px,
                    seed=seed, progress=progress)  # rank 0 builds, the others wait
        pcfg = TrainConfig(**{**base.to_json(), "steps": pretrain_steps, "val_every": 100, "val_pairs": 64})
        pdir = work_dir / "pretrain"
        if resume and (pdir / STATE).exists() and int(load_state(pdir / STATE)["step"]) >= pretrain_steps:
            chain.load_state_dict(load_state(pdir / STATE)["model"])
            pre_hist = [json.loads(x) for x in (pdir / "history.jsonl").read_text().splitlines() if x.strip()]
        else:
            pre_hist = train_chain(chain, [TrainSet(synth)], pdir, pcfg, val_root=dataset_dir, resume=resume,
                                   progress=progress)
        if synthetic_weight > 0:
            extra.append(TrainSet(synth, synthetic_weight, "synthetic"))
    rcfg = TrainConfig(**{**base.to_json(), "steps": steps, "val_every": 100, "val_pairs": 64,
                          "average_tail": average_tail, "lr": rounds_lr or base.lr})
    chain, round_metrics = realign_rounds(
        sources, work_dir / "rounds", rounds=rounds, dataset_config=dcfg, train_config=rcfg, chain=chain,
        extra_sets=extra, val_root=dataset_dir, resume=resume, progress=progress, first_dataset=dataset_dir,
        realign_with=realign_with, learned_scales=tuple(learned_scales or (1,)), cascade=cascade,
        realign_smooth_px=realign_smooth_px, realign_symmetries=realign_symmetries,
    )
    if smooth_sigma_px > 0:
        chain = chain.copy_with(smooth_sigma_px=float(smooth_sigma_px))
    if is_main():  # rank 0 writes the model folder (every rank holds the same weights)
        save_model(chain, model_dir, gsd_m=dcfg.gsd_m)
    card = training_card(
        chain=chain, gsd_m=dcfg.gsd_m, align_pipeline=align_pipeline, learned_scales=learned_scales,
        pick_scales=pick_scales, chain_scales=chain_scales, realign_with=realign_with, command=command,
        training={"dataset": str(dataset_dir), "sources": [s.to_json() for s in sources],
                  "dataset_config": dcfg.to_json(), "pretrain_steps": pretrain_steps,
                  "synthetic_pairs": synthetic_pairs, "synthetic_weight": synthetic_weight,
                  "steps_per_round": steps, "rounds": rounds, "seed": seed, "threads": threads,
                  "realign_smooth_px": realign_smooth_px, "realign_symmetries": realign_symmetries,
                  "cascade": None if cascade is None else {"weight": cascade.weight,
                                                           "dataset_config": cascade.config.to_json()},
                  "init_model": None if init_model is None else str(init_model),
                  "init_model_training_command": read_card(init_model).get("training_command")
                  if init_model is not None else None,
                  "train_scales": list(train_scales) or list(chain.config.scales),
                  "widen_nets": [list(w) for w in widen_nets], "average_tail": average_tail,
                  "rounds_lr": rcfg.lr,
                  "wall_s_this_invocation": time.perf_counter() - start,
                  "train_steps_s_total": steps_seconds(pre_hist, round_metrics)},
        held_out={"val_sources": [str(s.image) for s in sources if s.split == "val"],
                  "east_strip_fraction_of_each_train_source": dcfg.holdout_fraction},
        metrics={"pretrain_last": pre_hist[-1] if pre_hist else None,
                 "rounds": [{k: v for k, v in m.items() if k != "next_sources"} for m in round_metrics]},
    )
    if is_main():
        write_card(model_dir, card)
        from geoalign.report.stats import compute_training_stats  # what align --report scores tiles against
        compute_training_stats(model_dir, dataset_dir, seed=seed, threads=threads)
        collect_rounds(work_dir / "rounds", model_dir, rounds)  # similarity histograms of every round
    return card


def export_latest(work_dir: str | Path, model_dir: str | Path, *, gsd_m: float | None) -> Path:
    """Write the newest training checkpoint of an unfinished run as a model folder (an intermediate model).

    Looks at the last round's checkpoint, else the pre-training one.
    """
    work_dir = Path(work_dir)
    ordered = list(reversed(sorted((work_dir / "rounds").glob("round*/train/" + STATE)))) + [work_dir / "pretrain" / STATE]
    for path in ordered:
        if path.exists():
            st = load_state(path)
            chain = Chain(ChainConfig.from_json(json.loads(st["chain_config"])))
            chain.load_state_dict(st["model"])
            save_model(chain, model_dir, gsd_m=gsd_m, extra={"intermediate": {"checkpoint": str(path), "step": int(st["step"])}})
            return path
    raise FileNotFoundError(f"no training checkpoint under {work_dir}")
