"""Imagery coarser than the model's 0.3 m grid: does ``align`` leave a map worse than its input, and
does the trust report's gate keep it from that? (``make bench-coarse``)

The held-out regions and their 0.3 m strips are those of :mod:`benchmarks.accuracy` (the shipped
model card's held-out regions and the external sources, both pools). Each strip is degraded to
0.6 m and 1.0 m GSD by block averaging (GDAL's area-weighted average: 1 m is 3.33 strip pixels)
and written as a GeoTIFF with the coarser transform, the same extent: a real coarser raster,
which ``align`` reads and resamples to its 0.3 m working grid itself. The truth buildings are
misaligned by the same random smooth fields as ``bench-accuracy`` (same seeds, amplitudes 8 and 16 px of 0.3 m = 2.4 and 4.8 m),
one misaligned map per field for every GSD, so the GSDs compare on the same maps.

Per raster and field, through :func:`geoalign.align.align_raster` end to end:

* ``input``: the misaligned map, not moved;
* ``local``: ``--method local``;
* ``default``: the default pipeline (local+learned) with ``--report``: its aligned buildings and
  each building's ``expected_error_px`` and ``confidence``;
* ``gate G``: ``--report --trust-gate G`` for each ``--gates`` G: buildings whose expected error
  exceeds G px or that lie in a low-density tile keep their input geometry. Derived from the
  ``default`` run (the gate only chooses, per building, between the aligned and the input
  geometry; low density is read back from the confidence, halved in low-density tiles); one case
  per GSD also runs ``align`` with ``--trust-gate`` and without ``--report`` and checks that the
  derivation gives the same buildings (``gate_check``).

Errors: per vertex, in px of 0.3 m, against the truth (:func:`geoalign.evaluate.vertex_errors`).
Reported per pool × GSD × amplitude × method: median vertex error, share of buildings whose mean
vertex error grows by more than 1 px, and for each gate the share of buildings gated with the
median error of gated and ungated buildings (what the default would have made of the gated ones
beside it); per region, in how many fields a method's median exceeds the input's.

Writes ``benchmarks/results/coarse_imagery.json`` and ``coarse_imagery.png``. One torch thread.

    python -m benchmarks.coarse_imagery [--seeds 6] [--amplitudes 8 16] [--gsds 0.3 0.6 1.0]
        [--gates 2 4 8] [--regions NAME ...] [--psf-sigma S] [--model DIR] [--name STEM] [--out DIR]

``--model DIR`` measures another model folder (its statistics and calibration in it) in place of the
shipped one; ``--name STEM`` names the result files (default ``coarse_imagery``).

``--psf-sigma S`` blurs the strip by a Gaussian of S coarse pixels before the block average (a
sensor whose optics blur more than its pixel's box) and writes ``coarse_imagery_psfS.json``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.io
import shapely
from affine import Affine
from rasterio.enums import Resampling

from benchmarks.accuracy import (CORRELATION_LENGTH_PX, POOL_03, POOL_SPACENET, RESULTS, held_out_regions,
                                 held_out_strips, misalign, pool_parts)
from geoalign.align import align_raster, resolve_predictor
from geoalign.evaluate import vertex_errors
from geoalign.grid import pixel_size_m
from geoalign.io.raster import geotiff_profile
from geoalign.io.vectors import read_vectors
from geoalign.io.writers import write_json
from geoalign.report.attach import ReportRequest
from geoalign.report.calibration import confidence
from geoalign.report.trust import AUTO_GATE, gate_value, gated_by

GATE_CHECK_MIN_BUILDINGS = 5  # the gate check runs on the first case with as many buildings, per GSD
WORSE_BY_PX = 1.0  # a building is made worse when its mean vertex error grows by more than this


def coarsen(strip: Path, gsd_m: float, tmp: Path, psf_sigma: float = 0.0) -> tuple[Path, float]:
    """``strip`` block-averaged to ≈ ``gsd_m`` over the same extent (the strip itself when it is
    not coarser), written as a GeoTIFF with the coarser transform; (path, its GSD in metres).
    ``psf_sigma`` > 0: a Gaussian blur of that many coarse pixels first (a sensor's optics blur
    more than the box of its pixel)."""
    with rasterio.open(strip) as src:
        gsd = pixel_size_m(src.crs, src.transform, src.bounds)
        if gsd_m <= 1.05 * gsd:
            return strip, gsd
        shape = (max(1, round(src.height * gsd / gsd_m)), max(1, round(src.width * gsd / gsd_m)))
        data = src.read(out_shape=(src.count, *shape), resampling=Resampling.average)
        if psf_sigma > 0:
            from scipy.ndimage import gaussian_filter

            sharp = src.read().astype(np.float32)
            blurred = gaussian_filter(sharp, (0, psf_sigma * gsd_m / gsd, psf_sigma * gsd_m / gsd), mode="nearest")
            with rasterio.io.MemoryFile() as mem, mem.open(**{**src.profile, "dtype": "float32"}) as tmp_ds:
                tmp_ds.write(blurred)
                data = tmp_ds.read(out_shape=(src.count, *shape), resampling=Resampling.average)
            info = np.iinfo(src.dtypes[0]) if np.issubdtype(np.dtype(src.dtypes[0]), np.integer) else None
            data = np.clip(np.round(data), info.min, info.max) if info else data
            data = data.astype(src.dtypes[0])
        t = src.transform * Affine.scale(src.width / shape[1], src.height / shape[0])
        prof = geotiff_profile(width=shape[1], height=shape[0], count=src.count, dtype=src.dtypes[0],
                               crs=src.crs, transform=t)
        path = tmp / f"{strip.stem}_{gsd_m:g}m_psf{psf_sigma:g}.tif"
        with rasterio.open(path, "w", **prof) as dst:
            dst.write(data)
        return path, pixel_size_m(src.crs, t, src.bounds)


def _size_px(path: Path) -> list[int]:
    with rasterio.open(path) as src:
        return [src.width, src.height]


def building_errors(out: gpd.GeoDataFrame, grid, truth, ids: list[int]) -> list[np.ndarray]:
    """Per truth building (order of ``ids``), its vertex errors (0.3 m px) in ``out`` (matched on
    ``bid``; an empty array when ``out`` lost it)."""
    got = grid.to_pixels(np.asarray(out.geometry.values, dtype=object))
    row = {int(b): n for n, b in enumerate(out["bid"])}
    return [vertex_errors([got[row[b]]], [truth[b]], [b], [b]).error_px if b in row else np.zeros(0)
            for b in ids]


def low_density(expected_px: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Buildings of low-density tiles, read back from the report's columns: their confidence is
    half the one their expected error alone gives (:func:`geoalign.report.calibration.confidence`)."""
    full = confidence(expected_px)
    return np.isfinite(expected_px) & (np.asarray(conf, np.float64) < 0.75 * full)


def gated_at(gate: float | str, expected_px: np.ndarray, low: np.ndarray, move_px: np.ndarray) -> np.ndarray:
    """``--trust-gate gate`` (:func:`geoalign.report.trust.gated_by`) among the scored buildings."""
    return np.isfinite(expected_px) & gated_by(gate, expected_px, low, move_px)


def gate_label(gate: float | str) -> str:
    return f"gate {gate}" if gate == AUTO_GATE else f"gate {gate:g}"


def gate_check(image: Path, src: Path, tmp: Path, predictor, gate_px: float | str, default_out: gpd.GeoDataFrame,
               grid, move_px: np.ndarray, model_dir: Path | None = None) -> dict:
    """``align --report --trust-gate gate_px`` and plain ``align`` on one case, against what the
    benchmark derives from the ``--report`` run: gated flags and coordinates must agree."""
    gated_run = read_vectors(align_raster(image, src, tmp / "check_gate", predictor, method="local+learned",
                                          show_progress=False,
                                          report=ReportRequest(trust_gate_px=gate_px, model_dir=model_dir)).paths["gpkg"])
    plain = read_vectors(align_raster(image, src, tmp / "check_plain", predictor, method="local+learned",
                                      show_progress=False).paths["gpkg"])
    exp = default_out["expected_error_px"].to_numpy(np.float64)
    derived = gated_at(gate_px, exp, low_density(exp, default_out["confidence"].to_numpy(np.float64)), move_px)
    ran = gated_run["gated"].to_numpy(bool)

    def coords(df):
        return shapely.get_coordinates(grid.to_pixels(np.asarray(df.geometry.values, dtype=object)))

    mis = read_vectors(src)
    expect = np.asarray(default_out.geometry.values, dtype=object).copy()
    expect[derived] = np.asarray(mis.geometry.values, dtype=object)[derived]
    derived_xy = shapely.get_coordinates(grid.to_pixels(expect))
    return {"gate_px": gate_px, "buildings": int(len(ran)), "gated": int(ran.sum()),
            "gated_flags_agree": bool(np.array_equal(ran, derived)),
            "max_coordinate_difference_px": float(np.abs(coords(gated_run) - derived_xy).max()),
            "report_changes_default_by_px": float(np.abs(coords(plain) - coords(default_out)).max())}


def collect(amplitudes: list[float], seeds: int, gsds: list[float], gates: list[float],
            only: list[str] | None = None, psf_sigma: float = 0.0,
            model_dir: Path | None = None) -> tuple[dict, list[dict]]:
    """Every case aligned (results without the summaries, cases): one case per region × GSD ×
    amplitude × seed, per building its vertex errors for ``input``, ``local`` and ``default``, the
    default's mean vertex move ``move_px``, ``expected_px`` and ``low`` (low-density tile)."""
    regions, origin = held_out_regions()
    local = resolve_predictor("local")[0]
    default, default_name, _ = resolve_predictor(None, model_dir)
    results: dict = {"region": f"held-out regions from the {origin}, 0.3 m strips degraded to coarser GSDs",
                     "gsds_m": gsds, "amplitudes_px": amplitudes, "seeds": seeds, "gates_px": gates,
                     "default_pipeline": default_name, "model": str(model_dir or "shipped"),
                     "correlation_length_px": CORRELATION_LENGTH_PX,
                     "metric": "per-vertex error (px of 0.3 m, vertex-wise) against the truth",
                     "worse_by_px": WORSE_BY_PX, "psf_sigma_coarse_px": psf_sigma,
                     "regions": {}, "skipped": {}, "gate_check": {}}
    cases: list[dict] = []  # one per region × GSD × amplitude × seed: per-building errors
    numeric = [gate for gate in gates if gate != AUTO_GATE]
    checked = numeric[len(numeric) // 2:][:1] + ([AUTO_GATE] if AUTO_GATE in gates else [])
    seconds = {"local": 0.0, "default --report": 0.0}
    with tempfile.TemporaryDirectory() as tdir:
        tmp = Path(tdir)
        for k, region, strip, grid, truth, _, native, pool in held_out_strips(tmp, regions, only,
                                                                             results["skipped"]):
            rasters = {g: coarsen(strip, g, tmp, psf_sigma) for g in gsds}
            results["regions"][region.name] = {
                "pool": pool, "native_gsd_m": native, "n_buildings": int(len(truth)),
                "rasters": {f"{g:g}": {"gsd_m": gsd_m, "px": _size_px(path)} for g, (path, gsd_m) in rasters.items()}}
            ids = list(range(len(truth)))
            for amp in amplitudes:
                for seed in range(seeds):
                    mis, src = misalign(tmp, grid, truth, amp, seed, k)  # bench-accuracy's fields
                    before = [np.hypot(*(shapely.get_coordinates(m) - shapely.get_coordinates(t)).T)
                              for m, t in zip(mis, truth)]
                    for g, (image, _) in rasters.items():
                        t0 = time.perf_counter()
                        loc = read_vectors(align_raster(image, src, tmp / "out_local", local, method="local",
                                                        show_progress=False).paths["gpkg"])
                        t1 = time.perf_counter()
                        dflt = read_vectors(align_raster(image, src, tmp / "out_default", default,
                                                         method=default_name, show_progress=False,
                                                         report=ReportRequest(model_dir=model_dir)).paths["gpkg"])
                        seconds["local"] += t1 - t0
                        seconds["default --report"] += time.perf_counter() - t1
                        order = [int(np.flatnonzero(dflt["bid"].to_numpy() == b)[0]) for b in ids]
                        exp = dflt["expected_error_px"].to_numpy(np.float64)[order]
                        case = {"region": region.name, "pool": pool, "gsd": g, "amp": amp, "seed": seed,
                                "input": before, "local": building_errors(loc, grid, truth, ids),
                                "default": building_errors(dflt, grid, truth, ids), "expected_px": exp,
                                "move_px": _mean(building_errors(dflt, grid, mis, ids)),
                                "low": low_density(exp, dflt["confidence"].to_numpy(np.float64)[order])}
                        cases.append(case)
                        for gate in checked:
                            key = f"{g:g} m, {gate_label(gate)}"
                            if key not in results["gate_check"] and len(truth) >= GATE_CHECK_MIN_BUILDINGS:
                                results["gate_check"][key] = gate_check(  # moves in the report's row order
                                    image, src, tmp, default, gate, dflt, grid,
                                    case["move_px"][dflt["bid"].to_numpy(int)], model_dir)
                        print(f"{region.name} {g:g} m, {amp:g} px seed {seed}: median input "
                              f"{np.median(np.concatenate(before)):.2f}, local "
                              f"{np.median(np.concatenate(case['local'])):.2f}, default "
                              f"{np.median(np.concatenate(case['default'])):.2f} px; expected error "
                              f"{np.nanmedian(exp) if np.isfinite(exp).any() else np.nan:.2f} px, "
                              f"low density {case['low'].mean():.0%}", flush=True)
    results["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
    return results, cases


def run(amplitudes: list[float], seeds: int, gsds: list[float], gates: list[float],
        only: list[str] | None = None, psf_sigma: float = 0.0, model_dir: Path | None = None) -> dict:
    """:func:`collect`, then the summaries per pool and per region."""
    results, cases = collect(amplitudes, seeds, gsds, gates, only, psf_sigma, model_dir)
    results["pools"] = summarise(cases, gates)
    for p in results["pools"].values():
        p["n_buildings"] = sum(results["regions"][r]["n_buildings"] for r in p["regions"])
    results["worse_than_input"] = paired_worse(cases, gates)
    return results


def method_errors(case: dict, gates: list[float]) -> dict[str, list[np.ndarray]]:
    """Per method label, per building of ``case``, its vertex errors (gated buildings: the input's)."""
    out = {m: case[m] for m in ("input", "local", "default")}
    for g in gates:
        gated = gated_at(g, case["expected_px"], case["low"], case["move_px"])
        out[gate_label(g)] = [case["input"][b] if gated[b] else case["default"][b] for b in range(len(gated))]
    return out


def _mean(errors: list[np.ndarray]) -> np.ndarray:
    return np.array([e.mean() if len(e) else np.nan for e in errors])


def _median(errors: list[np.ndarray]) -> float:
    parts = [e for e in errors if len(e)]
    return float(np.median(np.concatenate(parts))) if parts else float("nan")


def summarise(cases: list[dict], gates: list[float]) -> dict:
    """Pool (and its card regions and external sources apart, :func:`benchmarks.accuracy.pool_parts`)
    → GSD → amplitude → method: median vertex error, ≤ 2 px share, share of buildings made
    worse; gates: share gated, median error of the gated (as output and as the default moves them)
    and of the ungated buildings."""
    pools: dict = {}
    groups = {key: [c for c in cases if c["region"] in part]
              for pool in (POOL_03, POOL_SPACENET)
              for key, part in pool_parts(pool, sorted({c["region"] for c in cases if c["pool"] == pool})).items()}
    for pool, mine in groups.items():
        for g in sorted({c["gsd"] for c in mine}):
            for a in sorted({c["amp"] for c in mine}):
                sel = [c for c in mine if c["gsd"] == g and c["amp"] == a]
                per: dict[str, list[np.ndarray]] = {}
                for c in sel:
                    for m, errs in method_errors(c, gates).items():
                        per.setdefault(m, []).extend(errs)
                before = _mean(per["input"])
                row: dict = {}
                for m, errs in per.items():
                    cat = np.concatenate([e for e in errs if len(e)])
                    row[m] = {"median_px": float(np.median(cat)), "within_2px": float((cat <= 2).mean()),
                              "n_vertices": int(len(cat)),
                              "share_buildings_worse": float(np.nanmean(_mean(errs) > before + WORSE_BY_PX))}
                dflt = [e for c in sel for e in c["default"]]
                inp = [e for c in sel for e in c["input"]]
                for gate in gates:
                    gated = np.concatenate([gated_at(gate, c["expected_px"], c["low"], c["move_px"]) for c in sel])
                    row[gate_label(gate)].update({
                        "share_gated": float(gated.mean()),
                        "share_gated_low_density": float(np.concatenate([c["low"] for c in sel]).mean()),
                        "gated_median_px_input": _median([e for e, q in zip(inp, gated) if q]),
                        "gated_median_px_default": _median([e for e, q in zip(dflt, gated) if q]),
                        "ungated_median_px_default": _median([e for e, q in zip(dflt, gated) if not q]),
                        "ungated_median_px_input": _median([e for e, q in zip(inp, gated) if not q])})
                exp = np.concatenate([c["expected_px"] for c in sel])
                row["default"]["median_expected_error_px"] = (float(np.nanmedian(exp)) if np.isfinite(exp).any()
                                                              else None)
                pools.setdefault(pool, {"regions": sorted({c["region"] for c in mine}),
                                        "by_gsd": {}})["by_gsd"].setdefault(f"{g:g}", {})[f"{a:g}"] = row
    return pools


def paired_worse(cases: list[dict], gates: list[float]) -> dict:
    """Region → GSD → amplitude → method: "worse/fields", fields (seeds) whose median vertex error
    exceeds the input's on the same map."""
    out: dict = {}
    for c in cases:
        errs = method_errors(c, gates)
        ref = _median(errs["input"])
        cell = out.setdefault(c["region"], {}).setdefault(f"{c['gsd']:g}", {}).setdefault(f"{c['amp']:g}", {})
        for m, e in errs.items():
            if m != "input":
                w, n = (int(x) for x in cell.get(m, "0/0").split("/"))
                cell[m] = f"{w + int(_median(e) > ref)}/{n + 1}"
    return out


def table(results: dict) -> str:
    gates = [gate_label(g) for g in results["gates_px"]]
    methods = ["input", "local", "default", *gates]
    lines = ["Median vertex error px (share of buildings made worse by more than "
             f"{results['worse_by_px']:g} px)", "",
             "| pool | GSD m | amplitude px | " + " | ".join(methods) + " | gated share (" +
             ", ".join(gate_label(g)[5:] for g in results["gates_px"]) + " px) |",
             "|---|---|---|" + "---|" * (len(methods) + 1)]
    for pool, p in results["pools"].items():
        for g, per_amp in p["by_gsd"].items():
            for a, row in per_amp.items():
                lines.append(f"| {pool} | {g} | {a} | {row['input']['median_px']:.2f} | " + " | ".join(
                    f"{row[m]['median_px']:.2f} ({row[m]['share_buildings_worse']:.0%})" for m in methods[1:])
                    + " | " + ", ".join(f"{row[m]['share_gated']:.0%}" for m in gates) + " |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pools = [p for p in results["pools"] if p in (POOL_03, POOL_SPACENET)]  # whole pools; origins in the table
    amps = [f"{a:g}" for a in results["amplitudes_px"]]
    fig, axes = plt.subplots(len(pools), len(amps), figsize=(4.2 * len(amps), 3.6 * len(pools)), dpi=110,
                             squeeze=False)
    for i, pool in enumerate(pools):
        by_gsd = results["pools"][pool]["by_gsd"]
        for j, a in enumerate(amps):
            ax = axes[i, j]
            for m in ["input", "local", "default", *(gate_label(g) for g in results["gates_px"])]:
                ys = [by_gsd[g][a][m]["median_px"] for g in by_gsd]
                ax.plot([float(g) for g in by_gsd], ys, "k--" if m == "input" else "o-", label=m)
            ax.set_title(f"{pool}, max amplitude {a} px", fontsize=9)
            ax.set_xlabel("raster GSD (m)")
            ax.set_ylabel("median vertex error (px of 0.3 m)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--amplitudes", type=float, nargs="+", default=[8.0, 16.0])
    ap.add_argument("--gsds", type=float, nargs="+", default=[0.3, 0.6, 1.0], help="raster GSDs (m)")
    ap.add_argument("--gates", type=gate_value, nargs="+", default=[2.0, 4.0, 8.0, AUTO_GATE],
                    help="--trust-gate values (px, or auto)")
    ap.add_argument("--regions", nargs="+", default=None, help="only the held-out regions whose names start so")
    ap.add_argument("--psf-sigma", type=float, default=0.0,
                    help="Gaussian blur (coarse px) before the block average; results in coarse_imagery_psfS.json")
    ap.add_argument("--model", type=Path, default=None,
                    help="model folder to measure in place of the shipped one (stats and calibration in it)")
    ap.add_argument("--name", default="coarse_imagery", help="stem of the result files")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    results = run(args.amplitudes, args.seeds, args.gsds, args.gates, args.regions, args.psf_sigma, args.model)
    results["seconds"]["total"] = round(time.perf_counter() - t0, 1)
    results["table_markdown"] = table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.name + (f"_psf{args.psf_sigma:g}" if args.psf_sigma > 0 else "")
    write_json(results, args.out / f"{stem}.json")
    plot(results, args.out / f"{stem}.png")
    print(results["table_markdown"])
    print("fields where the method's median exceeds the input's (worse/fields):")
    for name, per_gsd in results["worse_than_input"].items():
        for g, per_amp in per_gsd.items():
            for a, cell in per_amp.items():
                print(f"  {name} {g} m {a} px: " + ", ".join(f"{m} {v}" for m, v in cell.items()))
    print("gate check:", results["gate_check"])


if __name__ == "__main__":
    main()
