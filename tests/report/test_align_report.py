"""`geoalign align --report` end to end on a crop of the Austin sample (shipped model)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from click.testing import CliRunner
from rasterio.windows import Window

from cli.main import main
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
from geoalign.model.predictor import DEFAULT_MODEL_DIR
from geoalign.report.stats import STATS_FILE
from geoalign.report.writers import NAMES

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL_DIR / STATS_FILE).exists(), reason="no shipped statistics")


@pytest.fixture(scope="module")
def crop(austin, tmp_path_factory):
    """The sample's south-east 400 px (its east edge cuts buildings) and its buildings, shifted by 2 m."""
    d = tmp_path_factory.mktemp("crop")
    with rasterio.open(austin["image"]) as src:
        win = Window(600, 600, 400, 400)
        prof = src.profile | {"width": 400, "height": 400, "transform": src.window_transform(win)}
        with rasterio.open(d / "image.tif", "w", **prof) as dst:
            dst.write(src.read(window=win))
        bounds = rasterio.windows.bounds(win, src.transform)
    truth = gpd.read_file(austin["buildings"]).to_crs(prof["crs"])
    truth = truth[truth.intersects(shapely.box(*bounds))]
    truth = truth.assign(bid=np.arange(len(truth)))
    assert len(truth) >= 10
    truth.to_file(d / "truth.gpkg")
    truth.set_geometry(truth.translate(2.0, -1.0)).to_file(d / "shifted.gpkg")
    return d


def _run(args):
    return CliRunner().invoke(main, ["-q", "align", *args], catch_exceptions=False)


def test_align_report_writes_the_layers_columns_and_gate(crop, tmp_path):
    out = tmp_path / "out"
    res = _run([str(crop / "image.tif"), str(crop / "shifted.gpkg"), "-o", str(out), "--report", "--trust-gate", "4",
                "--truth", str(crop / "truth.gpkg"), "--id-field", "bid"])
    assert res.exit_code == 0, res.output
    listed = json.loads((out / "run.json").read_text())["files"]
    assert set(NAMES) <= set(listed)  # one output set with the aligned layers
    aligned = gpd.read_file(out / "aligned.geojson")
    shifted = gpd.read_file(crop / "shifted.gpkg").to_crs(aligned.crs)
    assert {"expected_error_px", "confidence", "gated"} <= set(aligned.columns)
    on = ~aligned["outside_image"]
    assert aligned.loc[on, "expected_error_px"].notna().all() and aligned.loc[on, "confidence"].between(0, 1).all()
    gated = aligned["gated"].to_numpy(bool)
    report_tiles = json.loads((out / "report/tiles.geojson").read_text())["features"]
    assert gated.any()
    if not any(f["properties"]["low_density"] for f in report_tiles):  # then only the gate gates
        assert (aligned.loc[gated, "expected_error_px"] > 4).all()
        assert (aligned.loc[on & ~aligned["gated"], "expected_error_px"] <= 4).all()
    for g, s in zip(aligned.geometry[gated], shifted.geometry[gated]):
        assert g.equals_exact(s, 1e-6)  # left where the input had it
    assert (aligned.loc[gated, "shift_m"] == 0).all()
    tiles = json.loads((out / "report/tiles.geojson").read_text())["features"]
    with_b = [f["properties"] for f in tiles if f["properties"]["n_buildings"] > 0]
    assert with_b and all(p["error_px"] is not None and p["error_px"] >= 0 for p in with_b)
    doc = json.loads((out / "report/report.json").read_text())
    assert doc["buildings_gated"] == int(gated.sum()) and doc["thresholds"]["trust_gate_px"] == 4.0
    _check_qgis_styles_name_columns_of(out)


def test_report_options_without_report_or_on_an_uncalibrated_pipeline_are_one_line_errors(crop, tmp_path):
    base = [str(crop / "image.tif"), str(crop / "shifted.gpkg"), "-o", str(tmp_path / "o")]
    res = CliRunner().invoke(main, ["align", *base, "--trust-gate", "3"])
    assert res.exit_code != 0 and "needs --report" in res.output and "Traceback" not in res.output
    for bad in ("-1", "nan", "sometimes"):
        res = CliRunner().invoke(main, ["align", *base, "--report", "--trust-gate", bad])
        assert res.exit_code == 2 and "expected 'auto' or a number of pixels >= 0" in res.output
        assert "Traceback" not in res.output
    res = CliRunner().invoke(main, ["align", *base, "--report", "--truth", str(crop / "truth.gpkg")])
    assert res.exit_code != 0 and "--id-field" in res.output
    res = CliRunner().invoke(main, ["align", *base, "--report", "--method", "local"])
    assert res.exit_code != 0 and "local+learned" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def _check_qgis_styles_name_columns_of(out) -> None:
    """Every attribute a QGIS style of the plugin reads exists in the layer it styles."""
    import re

    from geoalign.io.vectors import read_vectors

    styles = ROOT / "qgis_plugin" / "geoalign_qgis" / "styles"
    layers = {"tiles": out / "report/tiles.geojson", "low_density": out / "report/tiles.geojson",  # same schema
              "to_review": out / "report/to_review.geojson", "confidence": out / "aligned.gpkg"}
    for style, path in layers.items():
        qml = (styles / f"{style}.qml").read_text()
        fields = set(re.findall(r'(?:field|attr|fieldName)="([A-Za-z_]+)"', qml))
        assert fields and fields <= set(read_vectors(path).columns), (style, fields)


def test_a_report_that_fails_in_the_background_fails_the_run_and_writes_nothing(crop, tmp_path, monkeypatch):
    from geoalign.errors import GeoalignError
    from geoalign.report.trust import TrustReport

    def broken(self, window):
        raise GeoalignError("scoring failed on this tile")

    monkeypatch.setattr(TrustReport, "on_report_window", broken)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["-q", "align", str(crop / "image.tif"), str(crop / "shifted.gpkg"), "-o", str(out),
                                    "--report"])
    assert res.exit_code != 0 and "scoring failed on this tile" in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_the_report_leaves_the_alignment_as_align_alone_makes_it(crop, tmp_path):
    """The report scores each tile on its own threads while the aligner computes the next one (9
    tiles here, 6 with buildings): without a gate the moved vertices are align's own, to the bit."""
    plain, with_report = tmp_path / "plain", tmp_path / "report"
    args = [str(crop / "image.tif"), str(crop / "shifted.gpkg"), "--tile-px", "200"]
    assert _run([*args, "-o", str(plain)]).exit_code == 0
    assert _run([*args, "-o", str(with_report), "--report"]).exit_code == 0
    a, b = gpd.read_file(plain / "aligned.gpkg"), gpd.read_file(with_report / "aligned.gpkg")
    ca, cb = shapely.get_coordinates(a.geometry.values), shapely.get_coordinates(b.geometry.values)
    assert len(ca) > 100 and np.array_equal(ca, cb)
    assert np.abs(a["shift_m"].to_numpy()).max() > 0.5  # the field moved the buildings
    with rasterio.open(plain / "displacement.tif") as fa, rasterio.open(with_report / "displacement.tif") as fb:
        assert np.array_equal(fa.read(), fb.read())


def test_the_auto_gate_moves_only_buildings_that_move_further_than_their_expected_error(crop, tmp_path):
    out = tmp_path / "auto"
    res = _run([str(crop / "image.tif"), str(crop / "shifted.gpkg"), "-o", str(out), "--report", "--trust-gate", "auto"])
    assert res.exit_code == 0, res.output
    aligned = gpd.read_file(out / "aligned.geojson")
    shifted = gpd.read_file(crop / "shifted.gpkg").to_crs(aligned.crs)
    gated = aligned["gated"].to_numpy(bool)
    low = aligned["confidence"].to_numpy() < 0.75 / (1 + (aligned["expected_error_px"].to_numpy() / 2.0) ** 2)
    move_px = np.array([np.hypot(*(shapely.get_coordinates(a) - shapely.get_coordinates(s)).T).mean()
                        for a, s in zip(aligned.geometry, shifted.geometry)]) / 0.3
    moving = ~gated & ~aligned["outside_image"].to_numpy(bool)
    assert moving.sum() >= 3  # the 2 m shift is larger than most buildings' expected error
    assert (move_px[moving & ~low] > 0.95 * aligned["expected_error_px"].to_numpy()[moving & ~low]).all()
    for g, s in zip(aligned.geometry[gated], shifted.geometry[gated]):
        assert g.equals_exact(s, 1e-6)
    assert json.loads((out / "report/report.json").read_text())["thresholds"]["trust_gate_px"] == "auto"
