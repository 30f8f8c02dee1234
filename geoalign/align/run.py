"""``geoalign align``: predict the field over a raster, move every vertex by it, write the outputs.

Outputs in OUTDIR, written as one set (:mod:`geoalign.io.output_set`: ``run.json``, written
last, lists them with their SHA-256; other files in OUTDIR are never touched):

* ``displacement.tif`` — 2 bands float32 on the image grid (tiled, compressed), written strip by
  strip while tiles are predicted: band 1 the move along the CRS's x axis (east), band 2 along its
  y axis (north), both in the CRS's units (metres for a projected CRS);
* ``aligned.geojson`` and ``aligned.gpkg`` (layer ``aligned``) — every input feature in input order
  with all its attributes, in the input CRS; each vertex moved by the field sampled bilinearly at
  its position (vertex count and order unchanged); ``shift_m`` = mean vertex move in metres;
  features that do not touch the raster are kept unchanged with ``outside_image = True``; those
  that cross its edge have ``partly_outside = True`` (their vertices past the edge take the field
  at the edge);
* ``overlay.png`` — the image (decimated to ≤ ``overlay_max_px``) with input outlines in red and
  aligned ones in green.
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from dataclasses import dataclass, field as dc_field
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from pyproj import CRS
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window

from geoalign.inference.tiling import TileSource, WorkGrid, iter_blocks, predict_tiled, work_transform
from geoalign.deform import sample_field
from geoalign.errors import EmptyInputError
from geoalign.grid import PixelGrid, reproject_to
from geoalign.io.atomic import atomic_path
from geoalign.io.output_set import output_set
from geoalign.io.raster import RasterReader, geotiff_profile
from geoalign.io.vectors import clean_buildings, read_vectors, write_vectors
from geoalign.io.writers import draw_overlay

log = logging.getLogger(__name__)

BLOCK_PX = 1024  # field windows read when moving vertices


@dataclass
class AlignResult:
    """What one run did, for the summary line and for callers."""

    out_dir: Path
    method: str
    n_features: int
    n_outside: int
    width: int
    height: int
    seconds: float
    median_shift_m: float
    tiles: int
    tiles_with_buildings: int
    note: str = ""
    paths: dict = dc_field(default_factory=dict)

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    def summary(self) -> str:
        mps = self.megapixels / self.seconds if self.seconds > 0 else float("inf")
        note = f" ({self.note})" if self.note else ""
        return (f"aligned {self.n_features} features ({self.n_outside} outside the image) with "
                f"{self.method}{note} on {self.width}×{self.height} px in {self.seconds:.1f} s "
                f"({mps:.2f} MP/s); median shift {self.median_shift_m:.2f} m → {self.out_dir}")


def _linear(transform) -> np.ndarray:
    """2×2 matrix turning pixel displacements (dx, dy) into CRS displacements."""
    return np.array([[transform.a, transform.b], [transform.d, transform.e]], np.float64)


def _px_to_crs(field_px: np.ndarray, lin: np.ndarray) -> np.ndarray:
    out = np.empty_like(field_px)
    out[0] = lin[0, 0] * field_px[0] + lin[0, 1] * field_px[1]
    out[1] = lin[1, 0] * field_px[0] + lin[1, 1] * field_px[1]
    return out


def write_displacement(reader: RasterReader, source: TileSource, predictor, path: Path, *,
                       tile_px: int, blend_px: int, show_progress: bool) -> dict:
    """Predict tile by tile and stream the field (CRS units) into ``path`` on the image grid."""
    grid = source.grid
    img_profile = geotiff_profile(width=reader.width, height=reader.height, count=2, dtype="float32",
                                  crs=reader.crs, transform=reader.transform)
    # deflate at level 1: 2× faster to write, files ~2 % larger
    img_profile.update(zlevel=1)
    lin = _linear(reader.transform)
    with rasterio.Env(GDAL_CACHEMAX=512 * 1024 * 1024), atomic_path(path) as tmp:
        if grid.scale == 1.0:
            with rasterio.open(tmp, "w", **img_profile) as dst:
                def sink(row_off: int, strip: np.ndarray) -> None:
                    dst.write(_px_to_crs(strip, lin).astype(np.float32),
                              window=Window(0, row_off, grid.width, strip.shape[1]))
                stats = predict_tiled(source, predictor, tile_px=tile_px, blend_px=blend_px,
                                      sink=sink, show_progress=show_progress)
                _describe_bands(dst, reader.crs)
            return stats
        # Other GSD: write the working-grid field, then resample it block by block.
        wt = work_transform(reader.transform, grid.scale)
        work_profile = geotiff_profile(width=grid.width, height=grid.height, count=2, dtype="float32",
                                       crs=reader.crs, transform=wt)
        work_profile.update(zlevel=1)
        with tempfile.TemporaryDirectory(dir=path.parent) as tdir:
            work_path = Path(tdir) / "work_field.tif"
            with rasterio.open(work_path, "w", **work_profile) as dst:
                def sink(row_off: int, strip: np.ndarray) -> None:
                    dst.write(_px_to_crs(strip * grid.scale, lin).astype(np.float32),
                              window=Window(0, row_off, grid.width, strip.shape[1]))
                stats = predict_tiled(source, predictor, tile_px=tile_px, blend_px=blend_px,
                                      sink=sink, show_progress=show_progress)
            with rasterio.open(work_path) as src, rasterio.open(tmp, "w", **img_profile) as dst:
                for win in iter_blocks(reader.height, reader.width, BLOCK_PX):
                    out = np.zeros((2, int(win.height), int(win.width)), np.float32)
                    reproject(rasterio.band(src, (1, 2)), out, src_transform=src.transform, src_crs=src.crs,
                              dst_transform=rasterio.windows.transform(win, reader.transform),
                              dst_crs=reader.crs, resampling=Resampling.bilinear)
                    dst.write(out, window=win)
                _describe_bands(dst, reader.crs)
        return stats


def _describe_bands(dst, crs) -> None:
    """Band names and units, so GIS tools show what the numbers are."""
    unit = (crs.linear_units or "CRS units") if crs is not None else "CRS units"
    for band, axis in ((1, "dx, east"), (2, "dy, north")):
        dst.set_band_description(band, f"{axis} ({unit})")
        dst.update_tags(band, units=unit)


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


def move_features(gdf_img: gpd.GeoDataFrame, grid: PixelGrid, field_path: Path, gsd_m: float):
    """New geometries (image CRS), per-feature mean move in metres, and the outside flags."""
    geoms = np.asarray(gdf_img.geometry.values, dtype=object)
    present = np.array([g is not None and not g.is_empty for g in geoms])
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
    delta = sample_displacement(field_path, px)  # CRS units
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


def align_raster(
    image_path: str | Path, buildings_path: str | Path, out_dir: str | Path, predictor, *,
    method: str | None = None, note: str = "", tile_px: int = 2048, blend_px: int = 64,
    layer: str | None = None, overlay_max_px: int = 1600, show_progress: bool = True,
) -> AlignResult:
    """Align the buildings to the image with ``predictor`` (a FieldPredictor); see module docstring."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    gdf = read_vectors(buildings_path, layer=layer)
    if len(gdf) == 0:
        raise EmptyInputError(f"{buildings_path}: contains no features.")
    cleaned = clean_buildings(gdf, source=str(buildings_path))  # for the map raster only
    names = ("displacement.tif", "aligned.geojson", "aligned.gpkg", "overlay.png")
    with RasterReader(image_path) as reader, output_set(out_dir, names, command="align") as stage:
        grid = PixelGrid.of(reader)
        gsd_m = reader.gsd_m
        work = WorkGrid.for_predictor(reader, getattr(predictor, "gsd_m", None))
        map_geoms = grid.to_pixels(np.asarray(reproject_to(cleaned, grid.crs).geometry.values, dtype=object))
        if work.scale != 1.0:
            map_geoms = shapely.transform(map_geoms, lambda xy: xy / work.scale)
        source = TileSource(reader, work, map_geoms, tuple(getattr(predictor, "channels", ()) or ()) or
                            ("fill", "edges", "vertices"))
        field_path = stage / "displacement.tif"
        stats = write_displacement(reader, source, predictor, field_path, tile_px=tile_px,
                                   blend_px=blend_px, show_progress=show_progress)
        gdf_img = reproject_to(gdf, grid.crs)
        new_geoms, moving, shift, outside, partly = move_features(gdf_img, grid, field_path, gsd_m)
        if not moving.any():
            warnings.warn(f"none of the {len(gdf)} features of {buildings_path} lies on {image_path}: "
                          "nothing was moved (check that both cover the same area).", UserWarning)
        elif stats["tiles_with_valid_pixels"] == 0:
            warnings.warn(f"{image_path} has no valid pixel under the buildings (nodata everywhere): "
                          "nothing was moved.", UserWarning)

        # Back to the input CRS; unmoved features keep their exact input geometry.
        out = gdf.copy()
        moved_series = gpd.GeoSeries(new_geoms[moving], crs=grid.crs)
        if CRS.from_user_input(gdf.crs) != CRS.from_user_input(grid.crs):
            moved_series = moved_series.to_crs(gdf.crs)
        geoms_out = np.asarray(gdf.geometry.values, dtype=object).copy()
        geoms_out[moving] = np.asarray(moved_series.values, dtype=object)
        out = out.set_geometry(gpd.GeoSeries(geoms_out, index=gdf.index, crs=gdf.crs))
        out["shift_m"] = shift
        out["outside_image"] = outside
        out["partly_outside"] = partly
        write_vectors(out, stage / "aligned.geojson")
        write_vectors(out, stage / "aligned.gpkg")

        factor = max(1.0, max(reader.width, reader.height) / overlay_max_px)
        shape = (max(1, int(round(reader.height / factor))), max(1, int(round(reader.width / factor))))
        image, _ = reader.read(out_shape=shape)
        sx, sy = shape[1] / reader.width, shape[0] / reader.height
        scale = lambda geoms: shapely.transform(grid.to_pixels(geoms), lambda xy: xy * np.array([sx, sy]))  # noqa: E731
        before = scale(np.asarray(gdf_img.geometry.values, dtype=object)[moving])
        after = scale(new_geoms[moving])
        draw_overlay(image, [(before, (255, 0, 0)), (after, (0, 255, 0))], stage / "overlay.png")
    paths = {"displacement": out_dir / names[0], "geojson": out_dir / names[1], "gpkg": out_dir / names[2],
             "overlay": out_dir / names[3]}
    seconds = time.perf_counter() - t0
    shifts = shift[moving]
    return AlignResult(
        out_dir=out_dir, method=method or getattr(predictor, "name", type(predictor).__name__),
        n_features=len(gdf), n_outside=int(outside.sum()), width=grid.width, height=grid.height,
        seconds=seconds, median_shift_m=float(np.median(shifts)) if len(shifts) else 0.0,
        tiles=stats["tiles"], tiles_with_buildings=stats["tiles_with_buildings"], note=note, paths=paths,
    )
