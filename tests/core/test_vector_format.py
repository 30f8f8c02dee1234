"""GeoPackages are written as version 1.3, which QGIS 3.22 reads without a warning."""

from __future__ import annotations

import sqlite3

import geopandas as gpd
from shapely.geometry import box

from geoalign.io.vectors import write_vectors


def test_geopackage_version_is_1_3(tmp_path):
    path = write_vectors(gpd.GeoDataFrame({"id": [1]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:32614"),
                         tmp_path / "b.gpkg")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10300
    assert len(gpd.read_file(path, layer="b")) == 1
