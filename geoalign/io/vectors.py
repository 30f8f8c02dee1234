"""Reading and writing building footprints (any vector format GDAL reads).

Building layers are cleaned the same way wherever they come from: invalid geometries (e.g.
self-intersections) are repaired with ``shapely.make_valid`` and counted in a warning, non-areal
parts are dropped, empty geometries are dropped, and every attribute is kept.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from geoalign.errors import CRSError, EmptyInputError, InputFileError
from geoalign.io.atomic import atomic_path

log = logging.getLogger(__name__)

DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile",
           ".fgb": "FlatGeobuf"}


class GeometryRepairWarning(UserWarning):
    """Some geometries were invalid and have been repaired."""


def read_vectors(path: str | Path, *, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read a vector file or URL with a clear error when it is missing or unreadable."""
    text = str(path)
    is_remote = text.startswith(("http://", "https://", "/vsi"))
    if not is_remote and not Path(text).exists():
        raise InputFileError(f"{text}: no such vector file.")
    try:
        gdf = gpd.read_file(text, layer=layer)
    except Exception as err:  # pyogrio raises DataSourceError, DataLayerError, ...
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputFileError(f"{text}: not a readable vector dataset ({msg}).") from None
    return gdf


def _areal_part(geom):
    """The Polygon/MultiPolygon part of a geometry (None when it has no area)."""
    if geom is None or geom.is_empty:
        return None
    if isinstance(geom, (Polygon, MultiPolygon)):
        return geom
    polys = [g for g in getattr(geom, "geoms", []) if isinstance(g, (Polygon, MultiPolygon))]
    if not polys:
        return None
    parts = []
    for p in polys:
        parts.extend(p.geoms if isinstance(p, MultiPolygon) else [p])
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def clean_buildings(gdf: gpd.GeoDataFrame, *, source: str = "buildings") -> gpd.GeoDataFrame:
    """Repair invalid polygons, keep the areal ones; warn with counts; never modify ``gdf``."""
    if gdf.crs is None:
        raise CRSError(
            f"{source}: the vector data has no CRS; set one (e.g. `ogr2ogr -a_srs EPSG:4326`)."
        )
    if len(gdf) == 0:
        raise EmptyInputError(f"{source}: contains no features.")
    gdf = gdf.copy()
    geoms = gdf.geometry.values
    present = ~(geoms.isna() | shapely.is_empty(np.asarray(geoms, dtype=object)))
    invalid = present & ~shapely.is_valid(np.asarray(geoms, dtype=object))
    n_invalid = int(invalid.sum())
    if n_invalid:
        repaired = shapely.make_valid(np.asarray(geoms, dtype=object)[invalid])
        arr = np.asarray(geoms, dtype=object).copy()
        arr[invalid] = repaired
        gdf = gdf.set_geometry(gpd.GeoSeries(arr, index=gdf.index, crs=gdf.crs))
        warnings.warn(
            f"{source}: repaired {n_invalid} invalid geometr{'y' if n_invalid == 1 else 'ies'} "
            "with make_valid (e.g. self-intersections).",
            GeometryRepairWarning, stacklevel=2,
        )
    areal = [_areal_part(g) for g in gdf.geometry.values]
    keep = np.array([g is not None for g in areal], dtype=bool)
    n_drop = int((~keep).sum())
    gdf = gdf.set_geometry(gpd.GeoSeries(areal, index=gdf.index, crs=gdf.crs))
    gdf = gdf[keep]
    if n_drop:
        log.warning("%s: dropped %d features with no polygon geometry (empty, points, lines).",
                    source, n_drop)
    if len(gdf) == 0:
        raise EmptyInputError(f"{source}: no polygon geometries (buildings) in it.")
    return gdf


def read_buildings(path: str | Path, *, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read building footprints: :func:`read_vectors` then :func:`clean_buildings`."""
    return clean_buildings(read_vectors(path, layer=layer), source=str(path))


def write_vectors(gdf: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write GeoPackage/GeoJSON/... atomically (driver from the extension)."""
    path = Path(path)
    driver = DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise InputFileError(
            f"{path}: unknown vector format; use one of {', '.join(sorted(DRIVERS))}."
        )
    with atomic_path(path) as tmp:
        gdf.to_file(tmp, driver=driver, layer=path.stem)  # not the temporary file's name
    return path
