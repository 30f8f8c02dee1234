"""Training the chain's scale networks on dataset pairs (resumable, seeded, on a CPU budget).

Each step draws one training set (by weight), one of its scales, a batch of pairs, and trains the
network of that scale (with a scale-shared chain, the one network). Every random draw of a step
comes from ``numpy.random.default_rng([seed, step])``, so a run killed and resumed from its last
checkpoint replays exactly the batches an uninterrupted run would have seen; with several processes
(:mod:`geoalign.train.distributed`) each computes its rows of that batch, so any process count resumes it.

Loss: mean squared field error over the pixels where the field is observable (around the true or
misaligned buildings: "over the pixels of the map", Zampieri et al., ECCV 2018), plus ``seg_weight`` × the
building-segmentation cross-entropy of the auxiliary head. Validation: median end-point error at
the misaligned map's edge pixels (where polygon vertices sit) against the predict-zero error.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from geoalign.dataset import PairDataset
from geoalign.dataset.torch_dataset import read_manifest
from geoalign.errors import CheckpointError, EmptyInputError
from geoalign.io.atomic import atomic_path
from geoalign.model.chain import Chain
from geoalign.model.threads import torch_threads
from geoalign.progress import progress as progress_bar
from geoalign.synthetic.pairs import is_synthetic_dataset
from geoalign.train.averaging import TailAverage
from geoalign.train.distributed import (agree_on_step, augment_rows, data_parallel, is_main, mean_over_ranks,
                                        on_main, rank_rows)

log = logging.getLogger(__name__)

STATE = "train_state.pt"
HISTORY = "history.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    batch_size: int = 12
    crop_px: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    seg_weight: float = 0.3
    checkpoint_every: int = 50
    val_every: int = 200  # an "epoch": validation metrics are logged every val_every steps
    val_pairs: int = 96
    seed: int = 0
    threads: int = 1
    augment: bool = True
    train_scales: tuple[int, ...] = ()  # scales whose pairs are drawn (their networks train); (): all
    average_tail: float = 0.0  # the run ends on the mean weights of this last fraction of its steps (0: the last step's)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainSet:
    """One dataset folder in the training mixture, drawn with probability ∝ ``weight``."""

    root: Path
    weight: float = 1.0
    name: str = ""


def observable_weight(map_mis: torch.Tensor, map_true: torch.Tensor, valid: torch.Tensor, radius_px: int = 3) -> torch.Tensor:
    """Where the field can be seen: near either map's buildings, inside the valid image."""
    near = torch.maximum(map_mis[:, 0:1], map_true[:, 0:1])
    near = torch.maximum(near, torch.maximum(map_mis[:, 1:2], map_true[:, 1:2]))
    near = F.max_pool2d(near, 2 * radius_px + 1, stride=1, padding=radius_px)[:, 0]
    return valid * (0.02 + near)


def batch_loss(net, batch: dict[str, torch.Tensor], seg_weight: float,
               denominator=lambda sums: sums) -> tuple[torch.Tensor, dict]:
    """``denominator``: maps this batch's weight sums to the ones the loss divides by (with several
    processes, the global batch's: :func:`geoalign.train.distributed.mean_over_ranks`)."""
    pred, seg = net(batch["image"], batch["map"])
    w = observable_weight(batch["map"], batch["map_true"], batch["valid"])
    w_sum, v_sum = denominator(torch.stack([w.sum(), batch["valid"].sum()]).detach())
    se = ((pred - batch["field"]) ** 2).sum(1)
    field_loss = (w * se).sum() / w_sum.clamp_min(1e-6)
    zero_loss = (w * (batch["field"] ** 2).sum(1)).sum() / w_sum.clamp_min(1e-6)
    v = batch["valid"]
    bce = F.binary_cross_entropy_with_logits(seg[:, 0], (batch["map_true"][:, 0] > 0.5).float(), reduction="none")
    seg_loss = (bce * v).sum() / v_sum.clamp_min(1.0)
    return field_loss + seg_weight * seg_loss, {"field": float(field_loss.detach()), "zero": float(zero_loss), "seg": float(seg_loss.detach())}


def _collate(ds: PairDataset, idx: Sequence[int]) -> dict[str, torch.Tensor]:
    items = [ds[int(i)] for i in idx]
    return {k: torch.stack([it[k] for it in items]) for k in ("image", "map", "map_true", "valid", "field")}


@torch.no_grad()
def evaluate_pairs(net, ds: PairDataset, n_pairs: int, seed: int = 1234) -> dict:
    """Median end-point error (px of the pairs' scale) at misaligned-map edge pixels, vs predict-zero."""
    if len(ds) == 0:
        return {}
    idx = np.random.default_rng(seed).permutation(len(ds))[:n_pairs]
    errs, zeros = [], []
    for start in range(0, len(idx), 16):
        b = _collate(ds, idx[start:start + 16])
        pred, _ = net(b["image"], b["map"])
        at = (b["map"][:, 1] > 0.5) & (b["valid"] > 0.5)
        errs.append(torch.linalg.vector_norm(pred - b["field"], dim=1)[at].numpy())
        zeros.append(torch.linalg.vector_norm(b["field"], dim=1)[at].numpy())
    e, z = np.concatenate(errs), np.concatenate(zeros)
    if e.size == 0:
        return {}
    return {"median_epe_px": float(np.median(e)), "median_zero_px": float(np.median(z)),
            "mean_epe_px": float(e.mean()), "mean_zero_px": float(z.mean()),
            "frac_le_0p5px": float((e <= 0.5).mean()), "n_pixels": int(e.size)}


def _lr(config: TrainConfig, step: int) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    t = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def save_state(path: Path, chain: Chain, opt: torch.optim.Optimizer, step: int, elapsed_s: float, config: TrainConfig,
               average: TailAverage | None = None) -> None:
    """Weights + optimizer + step + torch RNG (+ the tail average so far), atomically (a kill never
    leaves half a checkpoint)."""
    state = {"model": chain.state_dict(), "optimizer": opt.state_dict(), "step": step,
             "elapsed_s": elapsed_s, "torch_rng": torch.get_rng_state(),
             "chain_config": json.dumps(chain.config.to_json()), "train_config": json.dumps(config.to_json())}
    if average is not None and average.count:
        state["average"] = average.state_dict()
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: corrupt training checkpoint ({type(e).__name__}); "
                              "delete it to restart the run from scratch.") from e


def train_chain(
    chain: Chain, train_sets: Sequence[TrainSet], run_dir: str | Path, config: TrainConfig = TrainConfig(),
    *, val_root: str | Path | None = None, resume: bool = False, progress: bool = True, max_seconds: float | None = None,
) -> list[dict]:
    """Train ``chain`` in place; checkpoints and ``history.jsonl`` go to ``run_dir``. Returns the history.

    ``val_root``: dataset whose ``val`` split gives the per-epoch metrics (default: the first set).
    ``max_seconds`` stops early (checkpointed), e.g. to share a time budget. torch runs on
    ``config.threads`` threads, restored afterwards.
    """
    with torch_threads(config.threads):
        return _train_chain(chain, train_sets, run_dir, config, val_root=val_root, resume=resume,
                            progress=progress, max_seconds=max_seconds)


def _train_chain(chain: Chain, train_sets: Sequence[TrainSet], run_dir: str | Path, config: TrainConfig, *,
                 val_root: str | Path | None, resume: bool, progress: bool, max_seconds: float | None) -> list[dict]:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    scales = list(chain.config.scales)
    sets, weights = [], []
    for ts in train_sets:
        manifest = read_manifest(ts.root)
        avail = set(int(s) for s in manifest["counts"])
        scale_free = is_synthetic_dataset(manifest)
        per_scale = {}
        for s in (scales if not chain.config.shared else sorted(avail)):
            if config.train_scales and s not in config.train_scales:
                continue  # not drawn: its pairs are never opened
            # rendered cities carry a random GSD: their one scale trains every scale's network
            ds = PairDataset(ts.root, 0 if scale_free else s, "train")
            if len(ds):
                per_scale[s] = ds
        if per_scale:
            sets.append((ts, per_scale))
            weights.append(ts.weight)
    if not sets:
        at = f" at scales {list(config.train_scales)}" if config.train_scales else ""
        raise EmptyInputError(f"no training pairs{at} in the given datasets: build one with `geoalign dataset build`.")
    weights = np.asarray(weights, float) / np.sum(weights)
    val_root = Path(val_root) if val_root is not None else Path(train_sets[0].root)
    val_sets = {s: PairDataset(val_root, s, "val") for s in (int(k) for k in read_manifest(val_root)["counts"])}
    val_sets = {s: d for s, d in val_sets.items() if len(d)}

    opt = torch.optim.AdamW(chain.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    state_path, hist_path = run_dir / STATE, run_dir / HISTORY
    step, elapsed = 0, 0.0
    history: list[dict] = []
    average = TailAverage(config.steps, config.average_tail)
    if resume and state_path.exists():
        st = load_state(state_path)
        chain.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        torch.set_rng_state(st["torch_rng"])
        step, elapsed = int(st["step"]), float(st["elapsed_s"])
        if "average" in st:
            average.load_state_dict(st["average"])
        if hist_path.exists():
            history = [json.loads(line) for line in hist_path.read_text().splitlines() if line.strip()]
            history = [h for h in history if h["step"] <= step]
        log.info("resumed at step %d (%.0f s of training)", step, elapsed)
    elif hist_path.exists() and is_main():
        hist_path.unlink()

    def log_entry(entry: dict) -> None:
        history.append(entry)
        if is_main():
            with open(hist_path, "w") as f:
                f.writelines(json.dumps(h) + "\n" for h in history)

    def validate() -> dict:
        return on_main(validate_here)  # rank 0 validates, the other ranks receive its metrics

    def validate_here() -> dict:
        chain.eval()
        out = {}
        for s, ds in sorted(val_sets.items()):
            m = evaluate_pairs(chain.net(s), ds, config.val_pairs)
            out.update({f"s{s}_{k}": v for k, v in m.items()})
        chain.train()
        return out

    if step == 0 and not history:
        log_entry({"step": 0, "time_s": 0.0, **validate()})
    chain.train()
    bar = progress_bar(total=config.steps, initial=step, desc="train", unit="step", enabled=progress)
    t_start = time.perf_counter() - elapsed
    run_start = time.perf_counter()
    ema = None
    train_net = data_parallel(chain.net)
    while step < config.steps:
        rng = np.random.default_rng([config.seed, step])
        ts, per_scale = sets[int(rng.choice(len(sets), p=weights))]
        s = int(rng.choice(sorted(per_scale)))
        ds = per_scale[s]
        part = rank_rows(config.batch_size)  # this process's rows of the step's global batch
        batch = _collate(ds, rng.integers(0, len(ds), config.batch_size)[part])
        batch = augment_rows(batch, rng, part, config.batch_size, crop_px=config.crop_px, colour=config.augment,
                             geometric=config.augment, resolution_jitter=1.3 if config.augment else 1.0)
        for g in opt.param_groups:
            g["lr"] = _lr(config, step)
        loss, parts = batch_loss(train_net(s), batch, config.seg_weight, mean_over_ranks)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(chain.parameters(), 5.0)
        opt.step()
        step += 1
        average.update(chain, step)
        stop = max_seconds is not None and time.perf_counter() - run_start > max_seconds
        loss, parts, stop = agree_on_step(loss, parts, stop)
        ratio = parts["field"] / max(parts["zero"], 1e-6)
        ema = ratio if ema is None else 0.98 * ema + 0.02 * ratio
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", vs_zero=f"{ema:.2f}")
        if step % 25 == 0:
            log.debug("step %d loss %.4f field/zero(ema) %.3f", step, loss.item(), ema)
        if (step % config.checkpoint_every == 0 or step == config.steps) and is_main():
            save_state(state_path, chain, opt, step, time.perf_counter() - t_start, config, average)
        if step % config.val_every == 0 or step == config.steps:
            entry = {"step": step, "time_s": time.perf_counter() - t_start, "loss": loss.item(),
                     "field_vs_zero_ema": ema, **validate()}
            log_entry(entry)
            bar.write(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in entry.items()}))
        if stop:
            if is_main():
                save_state(state_path, chain, opt, step, time.perf_counter() - t_start, config, average)
            break
    bar.close()
    if step >= config.steps and average.apply(chain):
        log.info("the run ends on the mean weights of its last %d steps", average.count)
        if not (history and history[-1].get("tail_mean_of_steps")):  # the last entry describes these weights
            log_entry({"step": step, "time_s": history[-1]["time_s"] if history else 0.0,
                       "tail_mean_of_steps": average.count, **validate()})
    return history
