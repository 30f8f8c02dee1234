"""'Fetch imagery' and 'Fetch OSM buildings' through processing.run, against real HTTP servers on
127.0.0.1 serving real files (tests/fetch/fetch_servers.py, run by serve_fetch.py)."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import QgsFeatureRequest, QgsGeometry, QgsProcessingException, QgsRectangle, QgsVectorLayer

from qgis_env import AUSTIN_BUILDINGS, GEOALIGN, KAMPALA_TIF, REPO, RecordingFeedback

KIRCHBERG_OSM = REPO / "tests" / "data" / "osm" / "planet_10.068,48.135_10.071,48.137.osm"


@pytest.fixture(scope="module")
def servers():
    proc = subprocess.Popen([str(Path(GEOALIGN).parent / "python"), str(Path(__file__).with_name("serve_fetch.py"))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    urls = json.loads(proc.stdout.readline())
    yield urls
    proc.stdin.close()
    proc.wait(timeout=30)
    proc.stdout.close()


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOALIGN_CACHE_DIR", str(tmp_path / "cache"))  # inherited by the child


def kampala_extent(col0: int, row0: int, col1: int, row1: int) -> str:
    """A Processing extent ('xmin,xmax,ymin,ymax [CRS]') of a pixel window of the Kampala raster."""
    ds = gdal.Open(str(KAMPALA_TIF))
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    return f"{x0 + col0 * dx!r},{x0 + col1 * dx!r},{y0 + row1 * dy!r},{y0 + row0 * dy!r} [EPSG:3857]"


def test_fetch_imagery_from_a_tile_server(provider, servers, tmp_path):
    import processing

    out = tmp_path / "kampala.tif"
    feedback = RecordingFeedback()
    results = processing.run("geoalign:fetch_imagery", {
        "EXTENT": kampala_extent(100, 50, 400, 250), "SOURCE": f"xyz:{servers['tiles']}/tiles/{{z}}/{{x}}/{{y}}.png",
        "ZOOM": 21, "OUTPUT": str(out)}, feedback=feedback)
    assert results["OUTPUT"] == str(out)
    got, src = gdal.Open(str(out)), gdal.Open(str(KAMPALA_TIF))
    assert (got.RasterXSize, got.RasterYSize) == (300, 200)
    assert got.GetSpatialRef().GetAuthorityCode(None) == "3857"
    # Tiles are cut on the raster's own grid: the download is the source window, pixel for pixel.
    assert np.array_equal(got.ReadAsArray()[:3], src.ReadAsArray(100, 50, 300, 200)[:3])
    assert any("300×200 px, EPSG:3857" in line for line in feedback.infos)  # geoalign's summary line


def test_fetch_buildings_from_a_cadaster_url(provider, servers, tmp_path):
    import processing

    out = tmp_path / "cadastre.gpkg"
    processing.run("geoalign:fetch_buildings", {
        "EXTENT": "616800,616950,3344550,3344700 [EPSG:26914]",
        "SOURCE": f"file:{servers['files']}/cadastre/buildings.geojson", "OUTPUT": str(out)})
    got = QgsVectorLayer(str(out), "got", "ogr")
    source = QgsVectorLayer(str(AUSTIN_BUILDINGS), "source", "ogr")
    bbox = QgsGeometry.fromRect(QgsRectangle(616800, 3344550, 616950, 3344700))
    expected = [f for f in source.getFeatures(QgsFeatureRequest().setFilterRect(bbox.boundingBox()))
                if f.geometry().intersects(bbox)]
    assert 0 < len(expected) < source.featureCount() == 57
    assert got.featureCount() == len(expected) and got.crs().authid() == "EPSG:26914"
    assert sorted(round(f.geometry().area(), 3) for f in got.getFeatures()) == sorted(
        round(f.geometry().area(), 3) for f in expected)


def test_fetch_osm_buildings_from_an_osm_extract(provider, tmp_path):
    import processing

    out = tmp_path / "kirchberg.geojson"
    processing.run("geoalign:fetch_buildings", {"EXTENT": "10.068,10.071,48.135,48.137 [EPSG:4326]",
                                                "SOURCE": f"osm-xml:{KIRCHBERG_OSM}", "OUTPUT": str(out)})
    got = QgsVectorLayer(str(out), "got", "ogr")
    assert got.featureCount() == 32  # as `geoalign fetch buildings` on this extract (tests/fetch)


def test_fetch_failure_is_geoalign_one_line_message(provider, tmp_path):
    import processing

    with socket.socket() as sock:  # a port where nothing listens: an offline server
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "offline.tif"
    with pytest.raises(QgsProcessingException) as err:
        processing.run("geoalign:fetch_imagery", {
            "EXTENT": kampala_extent(0, 0, 100, 100), "SOURCE": f"xyz:http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png",
            "ZOOM": 21, "OUTPUT": str(out)})
    assert "connection refused" in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()
