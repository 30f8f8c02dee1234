"""Cadaster (or any other) building footprints from a vector file or URL GDAL reads.

A URL (``http://``/``https://``) is downloaded once through :mod:`geoalign.sources.http` (retries,
cache, clear errors when offline) and then read from the cached copy; a local path is read
directly. Features intersecting the bbox are kept whole (a building cut at the bbox edge would be
a false footprint), repaired by :func:`geoalign.io.vectors.clean_buildings`, and reprojected
when ``dst_crs`` is given. The bbox is applied while reading, so big files are not loaded whole.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import geopandas as gpd
import numpy as np
import pyogrio
from shapely.geometry import box

from geoalign.errors import CRSError, EmptyInputError, InputFileError, first_line
from geoalign.grid import reproject_to, transform_bbox
from geoalign.io.vectors import check_coordinates, check_extent, clean_buildings
from geoalign.sources import http


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def buildings_from_file(
    location: str | Path,
    bbox: tuple[float, float, float, float],
    *,
    bbox_crs="EPSG:4326",
    layer: str | None = None,
    dst_crs=None,
) -> gpd.GeoDataFrame:
    """Buildings of a vector file or URL that intersect ``bbox`` (in ``bbox_crs``)."""
    location = str(location)
    if is_url(location):
        path = http.download_file(location)
        name = f"{location} (cached at {path})"
    else:
        path = Path(location)
        name = location
        if not path.exists():
            raise InputFileError(f"{location}: no such vector file.")
    try:
        info = pyogrio.read_info(path, layer=layer)
    except Exception as err:  # pyogrio raises DataSourceError, DataLayerError, ...
        raise InputFileError(f"{name}: not a readable vector dataset ({first_line(err)}).") from None
    if not info.get("crs"):
        raise CRSError(
            f"{name}: the vector data has no CRS; set one (e.g. `ogr2ogr -a_srs EPSG:4326`)."
        )
    if info.get("total_bounds") is not None and np.isfinite(info["total_bounds"]).all():
        check_extent(info["total_bounds"], info["crs"], source=name)
    file_bbox = transform_bbox(bbox, bbox_crs, info["crs"])
    try:
        gdf = gpd.read_file(path, layer=layer, bbox=file_bbox)
    except Exception as err:
        raise InputFileError(f"{name}: not a readable vector dataset ({first_line(err)}).") from None
    if len(gdf):
        gdf = gdf[gdf.geometry.intersects(box(*file_bbox))]  # the driver's filter may be loose
    if len(gdf) == 0:
        raise EmptyInputError(
            f"{name}: no features in the bbox {tuple(bbox)} ({bbox_crs}); check --bbox and --bbox-crs."
        )
    check_coordinates(gdf, source=name)
    gdf = clean_buildings(gdf, source=name)
    if dst_crs is not None:
        gdf = reproject_to(gdf, dst_crs, source=name)
    return gdf.reset_index(drop=True)


def source_name(location: str) -> str:
    """A short name for summaries: the host and file name of a URL, or the path."""
    if is_url(location):
        parts = urlsplit(location)
        return f"{parts.netloc}/{Path(parts.path).name}"
    return location
