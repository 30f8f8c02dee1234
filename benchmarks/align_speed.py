"""Speed and peak memory of ``geoalign align`` on a 4000×4000 raster, against the targets
recorded as ``floors`` in the JSON (≥ 0.5 MP/s on 2 cores, peak RSS < 3 GB).

The raster is a 4×4 mosaic of the bundled Austin sample (1000×1000 px at 0.3 m; alternate tiles
mirrored so the mosaic is not periodic), written as a tiled GeoTIFF in a temporary folder, with the
buildings mirrored and replicated the same way (57 × 16) and misaligned by a smooth field of max
amplitude 8 px. ``geoalign align`` runs as a subprocess per method; its wall time (from the
summary line: the work itself, and the whole command including Python start-up) and its peak RSS
(``getrusage`` of the child) are recorded. The methods take turns ``--repeats`` times (A B A B …,
the shared machine's speed drifts by ±15 % over minutes) and the medians are reported, with each
run's figures and the ratio of every method to the first one, pair by pair.

Writes ``benchmarks/results/align_speed.json`` and ``align_speed.png``.

    python -m benchmarks.align_speed [--tiles 4] [--methods default local local+learned+scale1] [--repeats 3]

``local+learned+scale1`` runs ``align --pick-scales none`` (the default pipeline without its
second learned proposal), ``local+learned+pick`` ``align --pick-scales 3,2,1``,
``local+learned+passes2`` ``align --pick-passes 2``,
``local+learned+sym2`` ``align --symmetries 2`` (labels of ``benchmarks.accuracy``);
``--candidate NAME=MODEL_DIR`` also runs every method with ``--model MODEL_DIR``, labelled
``method@NAME``, in the same turns.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely

from benchmarks.accuracy import SCALE1, align_options, candidate
from geoalign.deform import deform_geometries, random_smooth_field
from geoalign.grid import PixelGrid, reproject_to
from geoalign.io.raster import geotiff_profile
from geoalign.io.vectors import read_buildings, write_vectors
from geoalign.io.writers import write_json

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "sample_data/austin_inria/austin1_crop_nw_rgb.tif"
BUILDINGS = ROOT / "sample_data/austin_inria/austin1_crop_nw_buildings.geojson"
RESULTS = ROOT / "benchmarks/results"


def make_mosaic(tmp: Path, n: int) -> tuple[Path, Path, int]:
    """An n×n mirrored mosaic of the sample and its misaligned buildings; returns the side in px."""
    with rasterio.open(IMAGE) as src:
        data = src.read()
        t, crs = src.transform, src.crs
    size = data.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdf = reproject_to(read_buildings(BUILDINGS), crs)
    grid = PixelGrid(t, size, size, crs)
    px = grid.to_pixels(np.asarray(gdf.geometry.values, dtype=object))
    side = n * size
    prof = geotiff_profile(width=side, height=side, count=3, dtype="uint8", crs=crs, transform=t)
    prof.update(predictor=2)
    path = tmp / "mosaic.tif"
    geoms = []
    with rasterio.open(path, "w", **prof) as dst:
        for i in range(n):
            for j in range(n):
                tile = data[:, ::-1 if i % 2 else 1, ::-1 if j % 2 else 1]
                dst.write(tile, window=rasterio.windows.Window(j * size, i * size, size, size))

                def place(xy: np.ndarray, i=i, j=j) -> np.ndarray:
                    x = size - xy[:, 0] if j % 2 else xy[:, 0]
                    y = size - xy[:, 1] if i % 2 else xy[:, 1]
                    return np.column_stack([x + j * size, y + i * size])

                geoms.extend(shapely.transform(px, place))
    phi = random_smooth_field((side, side), max_amplitude_px=8.0, correlation_length_px=128.0, rng=0)
    mis = deform_geometries(np.array(geoms, dtype=object), phi)
    big = PixelGrid(t, side, side, crs)
    vec = tmp / "buildings.gpkg"
    write_vectors(gpd.GeoDataFrame({"bid": np.arange(len(mis))}, geometry=list(big.to_crs_coords(mis)), crs=crs), vec)
    return path, vec, side


def run_align(image: Path, vec: Path, out: Path, method: str, extra: tuple[str, ...] = (),
              geoalign: tuple[str, ...] | None = None) -> dict:
    """One ``geoalign align`` in a fresh Python (``extra``: more options, e.g. ``--report``;
    ``geoalign``: the command that runs it, default this environment's executable)."""
    exe = list(geoalign) if geoalign else [str(Path(sys.executable).parent / "geoalign")]
    cmd = [*exe, "align", str(image), str(vec), "-o", str(out), *extra]
    cmd += align_options(method)
    code = ("import resource, subprocess, sys, time; t=time.perf_counter(); "
            "p=subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "w=time.perf_counter()-t; r=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss; "
            "sys.stderr.write(p.stderr); print(p.returncode, w, r)")
    # A fresh Python per run so the child's peak RSS is that run's alone.
    proc = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "GEOALIGN_PROGRESS": "off"})
    rc, wall, maxrss_kb = proc.stdout.split()
    if int(rc) != 0:
        raise RuntimeError(f"align failed: {proc.stderr[-2000:]}")
    summary = [line for line in proc.stderr.splitlines() if line.startswith("aligned ")][-1]
    m = re.search(r" in ([0-9.]+) s ", summary)
    return {"summary": summary, "work_s": float(m.group(1)), "command_s": float(wall),
            "peak_rss_gb": int(maxrss_kb) * 1024 / 1e9}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=4, help="mosaic of N×N sample crops (4 → 4000×4000 px)")
    ap.add_argument("--methods", nargs="+", default=["default", "local", SCALE1])
    ap.add_argument("--repeats", type=int, default=3, help="runs per method, in turns; medians reported")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--candidate", action="append", default=[], type=candidate, metavar="NAME=MODEL_DIR",
                    help="also run every method with this model folder, labelled method@NAME")
    args = ap.parse_args()
    models: dict[str, tuple[str, tuple[str, ...]]] = {m: (m, ()) for m in args.methods}
    for name, folder in args.candidate:
        models.update({f"{m}@{name}": (m, ("--model", str(folder))) for m in args.methods})
    results: dict = {"cpu_cores": os.cpu_count(), "runs": {}}
    with tempfile.TemporaryDirectory() as tdir:
        tmp = Path(tdir)
        t0 = time.perf_counter()
        image, vec, side = make_mosaic(tmp, args.tiles)
        results.update(raster_px=[side, side], megapixels=side * side / 1e6,
                       mosaic_build_s=time.perf_counter() - t0)
        runs: dict[str, list[dict]] = {label: [] for label in models}
        for k in range(args.repeats):
            for method, (pipeline, model) in models.items():
                r = run_align(image, vec, tmp / f"out_{method}", pipeline, model)
                r["mp_per_s"] = results["megapixels"] / r["work_s"]
                r["mp_per_s_command"] = results["megapixels"] / r["command_s"]
                runs[method].append(r)
                print(f"run {k + 1}/{args.repeats} {method}: {r['mp_per_s']:.2f} MP/s ({r['work_s']:.1f} s work, "
                      f"{r['command_s']:.1f} s command), peak RSS {r['peak_rss_gb']:.2f} GB", flush=True)
        first = args.methods[0]
        for method, rs in runs.items():
            med = {key: float(np.median([r[key] for r in rs]))
                   for key in ("work_s", "command_s", "mp_per_s", "mp_per_s_command")}
            med["peak_rss_gb"] = max(r["peak_rss_gb"] for r in rs)  # the worst run's
            med["summary"] = rs[-1]["summary"]
            med["runs"] = rs
            med[f"work_ratio_to_{first}"] = float(np.median([r["work_s"] / f["work_s"] for r, f in zip(rs, runs[first])]))
            results["runs"][method] = med
            print(f"{method}: median {med['mp_per_s']:.2f} MP/s ({med['work_s']:.1f} s work), max peak RSS "
                  f"{med['peak_rss_gb']:.2f} GB, work time / {first}'s {med[f'work_ratio_to_{first}']:.2f}", flush=True)
    results["floors"] = {"mp_per_s": 0.5, "peak_rss_gb": 3.0}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(results, args.out / "align_speed.json")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["runs"])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=110)
    a1.bar(names, [results["runs"][n]["mp_per_s"] for n in names])
    a1.axhline(0.5, color="r", ls="--", label="floor 0.5")
    a1.set_ylabel("MP/s")
    a1.legend()
    a2.bar(names, [results["runs"][n]["peak_rss_gb"] for n in names])
    a2.axhline(3.0, color="r", ls="--", label="ceiling 3 GB")
    a2.set_ylabel("peak RSS (GB)")
    a2.legend()
    fig.suptitle(f"geoalign align on {side}×{side} px, {os.cpu_count()} cores", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out / "align_speed.png")
    plt.close(fig)


if __name__ == "__main__":
    main()
