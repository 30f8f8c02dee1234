"""Misalign a whole building layer with a known random smooth field (test data, demos, benchmarks).

The field is drawn on the image grid, in pixels; the layer comes back in its own CRS with the same
features, attributes, vertex counts and order — only coordinates move.
"""

from __future__ import annotations

import contextlib

import geopandas as gpd
import numpy as np

from geoalign.deform.field import random_smooth_field
from geoalign.deform.warp import deform_geometries
from geoalign.grid import PixelGrid, reproject_to


def misalign_layer(
    gdf: gpd.GeoDataFrame, grid: PixelGrid, *, max_amplitude_px: float, correlation_length_px: float,
    seed: int = 0,
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """(misaligned copy of ``gdf``, the field ``(2, H, W)`` px on ``grid`` that corrects it)."""
    field = random_smooth_field((grid.height, grid.width), max_amplitude_px=max_amplitude_px,
                                correlation_length_px=correlation_length_px, rng=seed)
    in_grid_crs = reproject_to(gdf, grid.crs)
    geoms_px = grid.to_pixels(np.asarray(in_grid_crs.geometry.values, dtype=object))
    moved = grid.to_crs_coords(deform_geometries(geoms_px, field))
    out = in_grid_crs.set_geometry(gpd.GeoSeries(moved, index=gdf.index, crs=grid.crs))
    return out.to_crs(gdf.crs), field


def misalign_file(image, buildings, output, *, max_amplitude_px: float, correlation_length_px: float,
                  seed: int = 0, field_path=None) -> str:
    """:func:`misalign_layer` on files; outputs written atomically. Returns a summary line."""
    from geoalign.io.raster import (RasterReader, describe_displacement_bands,
                                    displacement_px_to_crs, geotiff_profile)
    from geoalign.io.vectors import read_buildings, write_vectors
    from geoalign.io.atomic import atomic_path
    from geoalign.io.guard import refuse_output_over_input
    import rasterio

    refuse_output_over_input([output, field_path], [image, buildings])
    with RasterReader(image) as reader:
        grid = PixelGrid.of(reader)
        crs, transform = reader.crs, reader.transform
        profile = geotiff_profile(width=grid.width, height=grid.height, count=2, dtype="float32",
                                  crs=reader.crs, transform=reader.transform)
    gdf = read_buildings(buildings)
    moved, field = misalign_layer(gdf, grid, max_amplitude_px=max_amplitude_px,
                                  correlation_length_px=correlation_length_px, seed=seed)
    with contextlib.ExitStack() as both:  # both files or neither: moved into place together
        if field_path is not None:
            tmp = both.enter_context(atomic_path(field_path))
            with rasterio.open(tmp, "w", **profile) as dst:
                # the units and axes of align's displacement.tif, so the two compare directly
                dst.write(displacement_px_to_crs(field, transform).astype(np.float32))
                describe_displacement_bands(dst, crs)
        write_vectors(moved, output)
    return (f"misaligned {len(moved)} features by a smooth field of max {max_amplitude_px:g} px "
            f"(correlation length {correlation_length_px:g} px, seed {seed}) → {output}")
