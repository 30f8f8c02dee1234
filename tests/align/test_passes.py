"""The learned chain run several times, each pass on the map the passes before it moved."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from click.testing import CliRunner
from rasterio.windows import Window

from cli.main import main
from geoalign.inference.compose import ComposedPredictor


SHIFT_M = (6.0, -4.8)  # 7.7 m = 26 px at 0.3 m: more than one pass of the chain corrects


def _crop(austin, tmp_path, crop_raster):
    """The north-west 500 × 500 px of the Austin sample, its buildings shifted by ``SHIFT_M`` (east, north)."""
    image = tmp_path / "crop.tif"
    bounds = crop_raster(austin["image"], Window(0, 0, 500, 500), image)[0]
    truth = gpd.read_file(austin["buildings"])
    truth = truth[truth.within(shapely.box(*bounds))].reset_index(drop=True)
    shifted = tmp_path / "shifted.geojson"
    truth.set_geometry(truth.geometry.translate(SHIFT_M[0], SHIFT_M[1])).to_file(shifted, driver="GeoJSON")
    return image, shifted, truth


def _median_error_m(path, truth) -> float:
    got = shapely.get_coordinates(gpd.read_file(path).to_crs(truth.crs).geometry.values)
    return float(np.median(np.hypot(*(got - shapely.get_coordinates(truth.geometry.values)).T)))


def test_a_second_pass_corrects_what_the_first_left(austin, tmp_path, crop_raster):
    image, shifted, truth = _crop(austin, tmp_path, crop_raster)
    errors = {}
    for passes in (1, 2):
        out = tmp_path / f"p{passes}"
        res = CliRunner().invoke(main, ["-q", "align", str(image), str(shifted), "-o", str(out),
                                        "--method", "learned", "--passes", str(passes)], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        errors[passes] = _median_error_m(out / "aligned.gpkg", truth)
    assert "(2 passes)" in res.output
    start_m = float(np.hypot(*SHIFT_M))  # 7.68 m
    assert errors[1] < start_m - 0.5, errors
    assert errors[2] < errors[1] - 0.5, errors


def test_passes_compose_the_chain_with_itself_and_need_the_chain_alone(austin, tmp_path):
    from geoalign.align import resolve_predictor
    from geoalign.distributed import PredictorSpec

    once, _, _ = resolve_predictor("learned")
    twice, name, note = PredictorSpec("learned", passes=2).resolve()
    assert isinstance(twice, ComposedPredictor) and name == "learned" and note == "2 passes"
    assert len(twice.stages) == 2 and twice.context_px == 2 * once.context_px
    res = CliRunner().invoke(main, ["align", str(austin["image"]), str(austin["buildings"]), "-o",
                                    str(tmp_path / "no"), "--passes", "2"])
    assert res.exit_code != 0 and "--passes repeats the learned chain alone" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "no").exists()
