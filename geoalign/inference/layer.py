"""Align one layer of buildings to one raster: the aligner behind ``geoalign align``, the
realignment rounds of training and the pre-registration of dataset labels.

:func:`align_layer` predicts the field tile by tile (:func:`~geoalign.inference.tiling.predict_tiled`
on the predictor's working grid), streams it into a GeoTIFF on the image grid, then moves every
vertex by the field sampled bilinearly at its position, reading only the blocks it needs, so
rasters of any size fit in memory.

The field GeoTIFF: 2 bands float32 on the image grid, band 1 the move along the CRS's x axis
(east), band 2 along its y axis (north), both in the CRS's units (metres for a projected CRS).

The aligned layer: every input feature in input order with all its attributes, in the input CRS;
each vertex moved (vertex count and order unchanged); ``shift_m`` = mean vertex move in metres;
features that do not touch the raster are kept unchanged with ``outside_image = True``; those that
cross its edge have ``partly_outside = True`` (their vertices past the edge take the mean move of
their vertices on the raster, :func:`off_raster_moves`).
"""

from __future__ import annotations

import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from pyproj import CRS
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window

from geoalign.deform import sample_field
from geoalign.errors import EmptyInputError
from geoalign.grid import PixelGrid, reproject_to
from geoalign.inference.protocol import FieldPredictor
from geoalign.inference.tiling import TileField, TileInputs, WorkGrid, predict_tiled, work_transform
from geoalign.io.atomic import atomic_path
from geoalign.io.raster import RasterReader, block_windows, describe_displacement_bands, geotiff_profile
from geoalign.io.vectors import clean_buildings

BLOCK_PX = 1024  # field windows read when moving vertices and resampling the field
# The field's compression: Zstandard at level 1 with the floating-point predictor writes a 4000²
# field in 0.6 s against 1.7 s for deflate at level 1 (80 and 79 MB); GDAL reads it from 2.3 on
# (QGIS 3.22's GDAL 3.6 included).
FIELD_COMPRESSION = {"compress": "zstd", "zstd_level": 1, "predictor": 3}


@dataclass(frozen=True)
class FieldRaster:
    """The displacement field :func:`align_layer` wrote, and what the tiler counted."""

    path: Path  # 2-band float32 GeoTIFF on the image grid, CRS units (see module docstring)
    tiles: int
    tiles_with_buildings: int
    tiles_with_valid_pixels: int
    n_no_polygon: int = 0  # features with no polygon (null, empty, points, lines), kept unchanged


def _linear(transform) -> np.ndarray:
    """2×2 matrix turning pixel displacements (dx, dy) into CRS displacements."""
    return np.array([[transform.a, transform.b], [transform.d, transform.e]], np.float64)


def _px_to_crs(field_px: np.ndarray, lin: np.ndarray) -> np.ndarray:
    out = np.empty_like(field_px)
    out[0] = lin[0, 0] * field_px[0] + lin[0, 1] * field_px[1]
    out[1] = lin[1, 0] * field_px[0] + lin[1, 1] * field_px[1]
    return out


class BlockRowSink:
    """A strip sink writing whole rows of the GeoTIFF's internal blocks: strips arrive at any row
    offset (the tiles' footprints), are buffered until a row of ``block_px`` blocks is complete,
    and each block is written once (no partial block rewritten: the file grows by each block
    once). One GDAL dataset handle is not thread-safe: the lock serializes the writes."""

    def __init__(self, dst, width: int, height: int, block_px: int, transform_strip: Callable[[np.ndarray], np.ndarray]):
        self.dst, self.width, self.height, self.block_px = dst, width, height, int(block_px)
        self.transform_strip = transform_strip
        self._buf = np.zeros((2, 0, width), np.float32)
        self._off = 0  # first row of the buffer
        self._lock = threading.Lock()

    def __call__(self, row_off: int, strip: np.ndarray) -> None:
        if row_off != self._off + self._buf.shape[1]:
            raise RuntimeError(f"strips out of order: row {row_off}, expected {self._off + self._buf.shape[1]}")
        self._buf = np.concatenate([self._buf, strip.astype(np.float32, copy=False)], axis=1)
        end = self._off + self._buf.shape[1]
        ready = end if end >= self.height else (end // self.block_px) * self.block_px
        if ready > self._off:
            n = ready - self._off
            with self._lock:
                self.dst.write(self.transform_strip(self._buf[:, :n]).astype(np.float32),
                               window=Window(0, self._off, self.width, n))
            self._buf, self._off = self._buf[:, n:].copy(), ready


def _block_px(profile: dict) -> int:
    return int(profile.get("blockysize", 1)) if profile.get("tiled") else 1


def write_field(reader: RasterReader, inputs: TileInputs, predictor: FieldPredictor, path: Path, *,
                tile_px: int, blend_px: int, show_progress: bool,
                on_tile: Callable[[TileField], None] | None = None,
                predict: Callable[..., dict] = predict_tiled) -> dict:
    """Predict tile by tile and stream the field (CRS units) into ``path`` on the image grid, in
    whole rows of its internal blocks; returns the tiler's counts. ``predict`` computes and blends
    the tiles (:func:`~geoalign.inference.tiling.predict_tiled`'s signature; the Dask path
    :class:`geoalign.distributed.DaskTiler` runs them on a cluster)."""
    grid = inputs.grid
    img_profile = geotiff_profile(width=reader.width, height=reader.height, count=2, dtype="float32",
                                  crs=reader.crs, transform=reader.transform)
    img_profile.update(FIELD_COMPRESSION)
    lin = _linear(reader.transform)
    tiled = dict(tile_px=tile_px, blend_px=blend_px, show_progress=show_progress, on_tile=on_tile)
    with rasterio.Env(GDAL_CACHEMAX=512 * 1024 * 1024), atomic_path(path) as tmp:
        if grid.px_ratio == 1.0:
            with rasterio.open(tmp, "w", **img_profile) as dst:
                sink = BlockRowSink(dst, grid.width, grid.height, _block_px(img_profile),
                                    lambda strip: _px_to_crs(strip, lin))
                stats = predict(inputs, predictor, sink=sink, **tiled)
                describe_displacement_bands(dst, reader.crs)
            return stats
        # Another GSD: write the working-grid field, then resample it block by block.
        work_profile = geotiff_profile(width=grid.width, height=grid.height, count=2, dtype="float32",
                                       crs=reader.crs, transform=work_transform(reader.transform, grid.px_ratio))
        work_profile.update(FIELD_COMPRESSION)
        with tempfile.TemporaryDirectory(dir=Path(path).parent) as tdir:
            work_path = Path(tdir) / "work_field.tif"
            with rasterio.open(work_path, "w", **work_profile) as dst:
                sink = BlockRowSink(dst, grid.width, grid.height, _block_px(work_profile),
                                    lambda strip: _px_to_crs(strip * grid.px_ratio, lin))
                stats = predict(inputs, predictor, sink=sink, **tiled)
            with rasterio.open(work_path) as src, rasterio.open(tmp, "w", **img_profile) as dst:
                for win in block_windows(reader.width, reader.height, BLOCK_PX):
                    out = np.zeros((2, int(win.height), int(win.width)), np.float32)
                    reproject(rasterio.band(src, (1, 2)), out, src_transform=src.transform, src_crs=src.crs,
                              dst_transform=rasterio.windows.transform(win, reader.transform),
                              dst_crs=reader.crs, resampling=Resampling.bilinear)
                    dst.write(out, window=win)
                describe_displacement_bands(dst, reader.crs)
        return stats


def sample_displacement(path: Path, points_px: np.ndarray) -> np.ndarray:
    """Bilinear field values (CRS units) at image pixel positions (n, 2), reading only needed blocks.

    Points past the raster take the nearest edge value.
    """
    out = np.zeros((len(points_px), 2), np.float64)
    if len(points_px) == 0:
        return out
    with rasterio.open(path) as src:
        W, H = src.width, src.height
        pts = np.column_stack([np.clip(points_px[:, 0], 0, W), np.clip(points_px[:, 1], 0, H)])
        bi = np.minimum((pts[:, 1] // BLOCK_PX).astype(np.int64), (H - 1) // BLOCK_PX)
        bj = np.minimum((pts[:, 0] // BLOCK_PX).astype(np.int64), (W - 1) // BLOCK_PX)
        keys = bi * (W // BLOCK_PX + 2) + bj
        for key in np.unique(keys):
            sel = keys == key
            i, j = int(bi[sel][0]), int(bj[sel][0])
            r0, c0 = max(0, i * BLOCK_PX - 1), max(0, j * BLOCK_PX - 1)
            r1, c1 = min(H, (i + 1) * BLOCK_PX + 1), min(W, (j + 1) * BLOCK_PX + 1)
            block = src.read(window=Window(c0, r0, c1 - c0, r1 - r0)).astype(np.float64)
            out[sel] = sample_field(block, pts[sel] - np.array([c0, r0]))
    return out


def off_raster_moves(delta: np.ndarray, px: np.ndarray, index: np.ndarray,
                     size_px: tuple[int, int]) -> np.ndarray:
    """Per-vertex moves where each vertex past the raster takes the mean move of its feature's
    vertices on the raster (``index``: feature of each vertex; ``size_px``: raster width, height).

    Why: a vertex past the edge has no evidence of its own; the field at the raster's outermost
    pixels, where the predictors see the least context, scatters most. The visible part's mean
    move carries the feature's off-raster part along with it. A feature with no vertex on the
    raster keeps the field at the nearest edge (``sample_displacement``)."""
    off = (px[:, 0] < 0) | (px[:, 0] > size_px[0]) | (px[:, 1] < 0) | (px[:, 1] > size_px[1])
    if not off.any():
        return delta
    on = ~off
    n = int(index.max()) + 1
    counts = np.bincount(index[on], minlength=n)
    means = np.column_stack([np.bincount(index[on], weights=delta[on, c], minlength=n) for c in range(2)])
    take = off & (counts[index] > 0)
    out = delta.copy()
    out[take] = means[index[take]] / counts[index[take], None]
    return out


def move_features(gdf_img: gpd.GeoDataFrame, grid: PixelGrid, field_path: Path, gsd_m: float):
    """New geometries (image CRS), the moved mask, per-feature mean move in metres, and the
    outside / partly-outside flags."""
    geoms = np.asarray(gdf_img.geometry.values, dtype=object)
    present = np.array([g is not None and not g.is_empty for g in geoms], dtype=bool)
    footprint = shapely.box(*grid.bounds)
    outside = present.copy()
    outside[present] = ~shapely.intersects(geoms[present], footprint)
    moving = present & ~outside
    partly = np.zeros(len(geoms), bool)
    partly[moving] = ~shapely.within(geoms[moving], footprint)
    has_z = bool(np.any(shapely.has_z(geoms[moving]))) if moving.any() else False
    coords, index = shapely.get_coordinates(geoms[moving], include_z=has_z, return_index=True)
    inv = ~grid.transform
    px = np.column_stack([inv.a * coords[:, 0] + inv.b * coords[:, 1] + inv.c,
                          inv.d * coords[:, 0] + inv.e * coords[:, 1] + inv.f])
    delta = off_raster_moves(sample_displacement(field_path, px), px, index,  # CRS units
                             (grid.width, grid.height))
    shifted = coords.copy()
    shifted[:, :2] += delta
    moved = shapely.set_coordinates(geoms[moving].copy(), shifted) if len(coords) else geoms[moving]
    crs_px = (abs(grid.transform.a) + abs(grid.transform.e)) / 2.0
    move_m = np.hypot(delta[:, 0], delta[:, 1]) * (gsd_m / crs_px)
    shift = np.zeros(len(geoms))
    if len(coords):
        sums = np.bincount(index, weights=move_m, minlength=int(moving.sum()))
        counts = np.bincount(index, minlength=int(moving.sum()))
        shift[moving] = sums / np.maximum(counts, 1)
    new = geoms.copy()
    new[moving] = moved
    return new, moving, shift, outside, partly


def moved_mask(aligned: gpd.GeoDataFrame) -> np.ndarray:
    """Which features of :func:`align_layer`'s output were moved (present and on the raster)."""
    present = np.array([g is not None and not g.is_empty for g in aligned.geometry.values], dtype=bool)
    return present & ~aligned["outside_image"].to_numpy(dtype=bool)


def align_layer(
    reader: RasterReader, buildings: gpd.GeoDataFrame, predictor: FieldPredictor, field_path: str | Path, *,
    tile_px: int = 2048, blend_px: int = 64, show_progress: bool = True, source: str = "buildings",
    on_tile: Callable[[TileField], None] | None = None, predict: Callable[..., dict] = predict_tiled,
) -> tuple[gpd.GeoDataFrame, FieldRaster]:
    """Align ``buildings`` (any CRS) to ``reader``'s raster with ``predictor``.

    Writes the field to ``field_path`` (atomically) and returns (aligned layer, the field); see the
    module docstring for both. ``on_tile`` is :func:`~geoalign.inference.tiling.predict_tiled`'s
    per-tile hook; ``predict`` computes and blends the tiles (:func:`write_field`); ``source``
    names the buildings in messages. Raises ``EmptyInputError`` for a
    layer without features; warns when no feature lies on the raster or no pixel under them is
    valid.
    """
    if len(buildings) == 0:
        raise EmptyInputError(f"{source}: contains no features.")
    grid = PixelGrid.of(reader)
    cleaned = clean_buildings(buildings, source=source, non_areal="kept unchanged")
    # repaired geometries replace invalid ones; features with no polygon stay as they are
    repaired = np.asarray(buildings.geometry.values, dtype=object).copy()
    repaired[buildings.index.get_indexer(cleaned.index)] = np.asarray(cleaned.geometry.values, dtype=object)
    buildings = buildings.set_geometry(gpd.GeoSeries(repaired, index=buildings.index, crs=buildings.crs))
    work = WorkGrid.for_predictor(reader, predictor.gsd_m)
    map_geoms = grid.to_pixels(np.asarray(reproject_to(cleaned, grid.crs).geometry.values, dtype=object))
    if work.px_ratio != 1.0:
        map_geoms = shapely.transform(map_geoms, lambda xy: xy / work.px_ratio)
    inputs = TileInputs(reader, work, map_geoms, tuple(predictor.channels))
    field_path = Path(field_path)
    stats = write_field(reader, inputs, predictor, field_path, tile_px=tile_px, blend_px=blend_px,
                        show_progress=show_progress, on_tile=on_tile, predict=predict)
    gdf_img = reproject_to(buildings, grid.crs)
    new_geoms, moving, shift, outside, partly = move_features(gdf_img, grid, field_path, reader.gsd_m)
    if not moving.any():
        warnings.warn(f"none of the {len(buildings)} features of {source} lies on {reader.path}: "
                      "nothing was moved (check that both cover the same area).", UserWarning)
    elif stats["tiles_with_valid_pixels"] == 0:
        warnings.warn(f"{reader.path} has no valid pixel under the buildings (nodata everywhere): "
                      "nothing was moved.", UserWarning)
    # Back to the input CRS; unmoved features keep their exact input geometry.
    moved_series = gpd.GeoSeries(new_geoms[moving], crs=grid.crs)
    if CRS.from_user_input(buildings.crs) != CRS.from_user_input(grid.crs):
        moved_series = moved_series.to_crs(buildings.crs)
    geoms_out = np.asarray(buildings.geometry.values, dtype=object).copy()
    geoms_out[moving] = np.asarray(moved_series.values, dtype=object)
    out = buildings.copy()
    out = out.set_geometry(gpd.GeoSeries(geoms_out, index=buildings.index, crs=buildings.crs))
    out["shift_m"] = shift
    out["outside_image"] = outside
    out["partly_outside"] = partly
    return out, FieldRaster(field_path, stats["tiles"], stats["tiles_with_buildings"],
                            stats["tiles_with_valid_pixels"], len(buildings) - len(cleaned))
