"""``--source`` strings for building footprints → the module that fetches them.

* ``osm`` → the Overpass API through osmnx (:func:`geoalign.sources.osm.buildings_from_bbox`)
* ``osm-xml:<path>`` → an OSM XML file through osmnx (:func:`geoalign.sources.osm.buildings_from_xml`)
* ``file:<path or URL>`` → any vector format GDAL reads (:mod:`geoalign.sources.cadaster`)

The result is written atomically as GeoPackage or GeoJSON (from the extension), in EPSG:4326 for
OSM (its own CRS) and in the file's CRS for ``file:``, unless ``dst_crs`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd

from geoalign.grid import reproject_to, transform_bbox
from geoalign.io.guard import refuse_output_over_input
from geoalign.io.vectors import DRIVERS, write_vectors
from geoalign.sources import SourceError
from geoalign.sources.output import crs_label


@dataclass
class BuildingsResult:
    """What a buildings fetch wrote, for the summary line (and for tests)."""

    path: Path
    source: str
    crs: str
    n_features: int
    n_multipolygons: int
    n_with_holes: int

    def summary(self) -> str:
        return (f"wrote {self.path}: {self.n_features} buildings ({self.n_multipolygons} "
                f"multipolygons, {self.n_with_holes} with holes), {self.crs} [{self.source}]")


def load_buildings(
    source: str, bbox: tuple[float, float, float, float], *, bbox_crs="EPSG:4326", dst_crs=None
) -> gpd.GeoDataFrame:
    """The buildings of ``source`` intersecting ``bbox``, as a GeoDataFrame."""
    kind, _, target = source.partition(":")
    if source == "osm":
        from geoalign.sources.osm import buildings_from_bbox

        gdf = buildings_from_bbox(transform_bbox(bbox, bbox_crs, "EPSG:4326"))
    elif kind == "osm-xml" and target:
        from geoalign.sources.osm import buildings_from_xml

        gdf = buildings_from_xml(target, transform_bbox(bbox, bbox_crs, "EPSG:4326"))
    elif kind == "file" and target:
        from geoalign.sources.cadaster import buildings_from_file

        return buildings_from_file(target, bbox, bbox_crs=bbox_crs, dst_crs=dst_crs)
    else:
        raise SourceError(
            f"--source {source!r} is not understood; use osm, osm-xml:<OSM XML file> or "
            "file:<vector file or URL>."
        )
    return reproject_to(gdf, dst_crs, source=source) if dst_crs is not None else gdf


def fetch_buildings(
    source: str, bbox: tuple[float, float, float, float], out_path: str | Path, *,
    bbox_crs="EPSG:4326", dst_crs=None, timeout_s: float | None = None,
    retries: int | None = None, deadline_s: float | None = None,
) -> BuildingsResult:
    """Fetch the buildings of ``bbox`` from ``source`` and write them to ``out_path``.

    ``timeout_s``, ``retries``, ``deadline_s``: see :func:`geoalign.sources.http.limits`."""
    from geoalign.sources.http import limits
    from geoalign.sources.imagery import no_folder_left_on_failure

    out_path = Path(out_path)
    if out_path.suffix.lower() not in DRIVERS:  # fail before downloading anything
        raise SourceError(f"{out_path}: write buildings as one of {', '.join(sorted(DRIVERS))}.")
    kind, _, target = source.partition(":")
    if kind in ("file", "osm-xml"):
        refuse_output_over_input([out_path], [target])
    with no_folder_left_on_failure(out_path):
        with limits(timeout_s=timeout_s, retries=retries, deadline_s=deadline_s):
            gdf = load_buildings(source, bbox, bbox_crs=bbox_crs, dst_crs=dst_crs)
        write_vectors(gdf, out_path)
    kinds = gdf.geometry.geom_type
    holes = gdf.geometry.apply(
        lambda g: any(len(p.interiors) for p in getattr(g, "geoms", [g])))
    return BuildingsResult(path=out_path, source=source, crs=crs_label(gdf.crs),
                           n_features=len(gdf), n_multipolygons=int((kinds == "MultiPolygon").sum()),
                           n_with_holes=int(holes.sum()))
