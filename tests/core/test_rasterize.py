"""Buildings → fill, edges and vertex channels on the pixel grid, at any scale."""

from __future__ import annotations

import shapely

from geoalign.rasterize import rasterize_map, scale_geoms


def test_square_with_hole_channels():
    poly = shapely.Polygon([(2, 2), (12, 2), (12, 10), (2, 10)], holes=[[(5, 4), (8, 4), (8, 7), (5, 7)]])
    out = rasterize_map([poly], (16, 16))
    fill, edges, verts = out
    assert fill.sum() == 10 * 8 - 3 * 3
    assert fill[5, 6] == 0 and fill[3, 3] == 1
    assert edges[2, 2:13].all() and edges[5, 5] == 1
    assert verts.sum() == 4 + 4 and verts[2, 2] == 1 and verts[10, 12] == 1


def test_scale_geoms_matches_downsampled_area():
    poly = shapely.box(8, 8, 72, 40)
    full = rasterize_map([poly], (96, 96), channels=("fill",))[0]
    half = rasterize_map(scale_geoms([poly], 0.5), (48, 48), channels=("fill",))[0]
    assert full.sum() == 64 * 32 and half.sum() == 32 * 16


def test_vertices_outside_grid_are_ignored_and_empty_input_gives_zeros():
    out = rasterize_map([shapely.box(-5, -5, 3, 3)], (8, 8))
    assert out[2].sum() == 1  # only the (3, 3) corner is inside
    assert not rasterize_map([], (8, 8)).any()
