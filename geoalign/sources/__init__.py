"""Acquisition: imagery and building footprints from servers and files (``geoalign fetch``).

The dispatchers :func:`geoalign.sources.imagery.fetch_imagery` and
:func:`geoalign.sources.buildings.fetch_buildings` read a ``--source`` string and call one module
per kind of source: ``xyz`` (tile servers), ``wms`` (GetMap), ``local`` (a GeoTIFF on disk),
``osm`` (OpenStreetMap through osmnx: Overpass or an OSM XML file) and ``cadaster`` (any vector
file or URL GDAL reads). All network access goes through :mod:`geoalign.sources.http`
(retries, on-disk cache), configured in :mod:`geoalign.sources.settings`.
"""

from geoalign.errors import GeoalignError


class SourceError(GeoalignError):
    """A --source string or a source option is not understood, missing or out of range."""
