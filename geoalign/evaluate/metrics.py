"""Per-vertex registration error, its summary and the accuracy curve (the metric of Girard et al.
IGARSS 2019, docs/references.md).

Features are matched by an id field. For a matched pair:

* same total vertex count → **vertex-wise**: the distance between vertex i of the aligned feature
  and vertex i of the truth (align keeps count and order, so this is the exact error);
* otherwise → **to the boundary**: each aligned vertex's distance to the truth's boundary (a lower
  bound of the vertex-wise error: sliding along an edge is not counted).

Distances are measured in pixels of the image grid (after reprojecting both layers to the image
CRS) and in metres (× the image's ground sampling distance). The accuracy curve is the fraction
of vertices whose error is ≤ τ, for τ = 0..32 px in steps of 0.5 px.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from geoalign.errors import EmptyInputError, InputFileError
from geoalign.grid import PixelGrid, reproject_to
from geoalign.io.guard import refuse_folder_over_input
from geoalign.io.raster import RasterReader
from geoalign.io.vectors import read_vectors
from geoalign.io.writers import plot_accuracy_curves, write_json

TAU_PX = np.arange(0.0, 32.0 + 1e-9, 0.5)
THRESHOLDS_PX = (1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass
class VertexErrors:
    """Errors (px) of every vertex of every matched feature, and how the matching went."""

    error_px: np.ndarray
    vertexwise: np.ndarray  # bool per vertex: vertex-wise (True) or distance to boundary
    n_matched: int
    n_unmatched_aligned: int
    n_unmatched_truth: int


def _key(value):
    """Ids compare across formats: numpy scalars → Python, 12.0 → 12 (GPKG vs GeoJSON types)."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _index_by_id(gdf: gpd.GeoDataFrame, id_field: str, what: str) -> dict:
    if id_field not in gdf.columns:
        raise InputFileError(f"{what}: no field {id_field!r}; fields are {', '.join(map(str, gdf.columns))}.")
    ids = gdf[id_field].to_numpy()
    keep = ~gpd.pd.isna(ids)
    seen: dict = {}
    for pos in np.flatnonzero(keep):
        key = _key(ids[pos])
        if key in seen:
            raise InputFileError(f"{what}: id {key!r} appears more than once in {id_field!r}; ids must be unique.")
        seen[key] = pos
    return seen


def vertex_errors(aligned_px, truth_px, aligned_ids, truth_ids) -> VertexErrors:
    """Match pixel-coordinate geometries by id and measure every aligned vertex's error."""
    truth_pos = {k: i for i, k in enumerate(truth_ids)}
    errors, vertexwise = [], []
    n_matched = 0
    for geom, key in zip(aligned_px, aligned_ids):
        j = truth_pos.get(key)
        if j is None or geom is None or geom.is_empty or truth_px[j] is None or truth_px[j].is_empty:
            continue
        n_matched += 1
        a = shapely.get_coordinates(geom)
        t = shapely.get_coordinates(truth_px[j])
        if len(a) == len(t):
            errors.append(np.hypot(*(a - t).T))
            vertexwise.append(np.ones(len(a), bool))
        else:
            boundary = truth_px[j].boundary
            errors.append(shapely.distance(shapely.points(a), boundary))
            vertexwise.append(np.zeros(len(a), bool))
    cat = (lambda xs, dt: np.concatenate(xs) if xs else np.zeros(0, dt))
    return VertexErrors(cat(errors, np.float64), cat(vertexwise, bool), n_matched,
                        len(aligned_ids) - n_matched, len(set(truth_ids) - set(aligned_ids)))


def accuracy_curve(error_px: np.ndarray, tau_px: np.ndarray = TAU_PX) -> np.ndarray:
    """Fraction of vertices with error ≤ τ for each τ."""
    if len(error_px) == 0:
        return np.zeros(len(tau_px))
    srt = np.sort(error_px)
    return np.searchsorted(srt, tau_px, side="right") / len(srt)


def summarize(error_px: np.ndarray, gsd_m: float) -> dict:
    """Median / mean / p90 in px and m, fractions within thresholds, the curve."""
    e = np.asarray(error_px, np.float64)
    if len(e) == 0:
        return {"n_vertices": 0}
    return {
        "n_vertices": int(len(e)),
        "median_px": float(np.median(e)), "median_m": float(np.median(e) * gsd_m),
        "mean_px": float(e.mean()), "mean_m": float(e.mean() * gsd_m),
        "p90_px": float(np.percentile(e, 90)), "p90_m": float(np.percentile(e, 90) * gsd_m),
        "fraction_within_px": {f"{t:g}": float((e <= t).mean()) for t in THRESHOLDS_PX},
        "curve": {"tau_px": TAU_PX.tolist(), "fraction": accuracy_curve(e).tolist()},
    }


def _layer_px(path, grid: PixelGrid, id_field: str, what: str):
    gdf = read_vectors(path)
    if len(gdf) == 0:
        raise EmptyInputError(f"{path}: contains no features.")
    index = _index_by_id(gdf, id_field, str(path))
    gdf = reproject_to(gdf, grid.crs, source=str(path))
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    pos = np.array(sorted(index.values()), dtype=np.int64)
    ids = [_key(gdf[id_field].iloc[p]) for p in pos]
    return grid.to_pixels(geoms[pos]), ids


def evaluate_alignment(aligned_path, truth_path, image_path, id_field: str, out_dir, *,
                       before_path=None) -> dict:
    """``geoalign evaluate``: write ``evaluation.json`` and ``accuracy_curve.png`` into ``out_dir``.

    With ``before_path`` (the misaligned input), its errors are measured the same way and shown
    beside the aligned ones.
    """
    out_dir = Path(out_dir)
    refuse_folder_over_input(out_dir, ("evaluation.json", "accuracy_curve.png"),
                             [aligned_path, truth_path, image_path, before_path])
    with RasterReader(image_path) as reader:
        grid = PixelGrid.of(reader)
        gsd_m = reader.gsd_m
    truth_px, truth_ids = _layer_px(truth_path, grid, id_field, "truth")
    runs = {"aligned": aligned_path}
    if before_path is not None:
        runs = {"before": before_path, **runs}
    report: dict = {"id_field": id_field, "image": str(image_path), "gsd_m": gsd_m, "truth": str(truth_path),
                    "matching": "vertex-wise when vertex counts agree, else distance to the truth boundary"}
    curves = {}
    for name, path in runs.items():
        geoms, ids = _layer_px(path, grid, id_field, name)
        ve = vertex_errors(geoms, truth_px, ids, truth_ids)
        if ve.n_matched == 0:
            raise EmptyInputError(f"{path}: no feature matches the truth by {id_field!r}.")
        stats = summarize(ve.error_px, gsd_m)
        stats.update(path=str(path), n_matched=ve.n_matched, n_unmatched=ve.n_unmatched_aligned,
                     n_truth_unmatched=ve.n_unmatched_truth,
                     n_vertices_vertexwise=int(ve.vertexwise.sum()),
                     n_vertices_to_boundary=int((~ve.vertexwise).sum()))
        report[name] = stats
        curves[f"{name} (median {stats['median_px']:.2f} px)"] = (TAU_PX, np.array(stats["curve"]["fraction"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    report["paths"] = {"json": str(write_json(report, out_dir / "evaluation.json")),
                       "png": str(plot_accuracy_curves(curves, out_dir / "accuracy_curve.png",
                                                       title=f"registration error ({gsd_m:.3g} m/px)"))}
    return report
