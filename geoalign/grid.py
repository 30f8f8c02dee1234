"""The image grid: pixel ↔ CRS coordinates, scales, and geometry transforms.

Pixel coordinates are (col, row) = (x, y) with (0, 0) at the top-left *corner* of the top-left
pixel, so the centre of pixel (i, j) is (j + 0.5, i + 0.5). At scale s (downsampling by 2^s) a
pixel coordinate is divided by 2^s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from pyproj import CRS, Geod, Transformer
from rasterio.windows import Window

from geoalign.errors import CRSError, EmptyInputError


@dataclass(frozen=True)
class PixelGrid:
    """A georeferenced pixel grid (what a raster or a window of it covers)."""

    transform: Affine
    width: int
    height: int
    crs: CRS

    @classmethod
    def of(cls, reader) -> "PixelGrid":
        return cls(reader.transform, reader.width, reader.height, CRS.from_user_input(reader.crs))

    def window(self, window: Window) -> "PixelGrid":
        """The sub-grid of a window (may extend past the edges)."""
        t = self.transform @ Affine.translation(window.col_off, window.row_off)
        return PixelGrid(t, int(window.width), int(window.height), self.crs)

    def downsampled(self, factor: int) -> "PixelGrid":
        """The same extent with pixels ``factor`` times larger."""
        return PixelGrid(
            self.transform @ Affine.scale(factor),
            int(math.ceil(self.width / factor)), int(math.ceil(self.height / factor)), self.crs,
        )

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t = self.transform
        cols = np.array([0, self.width, 0, self.width])
        rows = np.array([0, 0, self.height, self.height])
        xs, ys = t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f
        return float(np.min(xs)), float(np.min(ys)), float(np.max(xs)), float(np.max(ys))

    def to_pixels(self, geoms):
        """CRS geometries → pixel-coordinate geometries (shapely arrays welcome)."""
        inv = ~self.transform
        return shapely.transform(geoms, lambda xy: _apply_affine(inv, xy))

    def to_crs_coords(self, geoms):
        """Pixel-coordinate geometries → CRS geometries."""
        fwd = self.transform
        return shapely.transform(geoms, lambda xy: _apply_affine(fwd, xy))


def _apply_affine(t: Affine, xy: np.ndarray) -> np.ndarray:
    x, y = xy[:, 0], xy[:, 1]
    return np.column_stack([t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f])


def pixel_size_m(crs, transform: Affine, bounds) -> float:
    """Ground sampling distance in metres of a grid, for projected and geographic CRSs."""
    crs = CRS.from_user_input(crs)
    px = (abs(transform.a) + abs(transform.e)) / 2.0
    if crs.is_geographic:
        lat = (bounds[1] + bounds[3]) / 2.0
        lon = (bounds[0] + bounds[2]) / 2.0
        geod = Geod(ellps="WGS84")
        _, _, dx = geod.inv(lon, lat, lon + abs(transform.a), lat)
        _, _, dy = geod.inv(lon, lat, lon, lat + abs(transform.e))
        return float((dx + dy) / 2.0)
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    size = px * factor
    if crs.to_epsg() == 3857:  # web mercator: true size shrinks with cos(latitude)
        lat = math.degrees(math.atan(math.sinh(((bounds[1] + bounds[3]) / 2.0) / 6378137.0)))
        size *= math.cos(math.radians(lat))
    return float(size)


def reproject_to(gdf: gpd.GeoDataFrame, crs, *, source: str = "buildings") -> gpd.GeoDataFrame:
    """Reproject vectors to ``crs`` (the raster's), with a clear error when it is impossible."""
    if gdf.crs is None:
        raise CRSError(f"{source}: the vector data has no CRS.")
    target = CRS.from_user_input(crs)
    if CRS.from_user_input(gdf.crs) == target:
        return gdf
    try:
        out = gdf.to_crs(target)
    except Exception as err:
        raise CRSError(f"{source}: cannot reproject from {gdf.crs} to {target}: {err}") from None
    return out


def transform_bbox(bbox: tuple[float, float, float, float], src_crs, dst_crs) -> tuple[float, float, float, float]:
    """Reproject a bbox (W, S, E N) densely so curved edges are covered."""
    src, dst = CRS.from_user_input(src_crs), CRS.from_user_input(dst_crs)
    if src == dst:
        return tuple(float(v) for v in bbox)  # type: ignore[return-value]
    t = Transformer.from_crs(src, dst, always_xy=True)
    return tuple(float(v) for v in t.transform_bounds(*bbox, densify_pts=21))  # type: ignore[return-value]


def check_overlap(bbox, grid: PixelGrid, *, what: str = "bbox") -> None:
    """Raise when a bbox in the grid's CRS does not touch the grid."""
    w, s, e, n = grid.bounds
    if bbox[2] <= w or bbox[0] >= e or bbox[3] <= s or bbox[1] >= n:
        raise EmptyInputError(
            f"the {what} {tuple(round(v, 3) for v in bbox)} lies outside the raster "
            f"{tuple(round(v, 3) for v in grid.bounds)} (both in {grid.crs.to_string()})."
        )
