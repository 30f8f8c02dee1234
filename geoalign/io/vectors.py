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


#: Most vertices one building may have. Real footprints have tens to a few thousand; a feature
#: with more is not a building (a coastline, a generated ring) and would cost minutes and
#: gigabytes (a 1e6-vertex ring: 58 s and 1.3 GB in align), so it is refused.
MAX_VERTICES_PER_FEATURE = 100_000


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
    check_coordinates(gdf, source=text)
    return gdf


#: Largest coordinate magnitude accepted in a projected CRS, in metres (the equator is 4.0e7 m
#: long; 10x that leaves room for false eastings and odd projections).
MAX_PROJECTED_M = 4.0e8
#: Longitudes up to 360° are accepted (the 0..360 convention), latitudes up to 90°.
MAX_LON_DEG, MAX_LAT_DEG = 360.0, 90.0


def check_coordinates(gdf: gpd.GeoDataFrame, *, source: str) -> None:
    """Refuse coordinates that are impossible in the declared CRS, in one line.

    The usual cause: a GeoJSON without a ``crs`` member is WGS84 by definition (RFC 7946), so a
    file holding projected metres (UTM, Lambert...) reads as longitudes of 600000° and every
    reprojection of it gives infinities.
    """
    if gdf.crs is None or len(gdf) == 0:
        return
    xy = shapely.get_coordinates(np.asarray(gdf.geometry.values, dtype=object))
    if len(xy) == 0:
        return
    if not np.isfinite(xy).all():
        raise InputFileError(f"{source}: coordinates that are not finite numbers (NaN or infinity); "
                             "repair the geometries.")
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    check_extent((lo[0], lo[1], hi[0], hi[1]), gdf.crs, source=source)


def check_extent(extent, crs, *, source: str) -> None:
    """Refuse a (W, S, E, N) extent impossible in ``crs`` (see :func:`check_coordinates`)."""
    from pyproj import CRS

    crs = CRS.from_user_input(crs)
    w, s, e, n = (float(v) for v in extent)
    shown = ", ".join(f"{v:.6g}" for v in (w, s, e, n))
    name = crs.to_string()
    if crs.is_geographic:
        if max(abs(w), abs(e)) > MAX_LON_DEG or max(abs(s), abs(n)) > MAX_LAT_DEG:
            if source.lower().endswith((".geojson", ".json")):
                hint = ("a GeoJSON without a \"crs\" member is read as WGS84: reproject the file "
                        "to EPSG:4326, or save it in a format that keeps its CRS (GeoPackage).")
            else:
                hint = "check the file's CRS (e.g. `ogrinfo -so FILE LAYER`)."
            raise CRSError(f"{source}: coordinates ({shown}) are impossible in the declared CRS "
                           f"{name} (longitude/latitude in degrees); {hint}")
        return
    unit_m = 1.0
    if crs.axis_info and crs.axis_info[0].unit_conversion_factor:
        unit_m = float(crs.axis_info[0].unit_conversion_factor)
    if max(abs(w), abs(s), abs(e), abs(n)) * unit_m > MAX_PROJECTED_M:
        raise CRSError(f"{source}: coordinates ({shown}) are impossible in the declared CRS {name} "
                       f"(beyond {MAX_PROJECTED_M:.0e} m from its origin); check the file's CRS.")


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
    if len(parts) == 1:
        return parts[0]
    multi = MultiPolygon(parts)
    # parts of a repaired geometry may share edges: their union is the valid areal part
    return multi if multi.is_valid else shapely.union_all(parts)


def clean_buildings(gdf: gpd.GeoDataFrame, *, source: str = "buildings",
                    non_areal: str = "dropped") -> gpd.GeoDataFrame:
    """Repair invalid polygons, keep the areal ones; warn with counts; never modify ``gdf``.

    ``non_areal`` says what the caller does with the features left out (empty, null, points,
    lines): "dropped" from its output, or e.g. "kept unchanged", so the warning tells the truth."""
    if gdf.crs is None:
        raise CRSError(
            f"{source}: the vector data has no CRS; set one (e.g. `ogr2ogr -a_srs EPSG:4326`)."
        )
    if len(gdf) == 0:
        raise EmptyInputError(f"{source}: contains no features.")
    gdf = gdf.copy()
    geoms = gdf.geometry.values
    n_vertices = shapely.get_num_coordinates(np.asarray(geoms, dtype=object))
    if len(n_vertices) and int(n_vertices.max()) > MAX_VERTICES_PER_FEATURE:
        row = int(np.argmax(n_vertices))
        raise InputFileError(
            f"{source}: the feature in row {row + 1} has {int(n_vertices[row]):,} vertices, more "
            f"than a building has (limit {MAX_VERTICES_PER_FEATURE:,}); simplify or remove it "
            "(e.g. `ogr2ogr -simplify 0.1`).")
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
        log.warning("%s: %d feature%s with no polygon geometry (null, empty, points, lines) %s.",
                    source, n_drop, "" if n_drop == 1 else "s", non_areal)
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
    # GeoPackage 1.3: the newest version QGIS 3.22 reads without a warning on every open
    options = {"dataset_options": {"VERSION": "1.3"}} if driver == "GPKG" else {}
    with atomic_path(path) as tmp:
        gdf.to_file(tmp, driver=driver, layer=path.stem, **options)  # not the temporary file's name
    return path
