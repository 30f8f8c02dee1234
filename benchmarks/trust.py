"""Does the trust report's expected error track the actual error? (``make bench-trust``)

Held-out evaluation regions (:func:`geoalign.report.calibrate.evaluation_regions`: the south
halves of the Austin, Kampala and Atlanta east strips and the whole validation chip, never used
by the calibration), resampled to 0.3 m; truth buildings misaligned by random smooth fields of
8, 16 and 32 px (correlation length 128 px), ``--seeds`` seeds each; the default pipeline
(local+learned) aligns each region as one tile and :class:`geoalign.report.trust.TrustReport`
scores it. Measured against the actual per-vertex errors:

* tiles: Spearman(expected_error_px, median vertex error of the tile's buildings), and the
  same for ``uncertainty``, ``density`` and the classical peak confidence alone (pooled over
  all cases; tiles with buildings);
* buildings: Spearman(expected_error_px, mean vertex error);
* flagged tiles (low density, or expected error > 2 px, i.e. confidence < 0.5) against the
  others: ratio of median actual errors;
* buildings per evaluation region: share with confidence < 0.5, median confidence and actual
  error (the Atlanta pan tile's held-out strip is "sample_geotiff");
* stale map: the Austin sample's footprints drawn on the NEON forest raster (mirrored copies of
  the 40 m tile fill the Austin extent), share of buildings with confidence < 0.5; the same on a
  Landsat scene (300 m) resampled to 0.3 m, imagery unlike the training data, and on the Atlanta
  pan tile (1 band, mirrored copies: its own buildings are not where the Austin map draws them;
  the rest of that tile is a training source of the default model).

Writes ``benchmarks/results/trust.json``. One torch thread. What the report costs next to
``align``: :mod:`benchmarks.report_speed`.

    python -m benchmarks.trust [--seeds 3] [--amplitudes 8 16 32]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from geoalign.report import calibrate as C
from geoalign.report.calibration import TOLERANCE_PX
from geoalign.report.trust import TrustReport

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "geoalign/model/default"
RESULTS = ROOT / "benchmarks/results"
STALE = ROOT / "sample_data/stale_map"
ATLANTA_PAN = ROOT / "sample_data/training/atlanta_spacenet_pan/sample_geotiff.tif"
AUSTIN = C.Region("austin", ROOT / "sample_data/austin_inria/austin1_crop_nw_rgb.tif",
                  ROOT / "sample_data/austin_inria/austin1_crop_nw_buildings.geojson", (0.0, 1.0), (0.0, 1.0))


def _rho(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok]).statistic) if ok.sum() > 2 else float("nan")


def _factory(b, shape, transform):
    return TrustReport(buildings_px=b, grid_shape=shape, work_transform=transform, model_dir=MODEL)


def _set_model(path: Path) -> None:
    global MODEL
    MODEL = path


def _stale_canvas(raster: Path, austin: C.RegionData, *, window_px: int | None = None) -> C.RegionData:
    """``raster`` at 0.3 m, mirrored copies filling the Austin extent; the Austin footprints on it."""
    from geoalign.io.raster import RasterReader
    from rasterio.windows import Window

    H, W = austin.image.shape[-2:]
    with RasterReader(raster) as r:
        if window_px:  # a few source pixels, upsampled (e.g. 300 m Landsat → 0.3 m)
            win = Window(r.width // 2, r.height // 2, window_px, window_px)
            image, valid = r.read(win, out_shape=(H, W))
        else:
            zoom = r.gsd_m / 0.3
            shape = (int(round(r.height * zoom)), int(round(r.width * zoom)))
            tile, tvalid = r.read(out_shape=shape)
            reps = (-(-H // (2 * shape[0])), -(-W // (2 * shape[1])))

            def mirror(a):
                quad = np.concatenate([np.concatenate([a, a[..., ::-1]], -1),
                                       np.concatenate([a[..., ::-1, :], a[..., ::-1, ::-1]], -1)], -2)
                return np.tile(quad, (1,) * (a.ndim - 2) + reps)[..., :H, :W]

            image, valid = mirror(tile), mirror(tvalid)
    return C.RegionData(f"Austin footprints on {raster.name}", np.ascontiguousarray(image),
                        np.ascontiguousarray(valid), austin.transform, austin.crs, austin.truth)


def run(amplitudes: list[float], seeds: int) -> dict:
    predictor = C.default_predictor(MODEL)
    tiles, buildings = [], []
    regions = C.evaluation_regions(MODEL)
    per_region = {}
    t0 = time.perf_counter()
    for k, region in enumerate(regions):
        data = C.load_region(region)
        per_region[region.name] = {"n_buildings": int(len(data.truth)), "raster_px": list(data.image.shape[1:])}
        if len(data.truth) == 0:
            continue
        for amp in amplitudes:
            for seed in range(seeds):
                mis = C.misalign(data, amp, [int(amp), seed, 1000 + k])
                res = C.run_case(data, mis, data.truth, predictor, _factory)
                out = res.report.finish()
                for b in range(len(mis)):
                    buildings.append((region.name, amp, seed, out.expected_error_px[b], out.confidence[b],
                                      res.building_error_px[b]))
                for n, t in enumerate(out.tiles):
                    members = np.flatnonzero(out.tile_of_building == n)
                    if len(members) == 0:
                        continue
                    actual = float(np.median(np.concatenate([res.vertex_error_px[b] for b in members])))
                    tiles.append({"region": region.name, "amplitude": amp, "seed": seed, "actual_px": actual,
                                  **{key: t[key] for key in ("expected_error_px", "uncertainty", "density",
                                                             "density_quantile", "low_density", "n_buildings",
                                                             "classical_confidence")}})
                print(f"{region.name} {amp:g} px seed {seed}: median error "
                      f"{np.median(res.building_error_px):.2f} px, median expected "
                      f"{np.nanmedian(out.expected_error_px):.2f} px", flush=True)
    T = {k: np.array([t[k] for t in tiles], float) for k in tiles[0]
         if k != "region"} if tiles else {}
    B = np.array([b[3:] for b in buildings], float)
    flagged = (T["low_density"] > 0) | (T["expected_error_px"] > TOLERANCE_PX)
    med_f = float(np.median(T["actual_px"][flagged])) if flagged.any() else float("nan")
    med_u = float(np.median(T["actual_px"][~flagged])) if (~flagged).any() else float("nan")
    top = T["expected_error_px"] > np.nanquantile(T["expected_error_px"], 0.75)
    regions_t = np.array([t["region"] for t in tiles])
    within = {r: _rho(T["expected_error_px"][regions_t == r], T["actual_px"][regions_t == r])
              for r in sorted(set(regions_t)) if (regions_t == r).sum() >= 9}
    B_regions = np.array([b[0] for b in buildings])
    within_b = {r: _rho(B[B_regions == r, 0], B[B_regions == r, 2])
                for r in sorted(set(B_regions)) if (B_regions == r).sum() >= 9}
    result = {
        "regions": per_region, "amplitudes_px": amplitudes, "seeds": seeds,
        "n_tile_cases": int(len(tiles)), "n_building_cases": int(len(B)),
        "tiles": {
            "spearman_expected_error": _rho(T["expected_error_px"], T["actual_px"]),
            "spearman_uncertainty": _rho(T["uncertainty"], T["actual_px"]),
            "spearman_minus_density": _rho(-T["density"], T["actual_px"]),
            "spearman_minus_classical_confidence": _rho(-T["classical_confidence"], T["actual_px"]),
            "flagged": int(flagged.sum()), "unflagged": int((~flagged).sum()),
            "flag_rule": f"low_density or expected_error_px > {TOLERANCE_PX:g} px (confidence < 0.5)",
            "median_actual_px_flagged": med_f, "median_actual_px_unflagged": med_u,
            "flagged_over_unflagged": med_f / med_u if med_u > 0 else float("nan"),
            "top_quarter_expected_over_rest": float(np.median(T["actual_px"][top]) / np.median(T["actual_px"][~top])),
            "spearman_within_region": within,
        },
        "buildings": {"spearman_expected_error": _rho(B[:, 0], B[:, 2]),
                      "spearman_within_region": within_b,
                      "median_actual_px": float(np.median(B[:, 2])),
                      "by_region": {r: {"n": int((B_regions == r).sum()),
                                        "share_confidence_below_0p5": float(np.mean(
                                            B[(B_regions == r) & np.isfinite(B[:, 1]), 1] < 0.5)),
                                        "median_confidence": float(np.nanmedian(B[B_regions == r, 1])),
                                        "median_actual_px": float(np.median(B[B_regions == r, 2]))}
                                    for r in sorted(set(B_regions))},
                      "median_expected_px": float(np.nanmedian(B[:, 0]))},
        "floors": {"tiles_spearman": 0.5, "buildings_spearman": 0.4, "flagged_ratio": 1.5,
                   "stale_confidence_below_0p5": 0.8},
    }
    austin = C.load_region(AUSTIN)
    result["stale"] = {}
    for name, raster, window in (("forest (NEON 0.1 m)", STALE / "deepforest_OSBS_029_rgb.tif", None),
                                 ("Landsat (300 m) resampled", STALE / "RGB.byte.tif", 2),
                                 ("Atlanta pan (0.5 m, 1 band)", ATLANTA_PAN, None)):
        data = _stale_canvas(raster, austin, window_px=window)
        res = C.run_case(data, data.truth, None, predictor, _factory)
        out = res.report.finish()
        conf = out.confidence[np.isfinite(out.confidence)]
        result["stale"][name] = {"n_buildings": int(len(conf)),
                                 "share_confidence_below_0p5": float((conf < 0.5).mean()) if len(conf) else None,
                                 "median_confidence": float(np.median(conf)) if len(conf) else None,
                                 "low_density_tiles": int(sum(t["low_density"] for t in out.tiles)),
                                 "tiles": len(out.tiles)}
        print(name, result["stale"][name], flush=True)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--amplitudes", type=float, nargs="+", default=[8.0, 16.0, 32.0])
    ap.add_argument("--out", type=Path, default=RESULTS / "trust.json")
    ap.add_argument("--model", type=Path, default=MODEL, help="model folder (stats and calibration in it)")
    args = ap.parse_args()
    _set_model(args.model)
    torch.set_num_threads(1)
    result = run(args.amplitudes, args.seeds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("tiles", "buildings", "stale")}, indent=2))


if __name__ == "__main__":
    main()
