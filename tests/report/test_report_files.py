"""The report's files: RFC 7946 GeoJSON, the GeoPackage layers, report.json, the figures."""

from __future__ import annotations

import json

import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import CRS

from geoalign.report.writers import NAMES, PROPERTIES
from geoalign.report.trust import TrustReport

from .conftest import constant_calibration

RASTER_CRS = "EPSG:32614"


@pytest.fixture(scope="module")
def written(tiny_model, city_tile, tmp_path_factory):
    h, w = city_tile["valid"].shape
    report = TrustReport(buildings_px=city_tile["geoms"], grid_shape=(h, w), work_transform=city_tile["transform"],
                         model_dir=tiny_model, search_px=8, calibration=constant_calibration(2.5),
                         low_density_quantile=1.0, trust_gate_px=3.0)
    report.on_tile(inp=(0, h, 0, w), core=(0, h, 0, w), image=city_tile["image"], valid=city_tile["valid"],
                   map_=city_tile["map"], field=city_tile["field"])
    result = report.finish()
    stage = tmp_path_factory.mktemp("stage")
    names = report.write(stage, result, crs=RASTER_CRS, model="tiny", timings={"align": 1.0})
    return stage, names, result


def _ring_area(ring) -> float:
    x, y = np.asarray(ring).T
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def test_geojson_layers_follow_rfc_7946(written):
    stage, names, result = written
    assert set(names) == set(NAMES) and all((stage / n).stat().st_size > 0 for n in names)
    for name in ("tiles", "low_density", "to_review"):
        doc = json.loads((stage / "report" / f"{name}.geojson").read_text())
        assert doc["type"] == "FeatureCollection" and "crs" not in doc
        for f in doc["features"]:
            assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon"
            ring = f["geometry"]["coordinates"][0]
            assert ring[0] == ring[-1] and len(ring) >= 4
            assert _ring_area(ring) > 0  # exterior counter-clockwise (right-hand rule)
            lon, lat = np.asarray(ring).T
            assert np.all(np.abs(lon + 99) < 1) and np.all(np.abs(lat - 36.1) < 0.5)  # UTM 14N, x=500 km
            assert shapely.geometry.shape(f["geometry"]).is_valid
            assert set(PROPERTIES) <= set(f["properties"])
    tiles = json.loads((stage / "report/tiles.geojson").read_text())["features"]
    low = json.loads((stage / "report/low_density.geojson").read_text())["features"]
    review = json.loads((stage / "report/to_review.geojson").read_text())["features"]
    assert len(tiles) == len(result.tiles) == 4
    assert {f["properties"]["tile_id"] for f in low} == {t["tile_id"] for t in result.tiles if t["low_density"]}
    assert len(low) > 0
    scores = [f["properties"]["review_score"] for f in review]
    assert scores == sorted(scores, reverse=True) and [f["properties"]["review_rank"] for f in review] == list(
        range(1, len(review) + 1))
    assert all(f["properties"]["n_buildings"] > 0 for f in review)
    t0 = tiles[0]["properties"]
    assert isinstance(t0["low_density"], bool) and isinstance(t0["n_buildings"], int)


def test_geopackage_holds_the_three_layers_in_the_raster_crs(written):
    stage, _, result = written
    path = stage / "report/report.gpkg"
    assert [layer[0] for layer in pyogrio.list_layers(path)] == ["tiles", "low_density", "to_review"]
    for layer in ("tiles", "low_density", "to_review"):
        info = pyogrio.read_info(path, layer=layer)
        assert CRS.from_user_input(info["crs"]) == CRS.from_user_input(RASTER_CRS)
    tiles = pyogrio.read_dataframe(path, layer="tiles")
    minx, miny, maxx, maxy = tiles.total_bounds
    assert (minx, maxy) == pytest.approx((500000.0, 4000000.0)) and maxx - minx == pytest.approx(128 * 1.2)


def test_report_json_counts_and_thresholds(written):
    stage, _, result = written
    doc = json.loads((stage / "report/report.json").read_text())
    assert doc["tiles"] == 4 and doc["low_density_tiles"] == sum(t["low_density"] for t in result.tiles)
    assert doc["buildings_gated"] == int(result.gated.sum()) > 0  # low-density tiles' buildings
    assert doc["thresholds"]["trust_gate_px"] == 3.0 and doc["thresholds"]["low_density_quantile"] == 1.0
    assert doc["median_expected_error_px"] == pytest.approx(2.5)
    assert doc["buildings_confidence_below_0p5"] == int(np.sum(result.confidence[np.isfinite(result.confidence)] < 0.5))
    assert "trust" in doc["timings_s"] and doc["calibration"]["data"] == "test"
