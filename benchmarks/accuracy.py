"""Accuracy of ``align`` on held-out imagery: every method, same run, same data.

Held-out regions: the east strips of the model's training sources, Austin (0.3 m) and Kampala
(7.5 cm, block-averaged ×4 to 0.3 m); the fraction comes from the shipped model card's
``held_out.east_strip_fraction_of_each_train_source`` (never seen in training; default 0.2). The
truth buildings are those whose centroid lies in a strip (Austin's strip holds only a few, Kampala's
about 30; vertices of both are pooled); they are misaligned
by random smooth fields (correlation length 128 px = 38 m) of maximum amplitude 8, 16 and 32 px,
``--seeds`` fields per amplitude; each method runs through ``align_raster`` end to end (GeoTIFF
crop and GeoPackage in, aligned GeoPackage out) and every vertex's error is measured against the
truth (vertex-wise, :mod:`geoalign.evaluate`). Methods: the classical baselines global / local /
tvl1 and, when the model package loads, the learned chain and the local+learned combination.

Writes ``benchmarks/results/accuracy.json`` and ``accuracy.png`` (accuracy curves per amplitude).

    python -m benchmarks.accuracy [--seeds 4] [--amplitudes 8 16 32] [--methods ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

from geoalign.align import align_raster, resolve_predictor
from geoalign.deform import deform_geometries, random_smooth_field
from geoalign.evaluate import TAU_PX, accuracy_curve, vertex_errors
from geoalign.grid import PixelGrid, pixel_size_m, reproject_to
from geoalign.io.raster import geotiff_profile
from geoalign.io.vectors import read_buildings, read_vectors, write_vectors
from geoalign.report import write_json

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {  # the model's training sources whose east strips are held out
    "austin": (ROOT / "sample_data/austin_inria/austin1_crop_nw_rgb.tif",
               ROOT / "sample_data/austin_inria/austin1_crop_nw_buildings.geojson"),
    "kampala": (ROOT / "sample_data/kampala_oam_osm/kampala_z21_suburb_rgb.tif",
                ROOT / "sample_data/kampala_oam_osm/labels_osm.geojson"),
}
RESULTS = ROOT / "benchmarks/results"
CORRELATION_LENGTH_PX = 128.0


def held_out_fraction() -> tuple[float, str]:
    try:
        from geoalign.model.card import read_card
        from geoalign.model.predictor import DEFAULT_MODEL_DIR

        card = read_card(DEFAULT_MODEL_DIR)
        f = card.get("held_out", {}).get("east_strip_fraction_of_each_train_source")
        if f:
            return float(f), "model card"
    except Exception:
        pass
    return 0.2, "default (no model card)"


def make_strip(tmp: Path, image: Path, buildings: Path, fraction: float, target_gsd_m: float = 0.3):
    """The east strip of a source as a GeoTIFF at ≈ ``target_gsd_m`` (integer block averaging);
    truth buildings (centroid in the strip) in the strip's pixel coordinates."""
    with rasterio.open(image) as src:
        gsd = pixel_size_m(src.crs, src.transform, src.bounds)
        factor = max(1, int(round(target_gsd_m / gsd)))
        x0 = int(round(src.width * (1 - fraction)))
        win = Window(x0, 0, src.width - x0, src.height)
        shape = (int(win.height) // factor, int(win.width) // factor)
        data = src.read(window=Window(x0, 0, shape[1] * factor, shape[0] * factor),
                        out_shape=(src.count, *shape), resampling=Resampling.average)
        t = rasterio.windows.transform(win, src.transform) * Affine.scale(factor)
        prof = geotiff_profile(width=shape[1], height=shape[0], count=src.count, dtype=src.dtypes[0],
                               crs=src.crs, transform=t)
        prof.update(predictor=2)
        path = tmp / f"{image.stem}_east.tif"
        with rasterio.open(path, "w", **prof) as dst:
            dst.write(data)
        grid = PixelGrid(t, shape[1], shape[0], src.crs)
        out_gsd = gsd * factor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdf = reproject_to(read_buildings(buildings), grid.crs)
    px = grid.to_pixels(np.asarray(gdf.geometry.values, dtype=object))
    c = shapely.get_coordinates(shapely.centroid(px))
    keep = (c[:, 0] >= 0) & (c[:, 0] < grid.width) & (c[:, 1] >= 0) & (c[:, 1] < grid.height)
    return path, grid, px[keep], out_gsd


def run(methods: list[str], amplitudes: list[float], seeds: int) -> dict:
    fraction, origin = held_out_fraction()
    results: dict = {"region": f"east {fraction:.0%} strips ({origin}) of the Austin (0.3 m) and Kampala "
                               "(7.5 cm block-averaged to 0.3 m) samples, vertices pooled", "gsd_m": 0.3,
                     "correlation_length_px": CORRELATION_LENGTH_PX, "seeds": seeds, "amplitudes_px": amplitudes,
                     "metric": "per-vertex error (px, vertex-wise) of the aligned buildings vs the truth",
                     "methods": {}, "skipped": {}}
    predictors = {}
    for m in methods:
        try:
            predictors[m] = resolve_predictor(m)[0]
        except Exception as err:  # e.g. no model package yet
            results["skipped"][m] = str(err).splitlines()[0]
    with tempfile.TemporaryDirectory() as tdir:
        tmp = Path(tdir)
        seconds: dict = {m: 0.0 for m in predictors}
        results["regions"] = {}
        per_region: dict = {}
        for region, (img_path, vec_path) in SOURCES.items():
            errors = per_region[region] = {m: {a: [] for a in amplitudes} for m in ["before", *predictors]}
            image, grid, truth, gsd = make_strip(tmp, img_path, vec_path, fraction)
            results["regions"][region] = {"raster_px": [grid.width, grid.height], "gsd_m": gsd,
                                          "n_buildings": int(len(truth))}
            truth_xy = shapely.get_coordinates(truth)
            ids = list(range(len(truth)))
            for amp in amplitudes:
                for seed in range(seeds):
                    phi = random_smooth_field((grid.height, grid.width), max_amplitude_px=amp,
                                              correlation_length_px=CORRELATION_LENGTH_PX,
                                              rng=1000 * int(amp) + seed)
                    mis = deform_geometries(truth, phi)
                    errors["before"][amp].append(np.hypot(*(shapely.get_coordinates(mis) - truth_xy).T))
                    src = tmp / f"mis_{region}_{amp}_{seed}.gpkg"
                    write_vectors(gpd.GeoDataFrame({"bid": ids}, geometry=list(grid.to_crs_coords(mis)),
                                                   crs=grid.crs), src)
                    for m, pred in predictors.items():
                        t0 = time.perf_counter()
                        res = align_raster(image, src, tmp / f"out_{m}", pred, method=m, show_progress=False)
                        seconds[m] += time.perf_counter() - t0
                        out = read_vectors(res.paths["gpkg"])
                        got = grid.to_pixels(np.asarray(out.geometry.values, dtype=object))
                        errors[m][amp].append(vertex_errors(got, truth, list(out["bid"]), ids).error_px)
                    print(f"{region} amplitude {amp:g} px seed {seed}: " + ", ".join(
                        f"{m} {np.median(errors[m][amp][-1]):.2f}" for m in errors), flush=True)
    def rows_of(per_amp: dict) -> dict:
        rows = {}
        for amp, chunks in per_amp.items():
            e = np.concatenate(chunks)
            rows[f"{amp:g}"] = {"median_px": float(np.median(e)), "within_2px": float((e <= 2).mean()),
                               "within_4px": float((e <= 4).mean()), "n_vertices": int(len(e)),
                               "curve": accuracy_curve(e).tolist()}
        return rows

    for region, errors in per_region.items():
        results["regions"][region]["methods"] = {m: {"per_amplitude": rows_of(pa)} for m, pa in errors.items()}
    for m in ["before", *predictors]:
        pooled = {a: [c for errs in per_region.values() for c in errs[m][a]] for a in amplitudes}
        results["methods"][m] = {"per_amplitude": rows_of(pooled), **({"seconds": seconds[m]} if m in seconds else {})}
    results["tau_px"] = TAU_PX.tolist()
    return results


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    amps = [f"{a:g}" for a in results["amplitudes_px"]]
    fig, axes = plt.subplots(1, len(amps), figsize=(4.2 * len(amps), 3.8), dpi=110, sharey=True)
    for ax, a in zip(np.atleast_1d(axes), amps):
        for m, r in results["methods"].items():
            row = r["per_amplitude"][a]
            ax.plot(results["tau_px"], row["curve"], "--" if m == "before" else "-",
                    label=f"{m} (median {row['median_px']:.2f})")
        ax.set_title(f"max amplitude {a} px")
        ax.set_xlabel("τ (px)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    np.atleast_1d(axes)[0].set_ylabel("fraction of vertices with error ≤ τ")
    fig.suptitle(results["region"], fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def table(results: dict) -> str:
    lines = ["| region | method | amplitude px | median before → after px | ≤2 px | ≤4 px |",
             "|---|---|---|---|---|---|"]
    blocks = [(f"{k} ({v['n_buildings']} bldg)", v["methods"]) for k, v in results["regions"].items()]
    blocks.append(("pooled vertices", results["methods"]))
    for label, methods in blocks:
        before = methods["before"]["per_amplitude"]
        for m, r in methods.items():
            if m == "before":
                continue
            for a, row in r["per_amplitude"].items():
                lines.append(f"| {label} | {m} | {a} | {before[a]['median_px']:.2f} → {row['median_px']:.2f} | "
                             f"{row['within_2px']:.0%} | {row['within_4px']:.0%} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--amplitudes", type=float, nargs="+", default=[8.0, 16.0, 32.0])
    ap.add_argument("--methods", nargs="+", default=["global", "local", "tvl1", "learned", "local+learned"])
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    results = run(args.methods, args.amplitudes, args.seeds)
    results["table_markdown"] = table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(results, args.out / "accuracy.json")
    plot(results, args.out / "accuracy.png")
    print(results["table_markdown"])


if __name__ == "__main__":
    main()
