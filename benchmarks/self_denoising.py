"""Self-denoising (Girard et al. IGARSS 2019, docs/references.md): train on maps carrying random smooth label noise of known RMS σ.

D0 = the bundled Austin buildings (west part; the east strip stays held out) moved by a random
smooth field scaled to RMS σ px (at 0.3 m). Realignment rounds (train on D_r, realign the noisy
D0 → D_{r+1}), each seed its own; after each round, the median vertex error of the realigned maps
against the true buildings, over all vertices and over the buildings wholly on the image
(``*_inside_px``: a building the image shows only in part stays near where it is). Target
(``floor_median_px`` in the JSON): final median ≤ σ/3 for every seed (``meets_floor``). Writes
``benchmarks/results/<name>.{json,png}``.

``make bench-self-denoising`` runs the shipped model's chain, four rounds at a peak learning rate
of 1e-3 ending on the mean weights of their last half (``geoalign train --rounds-lr 0.001
--average-tail 0.5``), seeds 0, 1 and 2.

``--realign-with local+learned`` realigns with align's default pipeline (classical local offsets,
then the round's chain at ``--learned-scales``) instead of the chain alone (the paper's method);
the classical stage alone on D0 is then measured too, so what the learned rounds add is visible.

    python -m benchmarks.self_denoising [--sigma 4] [--rounds 3] [--steps 600] [--pretrained MODEL_DIR] [--scales 2 1 0]
        [--seeds 0 1 2] [--average-tail F] [--lr LR] [--realign-with learned|local+learned] [--learned-scales 1]
"""

from __future__ import annotations

import argparse
import hashlib
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


def rounds_settings(args: argparse.Namespace, seed: int) -> dict:
    """What one seed's rounds depend on (every option but the number of rounds, the seeds and
    where results go, plus ``seed`` and the starting weights' SHA-256): a work folder resumes only
    rounds run with exactly these."""
    skip = {"rounds", "work_dir", "threads", "name", "seeds"}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items()) if k not in skip}
    if args.pretrained is not None:  # the same folder with retrained weights starts other rounds
        weights = Path(args.pretrained) / "weights.pt"
        settings["pretrained_weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    return {**settings, "seed": seed}


def work_dir_of(args: argparse.Namespace, seed: int) -> Path:
    """``--work-dir``/seed<S>, else ``runs/self_denoising_<hash of the settings>``; refuses a folder
    holding rounds of other settings (they would be resumed as if they were these)."""
    settings = rounds_settings(args, seed)
    if args.work_dir is None:
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
        work_dir = ROOT / "runs" / f"self_denoising_{digest}"
    else:
        work_dir = args.work_dir / f"seed{seed}"
    work_dir.mkdir(parents=True, exist_ok=True)
    recorded = work_dir / "settings.json"
    if recorded.exists() and json.loads(recorded.read_text()) != settings:
        raise SystemExit(f"{work_dir} holds rounds of other settings ({recorded}); give another --work-dir")
    recorded.write_text(json.dumps(settings, indent=2, sort_keys=True))
    return work_dir


def run_seed(args: argparse.Namespace, seed: int) -> dict:
    """One seed's rounds (resumed where finished) and their errors after each round."""
    work_dir = work_dir_of(args, seed)
    image, truth = AUSTIN / "austin1_crop_nw_rgb.tif", AUSTIN / "austin1_crop_nw_buildings.geojson"
    noisy = noisy_buildings(image, truth, work_dir / "noisy_d0.geojson", args.sigma, seed=1)
    torch.manual_seed(seed)
    chain = load_model(args.pretrained)[0].train() if args.pretrained else Chain(ChainConfig(scales=(2, 1, 0)))
    if args.smooth_sigma is not None:  # a parameter-free layer: same weights, other config
        chain = chain.copy_with(smooth_sigma_px=args.smooth_sigma)
    if args.scales:
        chain = chain.fine_stages(tuple(args.scales))
    # pairs at each scale of the chain once; a scale listed twice (--scales 3 3 2 1 0) realigns twice
    dcfg = DatasetConfig(scales=tuple(sorted(set(chain.config.scales), reverse=True)), patch_px=96, gsd_m=0.3,
                         holdout_fraction=0.2, stride_fraction=0.5, samples_per_patch=2)
    resumed = sum((work_dir / "rounds" / f"round{r}" / "metrics.json").exists() for r in range(args.rounds))
    t0 = time.perf_counter()
    _, metrics = realign_rounds([SourcePair(image, noisy, "train")], work_dir / "rounds", rounds=args.rounds,
                                dataset_config=dcfg, train_config=TrainConfig(steps=args.steps, val_every=100, seed=seed,
                                                                        average_tail=args.average_tail, lr=args.lr),
                                chain=chain, truth=[truth], resume=True, progress=False,
                                realign_with=args.realign_with, learned_scales=tuple(args.learned_scales),
                                realign_smooth_px=args.realign_smooth_px,
                                realign_symmetries=args.realign_symmetries)
    inside_mask = vertices_inside_image(truth, image)
    inside = inside_medians(image, truth, noisy, work_dir / "rounds", args.rounds, inside_mask)
    rows = [{"round": m["round"], "d0_median_error_px": m["d0_median_error_px"],
             "realigned_median_error_px": m["realigned_median_error_px"],
             "realigned_rms_error_px": m["realigned_rms_error_px"],
             "d0_median_error_inside_px": inside[0], "realigned_median_error_inside_px": inside[m["round"] + 1]}
            for m in metrics]
    run = {"seed": seed, "rounds": rows, "final_median_px": rows[-1]["realigned_median_error_px"],
           "meets_floor": rows[-1]["realigned_median_error_px"] <= args.sigma / 3,
           "final_median_inside_px": rows[-1]["realigned_median_error_inside_px"],
           "meets_floor_inside": rows[-1]["realigned_median_error_inside_px"] <= args.sigma / 3,
           "inside_vertex_fraction": float(inside_mask.mean()), "work_dir": str(work_dir),
           "wall_s": time.perf_counter() - t0, "rounds_resumed": resumed,
           "train_s_per_round": [m["val"].get("time_s") for m in metrics],
           "realign_with": metrics[-1].get("realign_with", "learned"),
           "scales": list(chain.config.scales), "smooth_sigma": chain.config.smooth_sigma_px}
    if args.realign_with != "learned":
        run["classical_stage_alone_median_px"] = classical_alone(image, noisy, truth, work_dir)
    return run


def plot(result: dict, path: Path) -> None:
    """Median error after each round, one line per seed, with σ and the floor."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sigma = result["sigma_rms_px"]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for run in result["runs"]:
        rows = run["rounds"]
        xs = [0] + [r["round"] + 1 for r in rows]
        line, = ax.plot(xs, [rows[0]["d0_median_error_px"]] + [r["realigned_median_error_px"] for r in rows], "o-",
                        label=f"seed {run['seed']}, median vertex error")
        ax.plot(xs, [rows[0]["d0_median_error_inside_px"]] + [r["realigned_median_error_inside_px"] for r in rows],
                "s--", color=line.get_color(), alpha=0.6, label=f"seed {run['seed']}, buildings wholly on the image")
        if "classical_stage_alone_median_px" in run:
            ax.axhline(run["classical_stage_alone_median_px"], color="green", ls="-.", label="classical stage alone")
    ax.axhline(sigma, color="grey", ls=":", label="σ (label noise RMS)")
    ax.axhline(sigma / 3, color="red", ls="--", label="floor σ/3")
    ax.set_xticks(range(result["rounds"] + 1))
    ax.set_xlabel("round (0 = given noisy maps D0)")
    ax.set_ylabel("px at 0.3 m")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sigma", type=float, default=4.0, help="RMS label noise, pixels at 0.3 m")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=600, help="training steps per round")
    ap.add_argument("--pretrained", type=Path, default=None, help="start from this model (e.g. the default)")
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="rounds, a folder per seed (resumed when run with the same options) "
                         "[default: runs/self_denoising_<hash of the options and seed>]")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="seeds of the rounds' training (batches, augmentation), each its own rounds; "
                         "the label noise stays the same")
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
    runs = [run_seed(args, seed) for seed in args.seeds]
    finals = [r["final_median_px"] for r in runs]
    result = {"sigma_rms_px": args.sigma, "gsd_m": 0.3, "steps_per_round": args.steps, "rounds": args.rounds,
              "seeds": args.seeds, "average_tail": args.average_tail, "lr": args.lr,
              "pretrained": str(args.pretrained) if args.pretrained else None,
              "realign_smooth_px": args.realign_smooth_px, "realign_symmetries": args.realign_symmetries,
              "floor_median_px": args.sigma / 3, "final_median_px_per_seed": finals,
              "meets_floor": all(r["meets_floor"] for r in runs),
              "seeds_meeting_floor": sum(r["meets_floor"] for r in runs), "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    plot(result, RESULTS / f"{args.name}.png")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
