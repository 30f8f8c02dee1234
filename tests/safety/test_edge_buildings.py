"""A building cut by the image edge, where the field past the edge is extrapolated from one side,
is flagged (``partly_outside``), and the trust report's gate leaves it where the map had it."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from click.testing import CliRunner

from cli.main import main


def test_a_building_cut_by_the_edge_is_flagged_and_the_trust_gate_keeps_it_in_place(austin, tmp_path):
    mis, out = tmp_path / "mis.geojson", tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(main, ["-q", "misalign", str(austin["image"]), str(austin["buildings"]), "-o", str(mis),
                                "--max-disp", "16", "--seed", "0"]).exit_code == 0
    result = runner.invoke(main, ["-q", "align", str(austin["image"]), str(mis), "-o", str(out),
                                  "--report", "--trust-gate", "6"])
    assert result.exit_code == 0, result.output
    truth, before, after = (gpd.read_file(p) for p in (austin["buildings"], mis, out / "aligned.gpkg"))
    with rasterio.open(austin["image"]) as src:
        px_m = src.res[0]
    def error_px(gdf):  # median vertex error of each building
        return np.array([np.median(np.hypot(*(shapely.get_coordinates(a) - shapely.get_coordinates(t)).T))
                         for a, t in zip(gdf.geometry, truth.geometry)]) / px_m
    e_before, e_after = error_px(before), error_px(after)
    edge = (truth["id"] == 11).to_numpy()  # crosses the east edge of the image
    assert after["partly_outside"].to_numpy()[edge].all()
    # ungated, the pipeline moves it to 38.7 px off (true misalignment 6.7 px): the windows inside
    # the image extrapolate past its edge; its expected error says so and the gate keeps it
    assert after["gated"].to_numpy()[edge].all() and after["expected_error_px"].to_numpy()[edge][0] > 6
    assert abs(e_after[edge][0] - e_before[edge][0]) < 1e-6
    assert e_after.max() < 16.0  # no building ends further off than the largest misalignment
    assert np.median(e_after) < 0.4 * np.median(e_before)
