"""A building cut by the image edge is moved no further than the evidence inside the image
supports: the local search ignores windows whose search area reaches past the raster's edge."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from click.testing import CliRunner

from cli.main import main


def test_a_building_cut_by_the_edge_is_not_thrown_past_the_true_misalignment(austin, tmp_path):
    mis, out = tmp_path / "mis.geojson", tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(main, ["-q", "misalign", str(austin["image"]), str(austin["buildings"]), "-o", str(mis),
                                "--max-disp", "16", "--seed", "0"]).exit_code == 0
    result = runner.invoke(main, ["-q", "align", str(austin["image"]), str(mis), "-o", str(out),
                                  "--method", "local"])
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
    # the search found 38.7 px for it (true misalignment 6.7 px) when edge windows counted
    assert e_after[edge][0] < 16.0
    assert e_after.max() < 16.0  # no building ends further off than the largest misalignment
    assert np.median(e_after) < 0.4 * np.median(e_before)  # 6.5 px -> about 1.7 px
    with rasterio.open(out / "displacement.tif") as src:
        assert np.hypot(*src.read()).max() / px_m < 20.0  # the true field peaks at 16 px
