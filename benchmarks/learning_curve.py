"""Learning curve: held-out error against training time, next to predict-zero and a classical baseline.

Reads the ``history.jsonl`` of a training work dir (``runs/<model>/pretrain`` then
``runs/<model>/rounds/round*/train``), chains their training times, and plots the median
end-point error at misaligned-map edge pixels of the held-out pairs (scale 0, pixels at the
dataset GSD) against predict-zero and against a constant-offset edge-correlation search per pair
(the classical practice, computed here on the same pairs). Writes
``benchmarks/results/learning_curve.{json,png}`` (``learning_curve_scale{s}.*`` for ``--scale s``).

    python -m benchmarks.learning_curve [--work-dir runs/default] [--dataset runs/real03]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from geoalign.dataset import PairDataset
from geoalign.model.scale_net import cost_volume, edge_image, edge_map

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results"


def edge_offset_baseline(ds: PairDataset, n_pairs: int, search_px: int = 3, seed: int = 1234) -> dict:
    """One constant offset per pair maximizing map-edge × image-gradient correlation (same pairs as training val)."""
    idx = np.random.default_rng(seed).permutation(len(ds))[:n_pairs]
    errs = []
    offs = np.array([(dx, dy) for dy in range(-search_px, search_px + 1) for dx in range(-search_px, search_px + 1)], float)
    for i in idx:
        it = ds[int(i)]
        corr = cost_volume(edge_map(it["map"][None]), edge_image(it["image"][None]), search_px)[0]
        best = offs[int(corr.sum(dim=(1, 2)).argmax())]
        at = (it["map"][1] > 0.5) & (it["valid"] > 0.5)
        f = it["field"][:, at].numpy().T
        errs.append(np.linalg.norm(f - best[None], axis=1))
    e = np.concatenate(errs)
    return {"median_epe_px": float(np.median(e)), "mean_epe_px": float(e.mean())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work-dir", type=Path, default=ROOT / "runs/default")
    ap.add_argument("--dataset", type=Path, default=ROOT / "runs/real03")
    ap.add_argument("--scale", type=int, default=0)
    args = ap.parse_args()
    stages = [args.work_dir / "pretrain"] + sorted((args.work_dir / "rounds").glob("round*/train"))
    points, offset = [], 0.0
    s = f"s{args.scale}_"
    for st in stages:
        hist = st / "history.jsonl"
        if not hist.exists():
            continue
        rows = [json.loads(x) for x in hist.read_text().splitlines() if x.strip()]
        for h in rows:
            if s + "median_epe_px" in h:
                points.append({"stage": st.relative_to(args.work_dir).as_posix(), "step": h["step"],
                               "time_s": offset + h["time_s"], "median_epe_px": h[s + "median_epe_px"],
                               "median_zero_px": h[s + "median_zero_px"], "mean_epe_px": h[s + "mean_epe_px"],
                               "mean_zero_px": h[s + "mean_zero_px"]})
        offset += rows[-1]["time_s"] if rows else 0.0
    base = edge_offset_baseline(PairDataset(args.dataset, args.scale, "val"), 64)
    result = {"scale": args.scale, "metric": "median end-point error at misaligned-map edge pixels of held-out "
              "pairs, pixels of the scale (scale 0 = dataset GSD)", "points": points,
              "edge_offset_baseline": base, "cpu": "1 thread of 2 shared cores"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "learning_curve" if args.scale == 0 else f"learning_curve_scale{args.scale}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.8))
    t = [p["time_s"] / 60 for p in points]
    ax.plot(t, [p["median_epe_px"] for p in points], "o-", label="chain (held-out median error)")
    ax.plot(t, [p["median_zero_px"] for p in points], "--", color="grey", label="predict-zero")
    ax.axhline(base["median_epe_px"], color="orange", ls=":", label="integer constant-offset edge search per pair (±3 px)")
    starts = {}
    for p in points:
        starts.setdefault(p["stage"], p["time_s"] / 60)
    for name, x in starts.items():
        ax.axvline(x, color="k", alpha=0.15)
        ax.text(x, ax.get_ylim()[1], name.split("/")[0] if "round" not in name else name.split("/")[1],
                fontsize=7, va="top", rotation=90)
    ax.set_xlabel("training time (min, 1 CPU thread)")
    ax.set_ylabel(f"median error (px, scale {args.scale})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{stem}.png", dpi=100)
    print(json.dumps({k: v for k, v in result.items() if k != "points"}, indent=2), points[-1] if points else None)


if __name__ == "__main__":
    main()
