"""One training pair: an image patch, the map misaligned by a known smooth field, the field.

Everything here is in the pixels of the pair's own scale, with the patch's top-left corner at
(0, 0). A margin around the patch lets buildings that cross its border move in and out of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from rasterio.windows import Window
from shapely.strtree import STRtree

from geoalign.deform import deform_geometries, random_smooth_field
from geoalign.io.raster import RasterReader
from geoalign.rasterize import rasterize_map


@dataclass
class BuildingIndex:
    """Building polygons of one source in its raster's pixel coordinates, spatially indexed."""

    geoms_px: np.ndarray

    def __post_init__(self) -> None:
        self.tree = STRtree(self.geoms_px)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(col_min, row_min, col_max, row_max) of all buildings."""
        return tuple(float(v) for v in shapely.total_bounds(self.geoms_px))  # type: ignore[return-value]

    def in_window(self, window: Window, margin_src_px: float) -> np.ndarray:
        box = shapely.box(
            window.col_off - margin_src_px, window.row_off - margin_src_px,
            window.col_off + window.width + margin_src_px, window.row_off + window.height + margin_src_px,
        )
        return self.geoms_px[self.tree.query(box, predicate="intersects")]


@dataclass
class Pair:
    image: np.ndarray  # (3, P, P) float32 in [0, 1]
    valid: np.ndarray  # (P, P) bool
    map_misaligned: np.ndarray  # (C, P, P) float32 {0, 1}
    map_true: np.ndarray  # (C, P, P) float32 {0, 1}
    field: np.ndarray  # (2, P, P) float32, pixels of this scale
    amplitude_px: float


def geoms_in_patch_frame(geoms_src_px: np.ndarray, window: Window, src_px_per_patch_px: float,
                         margin_px: int) -> np.ndarray:
    """Source-pixel geometries → the margin-extended patch frame (pixels of the pair's scale)."""
    offset = np.array([window.col_off, window.row_off])

    def to_patch(xy: np.ndarray) -> np.ndarray:
        return (xy - offset) / src_px_per_patch_px + margin_px

    return shapely.transform(geoms_src_px, to_patch)


def make_pair(
    reader: RasterReader,
    buildings: BuildingIndex,
    window: Window,
    *,
    patch_px: int,
    max_disp_px: float,
    min_amplitude_fraction: float,
    correlation_length_px: float,
    channels: tuple[str, ...],
    rng: np.random.Generator,
    image: tuple[np.ndarray, np.ndarray] | None = None,
) -> Pair:
    """Cut one pair. ``image`` may pass an already-read (image, valid) of this window."""
    factor = window.width / patch_px  # source pixels per patch pixel
    margin = int(math.ceil(max_disp_px)) + 2
    if image is None:
        image = reader.read(window, out_shape=(patch_px, patch_px))
    img, valid = image
    geoms = geoms_in_patch_frame(buildings.in_window(window, margin * factor), window, factor, margin)
    ext = patch_px + 2 * margin
    amplitude = float(rng.uniform(min_amplitude_fraction, 1.0) * max_disp_px)
    field_ext = random_smooth_field(
        (ext, ext), max_amplitude_px=amplitude, correlation_length_px=correlation_length_px, rng=rng
    )
    moved = deform_geometries(geoms, field_ext)
    inner = (slice(margin, margin + patch_px),) * 2
    map_true = rasterize_map(geoms, (ext, ext), channels=channels)[(slice(None), *inner)]
    map_mis = rasterize_map(moved, (ext, ext), channels=channels)[(slice(None), *inner)]
    return Pair(
        image=img, valid=valid, map_misaligned=map_mis, map_true=map_true,
        field=np.ascontiguousarray(field_ext[(slice(None), *inner)]), amplitude_px=amplitude,
    )
