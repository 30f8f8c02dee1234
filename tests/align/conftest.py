"""Shared helpers: sample crops, known misalignments, vertex errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import shapely

from geoalign.deform import deform_geometries, random_smooth_field
from geoalign.grid import PixelGrid, reproject_to
from geoalign.io.raster import open_raster
from geoalign.io.vectors import read_buildings
from geoalign.rasterize import rasterize_map, translate_geoms
from rasterio.windows import Window


def load_pixels(paths: dict, window: Window | None = None):
    """(image, valid, grid, building geometries in the window's pixel coordinates)."""
    with open_raster(paths["image"]) as r:
        grid = PixelGrid.of(r)
        image, valid = r.read(window)
    if window is not None:
        grid = grid.window(window)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdf = reproject_to(read_buildings(paths["buildings"]), grid.crs)
    px = grid.to_pixels(np.asarray(gdf.geometry.values, dtype=object))
    h, w = image.shape[1:]
    keep = shapely.intersects(px, shapely.box(0, 0, w, h))
    return image, valid, grid, px[keep]


@pytest.fixture(scope="session")
def austin_px(austin):
    return load_pixels(austin)


@pytest.fixture(scope="session")
def kampala_px(kampala):
    # The labelled part of the mosaic (west half), to keep the test quick.
    return load_pixels(kampala, Window(0, 0, 1536, 2048))


def median_error(moved_xy: np.ndarray, truth_xy: np.ndarray) -> float:
    return float(np.median(np.hypot(*(moved_xy - truth_xy).T)))


def smooth_misalignment(geoms_px, shape, amplitude_px: float, seed: int):
    """(misaligned geometries, the true field) for a smooth field of max ``amplitude_px``."""
    phi = random_smooth_field(shape, max_amplitude_px=amplitude_px, correlation_length_px=128.0, rng=seed)
    return deform_geometries(geoms_px, phi), phi


__all__ = ["load_pixels", "median_error", "smooth_misalignment", "rasterize_map", "translate_geoms"]
