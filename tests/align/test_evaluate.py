"""``evaluate`` on a constructed case with known errors."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from click.testing import CliRunner

from geoalign.evaluate import evaluate_alignment, summarize


@pytest.fixture()
def case(austin, tmp_path):
    with rasterio.open(austin["image"]) as src:
        t, crs = src.transform, src.crs
    px = 0.3  # m

    def square(col, row, size=20):
        x0, y0 = t * (col, row)
        return shapely.box(x0, y0 - size * px, x0 + size * px, y0)

    truth = [square(100, 100), square(300, 300), square(500, 500), square(700, 700)]
    shifts_px = [(1.5, 0.0), (0.0, 3.0), (6.0, 8.0)]  # 1.5, 3, 10 px (off the thresholds)
    aligned = [shapely.affinity.translate(g, dx * px, -dy * px) for g, (dx, dy) in zip(truth, shifts_px)]
    # Feature 4: densified (9 vertices instead of 5) and moved 2.5 px east: distance to boundary.
    dense = shapely.segmentize(truth[3], 20 * px / 2 + 1e-6)
    aligned.append(shapely.affinity.translate(dense, 2.5 * px, 0))
    gpd.GeoDataFrame({"bid": [1, 2, 3, 4]}, geometry=truth, crs=crs).to_file(tmp_path / "truth.geojson")
    gpd.GeoDataFrame({"bid": [1, 2, 3, 4, 99][:5]}, geometry=aligned + [square(10, 10)], crs=crs).to_crs(4326) \
        .to_file(tmp_path / "aligned.gpkg")
    return tmp_path, austin["image"]


def test_known_errors(case):
    d, image = case
    rep = evaluate_alignment(d / "aligned.gpkg", d / "truth.geojson", image, "bid", d / "ev")
    a = rep["aligned"]
    assert a["n_matched"] == 4 and a["n_unmatched"] == 1
    assert a["n_vertices_vertexwise"] == 15 and a["n_vertices_to_boundary"] == 9
    # 5 vertices at 1.5 px, 5 at 3 px, 5 at 10 px (vertex-wise). The densified square (corners and
    # edge midpoints, closing vertex repeated) moved 2.5 px east: its east-edge vertices (4 counting the
    # closing one) end 2.5 px outside, the west-edge midpoint 2.5 px inside, the other 4 on the boundary.
    dense_err = np.array([2.5, 2.5, 2.5, 0, 0, 2.5, 0, 0, 2.5])
    expect = np.concatenate([np.full(5, 1.5), np.full(5, 3.0), np.full(5, 10.0), dense_err])
    assert a["median_px"] == pytest.approx(np.median(expect), abs=1e-3)
    assert a["median_m"] == pytest.approx(np.median(expect) * 0.3, abs=1e-3)
    assert a["fraction_within_px"]["2"] == pytest.approx((expect <= 2).mean(), abs=1e-6)
    assert a["fraction_within_px"]["4"] == pytest.approx((expect <= 4).mean(), abs=1e-6)
    curve = dict(zip(a["curve"]["tau_px"], a["curve"]["fraction"]))
    assert curve[32.0] == 1.0 and curve[0.5] == pytest.approx((expect <= 0.5).mean()) and curve[2.0] == pytest.approx(9 / 24)
    saved = json.loads((d / "ev" / "evaluation.json").read_text())
    assert saved["aligned"]["median_px"] == a["median_px"]
    assert (d / "ev" / "accuracy_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_summary_numbers():
    s = summarize(np.array([0.0, 1.0, 2.0, 3.0, 10.0]), gsd_m=0.5)
    assert s["median_px"] == 2.0 and s["median_m"] == 1.0
    assert s["fraction_within_px"]["2"] == 0.6 and s["fraction_within_px"]["4"] == 0.8


def test_cli_evaluate_and_bad_id_field(case):
    from cli.main import main

    d, image = case
    runner = CliRunner()
    r = runner.invoke(main, ["evaluate", str(d / "aligned.gpkg"), str(d / "truth.geojson"), "--image", str(image),
                             "--id-field", "bid", "-o", str(d / "ev2"), "--before", str(d / "truth.geojson")])
    assert r.exit_code == 0, r.output
    assert "before: median 0.00 px" in r.output
    r = runner.invoke(main, ["evaluate", str(d / "aligned.gpkg"), str(d / "truth.geojson"), "--image", str(image),
                             "--id-field", "nope", "-o", str(d / "ev3")])
    assert r.exit_code == 1 and "no field 'nope'" in r.output and "Traceback" not in r.output
