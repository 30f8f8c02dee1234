"""Buildings: OSM through osmnx from a local Overpass API and from OSM XML files (the clipped
Helsinki extract included), and cadaster files served over HTTP or read from disk."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import box

from fetch_servers import (
    AUSTIN_BUILDINGS,
    HELSINKI_OSM,
    KIRCHBERG_OSM,
    OAKLAND_OSM,
    error_app,
    file_app,
    overpass_app,
    overpass_json_from_xml,
)
from geoalign.errors import DownloadError, EmptyInputError, InputFileError
from geoalign.sources import SourceError
from geoalign.sources.buildings import fetch_buildings, load_buildings
from geoalign.sources.osm import ClippedOsmWarning, buildings_from_xml

KIRCHBERG_BBOX = (10.068, 48.135, 10.071, 48.137)
HELSINKI_BBOX = (24.935, 60.164, 24.953, 60.179)


@pytest.fixture
def overpass(serve, monkeypatch):
    """osmnx's ``settings.overpass_url`` pointed at a local Overpass API serving Kirchberg."""
    import osmnx as ox

    queries: list[str] = []
    server = serve(overpass_app(overpass_json_from_xml(KIRCHBERG_OSM), queries))
    monkeypatch.setattr(ox.settings, "overpass_url", f"{server.url}/api")
    return server, queries


def test_overpass_buildings_with_ids_and_tags(overpass, tmp_path):
    server, queries = overpass
    out = tmp_path / "kirchberg.gpkg"
    result = fetch_buildings("osm", KIRCHBERG_BBOX, out)
    assert (result.n_features, result.n_multipolygons, result.crs) == (32, 1, "EPSG:4326")
    assert len(queries) == 1 and "way['building'](poly:" in queries[0]
    assert "[timeout:180]" in queries[0]
    gdf = gpd.read_file(out)
    assert len(gdf) == 32 and gdf.crs.to_epsg() == 4326
    assert gdf.geom_type.isin(["Polygon", "MultiPolygon"]).all()  # GPKG may promote to multi
    assert (gdf.geometry.apply(lambda g: len(getattr(g, "geoms", [g]))) > 1).sum() == 1
    assert gdf["osm_id"].str.match(r"^way/\d+$").all()
    assert (gdf["osm_id"] == "way/" + gdf["id"].astype(str)).all()
    assert gdf["building"].notna().all() and "addr:street" in gdf.columns
    # the same buildings as osmnx reading the XML the server was built from
    from_xml = buildings_from_xml_quiet(KIRCHBERG_OSM)
    assert sorted(gdf["osm_id"]) == sorted(from_xml["osm_id"])

    # a second fetch is answered by osmnx's cache, kept in geoalign's cache folder
    fetch_buildings("osm", KIRCHBERG_BBOX, tmp_path / "again.geojson")
    assert len(queries) == 1
    assert list((tmp_path / "cache" / "osmnx").glob("*.json"))


def buildings_from_xml_quiet(path, bbox=None):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClippedOsmWarning)
        return buildings_from_xml(path, bbox)


def test_overpass_offline_and_http_500(serve, monkeypatch, tmp_path, closed_port_url):
    import osmnx as ox

    out = tmp_path / "b.gpkg"
    monkeypatch.setattr(ox.settings, "overpass_url", f"{closed_port_url}/api")
    with pytest.raises(DownloadError, match="connection refused"):
        fetch_buildings("osm", KIRCHBERG_BBOX, out)
    server = serve(error_app(500))
    monkeypatch.setattr(ox.settings, "overpass_url", f"{server.url}/api")
    with pytest.raises(DownloadError, match="HTTP 500"):
        fetch_buildings("osm", KIRCHBERG_BBOX, out)
    assert not out.exists()


def test_osm_xml_files():
    kirchberg = buildings_from_xml_quiet(KIRCHBERG_OSM, KIRCHBERG_BBOX)
    assert len(kirchberg) == 32
    assert kirchberg.geom_type.value_counts().to_dict() == {"Polygon": 31, "MultiPolygon": 1}
    oakland = buildings_from_xml(OAKLAND_OSM, (-122.30258, 37.80615, -122.29825, 37.80914))
    assert len(oakland) == 23 and set(oakland.geom_type) == {"Polygon"}
    assert oakland["osm_id"].is_unique
    # the bbox keeps the buildings that intersect it, whole
    corner = box(-122.30258, 37.80615, -122.3004, 37.8076)
    some = buildings_from_xml(OAKLAND_OSM, corner.bounds)
    assert 0 < len(some) < 23
    assert set(some["osm_id"]) == set(oakland.loc[oakland.intersects(corner), "osm_id"])


def test_helsinki_clipped_relations_are_skipped_and_the_rest_kept():
    """osmnx alone raises shapely's EmptyPartError on this extract."""
    with pytest.warns(ClippedOsmWarning, match=r"skipped 6 of 67 building relations and 48 of "
                                               r"433 building ways") as record:
        gdf = buildings_from_xml(HELSINKI_OSM, HELSINKI_BBOX)
    assert "relation/6077" in str(record[0].message)
    # 385 complete ways + 61 complete relations in the file, 2 of the ways outside the bbox
    assert len(gdf) == 444
    assert gdf["element"].value_counts().to_dict() == {"way": 383, "relation": 61}
    relations = gdf[gdf["element"] == "relation"]
    assert (relations.geom_type == "Polygon").all()
    assert relations.geometry.apply(lambda g: len(g.interiors) > 0).all()  # courtyards: holes
    assert "relation/6077" not in set(gdf["osm_id"])
    assert gdf.geometry.is_valid.all() and set(gdf.geom_type) <= {"Polygon", "MultiPolygon"}


def test_osm_xml_bad_inputs(tmp_path):
    with pytest.raises(InputFileError, match="no such OSM XML file"):
        load_buildings(f"osm-xml:{tmp_path / 'nope.osm'}", KIRCHBERG_BBOX)
    broken = tmp_path / "broken.osm"
    broken.write_text("<osm><node id='1' lat='0' lon='0'>")
    with pytest.raises(InputFileError, match="not a readable OSM XML file"):
        load_buildings(f"osm-xml:{broken}", KIRCHBERG_BBOX)
    with pytest.raises(EmptyInputError, match="no buildings in the bbox"):
        buildings_from_xml_quiet(KIRCHBERG_OSM, (0.0, 0.0, 0.001, 0.001))
    with pytest.raises(SourceError, match="not understood"):
        load_buildings("overpass", KIRCHBERG_BBOX)


def test_cadaster_geojson_over_http(serve, tmp_path):
    server = serve(file_app({"/cadastre/buildings.geojson": AUSTIN_BUILDINGS}))
    url = f"{server.url}/cadastre/buildings.geojson"
    bbox = (616800, 3344550, 616950, 3344700)  # north-west quarter, EPSG:26914
    out = tmp_path / "cadastre.gpkg"
    result = fetch_buildings(f"file:{url}", bbox, out, bbox_crs="EPSG:26914")
    source = gpd.read_file(AUSTIN_BUILDINGS)
    expected = source[source.intersects(box(*bbox))]
    assert 0 < len(expected) < len(source) == 57
    assert result.n_features == len(expected) and result.crs == "EPSG:26914"
    got = gpd.read_file(out)
    assert got.crs.to_epsg() == 26914 and list(got.columns) == list(source.columns)
    assert sorted(got.geometry.area.round(3)) == sorted(expected.geometry.area.round(3))
    # cached: the file is downloaded once
    fetch_buildings(f"file:{url}", bbox, tmp_path / "again.geojson", bbox_crs="EPSG:26914")
    assert server.hits["/cadastre/buildings.geojson"] == 1
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_buildings(f"file:{server.url}/cadastre/missing.geojson", bbox, tmp_path / "m.gpkg",
                        bbox_crs="EPSG:26914")
    assert not (tmp_path / "m.gpkg").exists()


def test_cadaster_local_file_reprojected(tmp_path):
    out = tmp_path / "wgs84.geojson"
    result = fetch_buildings(f"file:{AUSTIN_BUILDINGS}", (-97.79, 30.22, -97.78, 30.23), out,
                             dst_crs="EPSG:4326")
    assert result.n_features == 57 and result.crs == "EPSG:4326"
    got = gpd.read_file(out)
    assert got.crs.to_epsg() == 4326 and got.total_bounds[0] == pytest.approx(-97.786, abs=1e-3)
    with pytest.raises(EmptyInputError, match="no features in the bbox"):
        fetch_buildings(f"file:{AUSTIN_BUILDINGS}", (2.29, 48.85, 2.30, 48.86), tmp_path / "e.gpkg")
    with pytest.raises(InputFileError, match="no such vector file"):
        fetch_buildings(f"file:{tmp_path / 'nope.geojson'}", (0, 0, 1, 1), tmp_path / "e.gpkg")


def test_the_overpass_url_comes_from_the_environment(serve, tmp_path):
    """``GEOALIGN_OVERPASS_URL`` points a separate geoalign process (e.g. the QGIS plugin's) at
    another Overpass API."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    queries: list[str] = []
    server = serve(overpass_app(overpass_json_from_xml(KIRCHBERG_OSM), queries))
    env = {**os.environ, "GEOALIGN_OVERPASS_URL": f"{server.url}/api", "GEOALIGN_CACHE_DIR": str(tmp_path / "c")}
    out = tmp_path / "b.gpkg"
    geoalign = str(Path(sys.executable).parent / "geoalign")
    proc = subprocess.run([geoalign, "-q", "fetch", "buildings", "--bbox", *map(str, KIRCHBERG_BBOX),
                           "--source", "osm", "-o", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(queries) == 1 and len(gpd.read_file(out)) == 32
