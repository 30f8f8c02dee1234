"""Self-denoising (Girard et al. IGARSS 2019, docs/references.md): train on maps carrying random smooth label noise of known RMS σ.

D0 = the bundled Austin buildings (west part; the east strip stays held out) moved by a random
smooth field scaled to RMS σ px (at 0.3 m). Three realignment rounds (train on D_r, realign the
noisy D0 → D_{r+1}); after each round, the median vertex error of the realigned maps against the
true buildings, over all vertices and over the buildings wholly on the image (``*_inside_px``: a
building the image shows only in part stays near where it is). Target (``floor_median_px`` in the
JSON): final median ≤ σ/3. Writes ``benchmarks/results/self_denoising.{json,png}``.

``--realign-with local+learned`` realigns with align's default pipeline (classical local offsets,
then the round's chain at ``--learned-scales``) instead of the chain alone (the paper's method);
the classical stage alone on D0 is then measured too, so what the learned rounds add is visible.

    python -m benchmarks.self_denoising [--sigma 4] [--rounds 3] [--steps 600] [--pretrained MODEL_DIR] [--scales 2 1 0]
        [--seed S] [--average-tail F] [--lr LR] [--realign-with learned|local+learned] [--learned-scales 1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from geoalign.dataset import DatasetConfig, SourcePair
from geoalign.deform import deform_geometries, random_smooth_field
from geoalign.grid import PixelGrid, reproject_to
from geoalign.inference.symmetry import SYMMETRIES
from geoalign.io.raster import RasterReader
from geoalign.io.vectors import read_buildings, write_vectors
from geoalign.model.chain import Chain, ChainConfig
from geoalign.model.checkpoint import load_model
from geoalign.train.realign import REALIGN_WITH, realign_rounds, vertex_errors_px, vertices_inside_image
from geoalign.train.trainer import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
AUSTIN = ROOT / "sample_data/austin_inria"
RESULTS = ROOT / "benchmarks/results"


def noisy_buildings(image: Path, buildings: Path, out: Path, sigma_px: float, seed: int) -> Path:
    """Move every vertex by one random smooth field of RMS ``sigma_px`` (pixels of the image)."""
    with RasterReader(image) as r:
        grid = PixelGrid.of(r)
        gdf = reproject_to(read_buildings(buildings), r.crs)
        shape = (r.height, r.width)
    field = random_smooth_field(shape, max_amplitude_px=1.0, correlation_length_px=0.25 * min(shape),
                                rng=np.random.default_rng(seed))
    field *= sigma_px / np.sqrt((field**2).sum(0).mean())
    geoms = np.asarray(grid.to_pixels(gdf.geometry.values), dtype=object)
    out_gdf = gdf.copy()
    out_gdf["geometry"] = grid.to_crs_coords(deform_geometries(geoms, field))
    write_vectors(out_gdf, out)
    return out


def classical_alone(image: Path, noisy: Path, truth: Path, work_dir: Path) -> float:
    """Median error of D0 realigned by the classical local-offset search alone (no learning)."""
    from geoalign.baselines import classical_predictor
    from geoalign.train.realign import align_source, vertex_errors_px

    local = classical_predictor("local")
    local.gsd_m = 0.3
    aligned, _ = align_source(local, image, noisy, 0.3)
    out = work_dir / "classical_alone.geojson"
    write_vectors(aligned, out)
    return float(np.median(vertex_errors_px(out, truth, image, 0.3)))


def inside_medians(image: Path, truth: Path, noisy: Path, rounds_dir: Path, rounds: int,
                   inside: np.ndarray) -> list[float]:
    """Median errors of D0 and of each round's realigned maps over the vertices ``inside`` (those of
    the buildings wholly on the image, :func:`~geoalign.train.realign.vertices_inside_image`)."""
    maps = [noisy] + [rounds_dir / f"round{r}" / "realigned" / "0.geojson" for r in range(rounds)]
    return [float(np.median(vertex_errors_px(m, truth, image, 0.3)[inside])) for m in maps]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sigma", type=float, default=4.0, help="RMS label noise, pixels at 0.3 m")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=600, help="training steps per round")
    ap.add_argument("--pretrained", type=Path, default=None, help="start from this model (e.g. the default)")
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="rounds (resumed when present) [default: runs/self_denoising_<steps>_<realign-with>]")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the rounds' training (batches, augmentation); the label noise stays the same")
    ap.add_argument("--average-tail", type=float, default=0.0,
                    help="each round ends on the mean weights of this last fraction of its steps")
    ap.add_argument("--lr", type=float, default=TrainConfig.lr, help="peak learning rate of each round")
    ap.add_argument("--name", default="self_denoising", help="results file name (without extension)")
    ap.add_argument("--smooth-sigma", type=float, default=None,
                    help="edge-weighted smoothing of each scale's correction (px of the scale) used when "
                         "realigning; default: the pretrained model's own setting")
    ap.add_argument("--scales", type=int, nargs="+", default=None,
                    help="run only these scales of the pretrained chain (e.g. 2 1 0: its range still "
                         "covers σ = 4 px noise, without the coarsest scale's ~1 px prediction noise)")
    ap.add_argument("--realign-with", choices=REALIGN_WITH, default="learned")
    ap.add_argument("--realign-smooth-px", type=float, default=0.0,
                    help="average the realigning field over neighbouring buildings within this many px "
                         "(geoalign train --realign-smooth-px; 0: off)")
    ap.add_argument("--realign-symmetries", type=int, choices=sorted(SYMMETRIES), default=1,
                    help="average the realigning field over this many rotations/flips "
                         "(geoalign train --realign-symmetries)")
    ap.add_argument("--learned-scales", type=int, nargs="+", default=[1],
                    help="scales of the chain behind the classical stage (with --realign-with local+learned)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.work_dir is None:  # finished rounds are resumed: one folder per setting
        smooth = f"_smooth{args.realign_smooth_px:g}" if args.realign_smooth_px > 0 else ""
        sym = f"_sym{args.realign_symmetries}" if args.realign_symmetries > 1 else ""
        args.work_dir = ROOT / "runs" / f"self_denoising_{args.steps}_{args.realign_with.replace('+', '_')}{smooth}{sym}"
    args.work_dir.mkdir(parents=True, exist_ok=True)
    image, truth = AUSTIN / "austin1_crop_nw_rgb.tif", AUSTIN / "austin1_crop_nw_buildings.geojson"
    noisy = noisy_buildings(image, truth, args.work_dir / "noisy_d0.geojson", args.sigma, seed=1)
    torch.manual_seed(args.seed)
    chain = load_model(args.pretrained)[0].train() if args.pretrained else Chain(ChainConfig(scales=(2, 1, 0)))
    if args.smooth_sigma is not None:  # a parameter-free layer: same weights, other config
        chain = chain.copy_with(smooth_sigma_px=args.smooth_sigma)
    if args.scales:
        chain = chain.fine_stages(tuple(args.scales))
    # pairs at each scale of the chain once; a scale listed twice (--scales 3 3 2 1 0) realigns twice
    dcfg = DatasetConfig(scales=tuple(sorted(set(chain.config.scales), reverse=True)), patch_px=96, gsd_m=0.3,
                         holdout_fraction=0.2, stride_fraction=0.5, samples_per_patch=2)
    resumed = sum((args.work_dir / "rounds" / f"round{r}" / "metrics.json").exists() for r in range(args.rounds))
    t0 = time.perf_counter()
    _, metrics = realign_rounds([SourcePair(image, noisy, "train")], args.work_dir / "rounds", rounds=args.rounds,
                                dataset_config=dcfg, train_config=TrainConfig(steps=args.steps, val_every=100, seed=args.seed,
                                                                        average_tail=args.average_tail, lr=args.lr),
                                chain=chain, truth=[truth], resume=True, progress=False,
                                realign_with=args.realign_with, learned_scales=tuple(args.learned_scales),
                                realign_smooth_px=args.realign_smooth_px,
                                realign_symmetries=args.realign_symmetries)
    inside_mask = vertices_inside_image(truth, image)
    inside = inside_medians(image, truth, noisy, args.work_dir / "rounds", args.rounds, inside_mask)
    rows = [{"round": m["round"], "d0_median_error_px": m["d0_median_error_px"],
             "realigned_median_error_px": m["realigned_median_error_px"],
             "realigned_rms_error_px": m["realigned_rms_error_px"],
             "d0_median_error_inside_px": inside[0], "realigned_median_error_inside_px": inside[m["round"] + 1]}
            for m in metrics]
    result = {"sigma_rms_px": args.sigma, "gsd_m": 0.3, "rounds": rows, "steps_per_round": args.steps, "seed": args.seed,
              "average_tail": args.average_tail, "lr": args.lr,
              "smooth_sigma": chain.config.smooth_sigma_px, "scales": list(chain.config.scales),
              "pretrained": str(args.pretrained) if args.pretrained else None,
              "floor_median_px": args.sigma / 3, "final_median_px": rows[-1]["realigned_median_error_px"],
              "meets_floor": rows[-1]["realigned_median_error_px"] <= args.sigma / 3,
              "final_median_inside_px": rows[-1]["realigned_median_error_inside_px"],
              "meets_floor_inside": rows[-1]["realigned_median_error_inside_px"] <= args.sigma / 3,
              "inside_vertex_fraction": float(inside_mask.mean()),
              "wall_s": time.perf_counter() - t0, "rounds_resumed": resumed,
              "train_s_per_round": [m["val"].get("time_s") for m in metrics], "realign_with": metrics[-1].get("realign_with", "learned"),
              "realign_smooth_px": args.realign_smooth_px, "realign_symmetries": args.realign_symmetries}
    if args.realign_with != "learned":
        result["classical_stage_alone_median_px"] = classical_alone(image, noisy, truth, args.work_dir)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    xs = [0] + [r["round"] + 1 for r in rows]
    ax.plot(xs, [rows[0]["d0_median_error_px"]] + [r["realigned_median_error_px"] for r in rows], "o-", label="median vertex error")
    ax.plot(xs, [rows[0]["d0_median_error_inside_px"]] + [r["realigned_median_error_inside_px"] for r in rows], "s--",
            label="same, buildings wholly on the image")
    ax.axhline(args.sigma, color="grey", ls=":", label="σ (label noise RMS)")
    ax.axhline(args.sigma / 3, color="red", ls="--", label="floor σ/3")
    if "classical_stage_alone_median_px" in result:
        ax.axhline(result["classical_stage_alone_median_px"], color="green", ls="-.", label="classical stage alone")
    ax.set_xlabel("round (0 = given noisy maps D0)")
    ax.set_ylabel("px at 0.3 m")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / f"{args.name}.png", dpi=100)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
