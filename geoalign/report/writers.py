"""The trust report's files, written into an output set's staging folder (``report/...``).

* ``report/tiles.geojson``, ``report/low_density.geojson``, ``report/to_review.geojson`` — RFC 7946
  (WGS84 lon/lat, counter-clockwise exterior rings, no ``crs`` member; GDAL's RFC7946 option);
* ``report/report.gpkg`` — the same three layers (``tiles``, ``low_density``, ``to_review``) in
  the raster's CRS;
* ``report/report.json`` — counts, thresholds, model, calibration, timings;
* ``report/expected_error.png``, ``report/density_histogram.png``, ``report/nearest_training.png``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine

from geoalign.io.atomic import atomic_path

REPORT_DIR = "report"
NAMES = tuple(f"{REPORT_DIR}/{n}" for n in (
    "tiles.geojson", "low_density.geojson", "to_review.geojson", "report.gpkg", "report.json",
    "expected_error.png", "density_histogram.png", "nearest_training.png"))
PROPERTIES = ("tile_id", "row", "col", "density", "density_quantile", "low_density", "uncertainty",
              "denoising_factor", "shift_px", "shift_m", "shift_azimuth_deg", "mean_displacement_px",
              "n_buildings", "expected_error_px", "neighbour_error_px", "classical_confidence")


def tiles_frame(tiles: list[dict], work_transform: Affine, crs, *, extra: dict | None = None) -> gpd.GeoDataFrame:
    """One polygon per report tile in the raster's CRS with :data:`PROPERTIES` (+ ``extra`` columns)."""
    polys = []
    for t in tiles:
        c0, r0, c1, r1 = t["bounds_px"]
        corners = np.array([[c0, r0], [c1, r0], [c1, r1], [c0, r1]], np.float64)
        xy = np.column_stack([work_transform.a * corners[:, 0] + work_transform.b * corners[:, 1] + work_transform.c,
                              work_transform.d * corners[:, 0] + work_transform.e * corners[:, 1] + work_transform.f])
        polys.append(shapely.orient_polygons(shapely.Polygon(xy)) if hasattr(shapely, "orient_polygons")
                     else shapely.geometry.polygon.orient(shapely.Polygon(xy)))
    data = {k: [t.get(k) for t in tiles] for k in PROPERTIES}
    for k, v in (extra or {}).items():
        data[k] = v
    gdf = gpd.GeoDataFrame(data, geometry=polys, crs=crs)
    for k in ("low_density",):
        gdf[k] = gdf[k].astype(bool)
    return gdf


def to_review(tiles: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Tiles with buildings ranked by expected_error_px × n_buildings (the ones to check first)."""
    t = tiles[(tiles["n_buildings"] > 0) & np.isfinite(tiles["expected_error_px"].astype(float))].copy()
    t["review_score"] = t["expected_error_px"].astype(float) * t["n_buildings"]
    t = t.sort_values("review_score", ascending=False, kind="stable")
    t["review_rank"] = np.arange(1, len(t) + 1)
    return t


def write_geojson(gdf: gpd.GeoDataFrame, path: Path) -> Path:
    """RFC 7946 GeoJSON (lon/lat WGS84, right-hand rule, no crs member)."""
    with atomic_path(path) as tmp:
        gdf.to_crs(4326).to_file(tmp, driver="GeoJSON", RFC7946="YES", layer=path.stem)
    return path


def write_gpkg(layers: dict[str, gpd.GeoDataFrame], path: Path) -> Path:
    with atomic_path(path) as tmp:
        for name, gdf in layers.items():
            gdf.to_file(tmp, driver="GPKG", layer=name)
    return path


def _plain(v):
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (np.floating, float)):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def write_json(data: dict, path: Path) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(_plain(data), indent=2) + "\n")
    return path


def plot_expected_error(preview: np.ndarray, tiles: list[dict], scale: float, path: Path, *,
                        gate_px: float | str | None = None) -> Path:
    """The image (``preview``: (3, h, w) uint8, ``scale`` working px per preview px) with each
    tile's expected error in colour (tiles without buildings left clear)."""
    from matplotlib.figure import Figure  # no pyplot: drawn off the main thread, beside align's own writes

    h, w = preview.shape[1:]
    overlay = np.full((h, w), np.nan)
    for t in tiles:
        e = t["expected_error_px"]
        if t["n_buildings"] and e is not None and np.isfinite(e):
            c0, r0, c1, r1 = (int(round(v / scale)) for v in t["bounds_px"])
            overlay[r0:r1, c0:c1] = e
    fig = Figure(figsize=(8, 8 * h / max(w, 1) + 0.6), dpi=100)
    ax = fig.subplots()
    ax.imshow(np.moveaxis(preview, 0, -1))
    vmax = max(4.0, float(np.nanmax(overlay)) if np.isfinite(overlay).any() else 4.0)
    im = ax.imshow(overlay, cmap="inferno_r", alpha=0.5, vmin=0, vmax=vmax)
    fig.colorbar(im, ax=ax, fraction=0.04, label="expected error (px at the model's GSD)")
    for t in tiles:
        if t["low_density"]:
            c0, r0, c1, r1 = (v / scale for v in t["bounds_px"])
            ax.plot([c0, c1, c1, c0, c0], [r0, r0, r1, r1, r0], color="cyan", lw=1)
    ax.set_title("expected alignment error per tile" + (f" (gate {gate_px:g} px)" if isinstance(gate_px, float) else " (gate auto)" if gate_px else "")
                 + "; cyan: low density")
    ax.set_axis_off()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path


def plot_density_histogram(tile_density: np.ndarray, training_density: np.ndarray, threshold: float,
                           quantile: float, path: Path) -> Path:
    from matplotlib.figure import Figure  # no pyplot: drawn off the main thread, beside align's own writes

    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.subplots()
    d = np.asarray(tile_density, float)
    d = d[np.isfinite(d)]
    lo = min(d.min() if len(d) else 0.0, training_density.min())
    hi = max(d.max() if len(d) else 1.0, training_density.max())
    bins = np.linspace(lo, hi, 41)
    ax.hist(training_density, bins=bins, density=True, alpha=0.5, label=f"training patches ({len(training_density)})")
    if len(d):
        ax.hist(d, bins=bins, density=True, alpha=0.5, label=f"tiles ({len(d)})")
    ax.axvline(threshold, color="k", ls="--", label=f"low density: below the {quantile:.0%} training quantile")
    ax.set_xlabel("N_S (soft number of training neighbours)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path


def plot_nearest(queries: list[tuple[str, np.ndarray, list[int], list[float]]], exemplar_thumbs: np.ndarray,
                 path: Path) -> Path:
    """Rows: a tile's patch (RGB with the map's fill in red), then its nearest training patches
    (rotation-invariant k^C, from the exemplars stored with the model)."""
    from matplotlib.figure import Figure  # no pyplot: drawn off the main thread, beside align's own writes

    rows = max(1, len(queries))
    cols = 1 + max([len(q[2]) for q in queries] or [3])
    fig = Figure(figsize=(2 * cols, 2.1 * rows), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False)

    def show(ax, thumb, title):
        rgb = np.moveaxis(thumb[:3], 0, -1).astype(np.float32) / 255
        fill = thumb[3].astype(np.float32) / 255
        rgb[..., 0] = np.clip(rgb[..., 0] + 0.5 * fill, 0, 1)
        ax.imshow(rgb)
        ax.set_title(title, fontsize=7)

    for r in range(rows):
        for ax in axes[r]:
            ax.set_axis_off()
        if r >= len(queries):
            continue
        name, thumb, idx, sims = queries[r]
        show(axes[r][0], thumb, name)
        for c, (i, s) in enumerate(zip(idx, sims)):
            show(axes[r][c + 1], exemplar_thumbs[i], f"training #{i}: k={s:.2f}")
    if not queries:
        axes[0][0].text(0.5, 0.5, "no tile with buildings", ha="center", va="center")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path
