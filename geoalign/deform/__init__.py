"""Random smooth deformations and their consistent application to rasters and polygons.

Convention used everywhere in geoalign (fields are ``(2, H, W)`` float32 arrays, in pixels, channel
0 = dx (columns, east), channel 1 = dy (rows, down)):

    A field ``phi`` lives on the grid of the *misaligned* map. What the misaligned map shows at
    pixel position q truly belongs at ``q + phi(q)``.

Hence: misaligning a raster is an exact backward warp ``M_mis(q) = M(q + phi(q))``
(:func:`warp_raster`); correcting a misaligned vertex is ``q + phi(q)`` (:func:`correct_points`);
misaligning a true vertex v solves ``v' + phi(v') = v`` by fixed-point iteration
(:func:`deform_points`). The network predicts ``phi`` from the image and the misaligned map.
"""

from geoalign.deform.field import random_smooth_field
from geoalign.deform.warp import (
    compose_fields,
    correct_geometries,
    correct_points,
    deform_geometries,
    deform_points,
    invert_field,
    sample_field,
    warp_raster,
)

from geoalign.deform.layer import misalign_layer  # noqa: E402  (needs field and warp)

__all__ = [
    "misalign_layer",
    "random_smooth_field",
    "sample_field",
    "warp_raster",
    "correct_points",
    "deform_points",
    "correct_geometries",
    "deform_geometries",
    "invert_field",
    "compose_fields",
]
