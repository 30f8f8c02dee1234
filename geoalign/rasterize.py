"""Buildings → map channels on an image grid: filled footprint, edges, vertices.

Geometries are given in *pixel coordinates* of the target grid (see :mod:`geoalign.grid`), so the
same function serves every scale: divide coordinates by 2^s to rasterize at scale s.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import shapely
from affine import Affine
from rasterio import features

MAP_CHANNELS = ("fill", "edges", "vertices")


def rasterize_map(
    geoms_px: Sequence, shape: tuple[int, int], *, channels: Sequence[str] = MAP_CHANNELS
) -> np.ndarray:
    """Rasterize polygons (pixel coordinates) into ``(len(channels), H, W)`` float32 in {0, 1}.

    * ``fill``: pixels whose centre lies inside a footprint (holes stay empty).
    * ``edges``: every pixel a polygon ring passes through (``all_touched``).
    * ``vertices``: the pixel holding each ring vertex.
    """
    height, width = shape
    out = np.zeros((len(channels), height, width), dtype=np.float32)
    geoms = [g for g in np.asarray(geoms_px, dtype=object).ravel() if g is not None and not g.is_empty]
    if not geoms or height == 0 or width == 0:
        return out
    identity = Affine.identity()
    for c, name in enumerate(channels):
        if name == "fill":
            shapes = geoms
            all_touched = False
        elif name == "edges":
            shapes = [b for b in shapely.boundary(np.array(geoms, dtype=object)) if not b.is_empty]
            all_touched = True
        elif name == "vertices":
            rings = shapely.get_coordinates(np.array(geoms, dtype=object))
            ij = np.floor(rings[:, ::-1]).astype(np.int64)
            inside = (ij[:, 0] >= 0) & (ij[:, 0] < height) & (ij[:, 1] >= 0) & (ij[:, 1] < width)
            out[c, ij[inside, 0], ij[inside, 1]] = 1.0
            continue
        else:
            raise ValueError(f"unknown map channel {name!r}; choose among {MAP_CHANNELS}")
        if shapes:
            out[c] = features.rasterize(
                ((g, 1) for g in shapes), out_shape=shape, transform=identity,
                all_touched=all_touched, fill=0, dtype="uint8",
            )
    return out


def scale_geoms(geoms_px, factor: float):
    """Scale pixel-coordinate geometries by ``factor`` (e.g. 1/2^s for scale s)."""
    return shapely.transform(np.asarray(geoms_px, dtype=object), lambda xy: xy * factor)


def translate_geoms(geoms_px, dx: float, dy: float):
    """Shift pixel-coordinate geometries (e.g. into a window's own pixel frame)."""
    offset = np.array([dx, dy])
    return shapely.transform(np.asarray(geoms_px, dtype=object), lambda xy: xy + offset)
