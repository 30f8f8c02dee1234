"""Random smooth fields, and their consistent application to rasters and polygons."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geoalign.deform import (
    correct_geometries, correct_points, deform_geometries, deform_points, invert_field, random_smooth_field,
    sample_field, warp_raster,
)
from geoalign.grid import PixelGrid, reproject_to
from geoalign.io.raster import open_raster
from geoalign.io.vectors import read_buildings
from geoalign.rasterize import rasterize_map


@pytest.mark.parametrize("amplitude,length", [(2.0, 16.0), (8.0, 64.0), (32.0, 200.0)])
def test_amplitude_bound_holds_exactly(amplitude, length):
    field = random_smooth_field((256, 300), max_amplitude_px=amplitude, correlation_length_px=length, rng=3)
    norm = np.hypot(field[0], field[1])
    assert field.shape == (2, 256, 300) and field.dtype == np.float32
    assert norm.max() == pytest.approx(amplitude, rel=1e-5)
    assert norm.mean() > 0.2 * amplitude  # not a single spike


def test_field_is_smooth_on_its_correlation_length():
    field = random_smooth_field((256, 256), max_amplitude_px=10.0, correlation_length_px=32.0, rng=0)
    step = np.abs(np.diff(field, axis=2)).max()
    assert step < 10.0 / 32.0 * 1.5  # gradient bounded by amplitude / correlation length
    rough = random_smooth_field((256, 256), max_amplitude_px=10.0, correlation_length_px=4.0, rng=0)
    assert np.abs(np.diff(rough, axis=2)).max() > 3 * step


def test_seeded_fields_are_reproducible_and_differ_across_seeds():
    a = random_smooth_field((64, 64), max_amplitude_px=4, correlation_length_px=16, rng=7)
    b = random_smooth_field((64, 64), max_amplitude_px=4, correlation_length_px=16, rng=7)
    c = random_smooth_field((64, 64), max_amplitude_px=4, correlation_length_px=16, rng=8)
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_sample_field_is_bilinear_at_pixel_centres():
    field = np.zeros((2, 4, 5), np.float32)
    field[0] = np.arange(5)[None, :]  # dx = column index
    field[1] = np.arange(4)[:, None] * 2  # dy = 2 * row index
    pts = np.array([[0.5, 0.5], [1.0, 0.5], [2.5, 3.5], [3.25, 1.75]])
    got = sample_field(field, pts)
    assert np.allclose(got, [[0, 0], [0.5, 0], [2, 6], [2.75, 2.5]])


def test_deform_then_correct_round_trips():
    field = random_smooth_field((128, 128), max_amplitude_px=6, correlation_length_px=32, rng=1)
    pts = np.random.default_rng(0).uniform(10, 118, size=(500, 2))
    moved = deform_points(pts, field)
    assert np.abs(correct_points(moved, field) - pts).max() < 1e-3
    assert np.abs(moved - pts).max() > 1.0


def test_geometry_transforms_keep_vertex_count_and_order():
    poly = shapely.Polygon([(10, 10), (40, 10), (40, 30), (10, 30)], holes=[[(20, 15), (25, 15), (25, 20)]])
    field = random_smooth_field((64, 64), max_amplitude_px=3, correlation_length_px=20, rng=2)
    out = deform_geometries(np.array([poly], dtype=object), field)[0]
    assert len(out.exterior.coords) == len(poly.exterior.coords)
    assert len(out.interiors) == 1
    back = correct_geometries(np.array([out], dtype=object), field)[0]
    assert np.abs(shapely.get_coordinates(back) - shapely.get_coordinates(poly)).max() < 1e-3


def test_warped_raster_agrees_with_rasterized_warped_polygons(austin):
    """Raster and vertex misalignment agree on real data: IoU ≥ 0.95."""
    with open_raster(austin["image"]) as r:
        grid = PixelGrid.of(r)
        gdf = reproject_to(read_buildings(austin["buildings"]), r.crs)
    geoms = np.asarray(grid.to_pixels(gdf.geometry.values), dtype=object)
    shape = (grid.height, grid.width)
    field = random_smooth_field(shape, max_amplitude_px=16, correlation_length_px=150, rng=5)
    truth = rasterize_map(geoms, shape, channels=("fill",))[0]
    via_raster = warp_raster(truth, field, order=0) > 0.5
    via_polygons = rasterize_map(deform_geometries(geoms, field), shape, channels=("fill",))[0] > 0.5
    iou = (via_raster & via_polygons).sum() / (via_raster | via_polygons).sum()
    moved = (truth > 0.5) ^ via_polygons
    assert moved.sum() > 0.05 * truth.sum()  # the field really moved things
    assert iou >= 0.95, iou


def test_invert_field_moves_misaligned_raster_back():
    field = random_smooth_field((96, 96), max_amplitude_px=5, correlation_length_px=30, rng=4)
    truth = rasterize_map([shapely.box(20, 20, 60, 50)], (96, 96), channels=("fill",))[0]
    misaligned = warp_raster(truth, field, order=0)
    restored = warp_raster(misaligned, invert_field(field), order=0) > 0.5
    iou = (restored & (truth > 0.5)).sum() / (restored | (truth > 0.5)).sum()
    assert iou > 0.97
    assert ((misaligned > 0.5) ^ (truth > 0.5)).sum() > 0.05 * truth.sum()


def test_compose_fields_equals_sequential_correction():
    from geoalign.deform import compose_fields

    a = random_smooth_field((64, 64), max_amplitude_px=4, correlation_length_px=24, rng=1)
    b = random_smooth_field((64, 64), max_amplitude_px=2, correlation_length_px=24, rng=2)
    pts = np.random.default_rng(3).uniform(8, 56, size=(200, 2))
    sequential = correct_points(correct_points(pts, a), b)
    composed = correct_points(pts, compose_fields(a, b))
    assert np.abs(sequential - composed).max() < 0.05
