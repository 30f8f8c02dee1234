"""`geoalign misalign`: a known smooth misalignment of a whole layer, its field, its bounds."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from click.testing import CliRunner

from cli.main import main
from geoalign.deform import correct_points
from geoalign.grid import PixelGrid
from geoalign.io.raster import open_raster


def test_misalign_cli_moves_within_bound_and_field_corrects(tmp_path, austin):
    out, field_tif = tmp_path / "mis.gpkg", tmp_path / "field.tif"
    result = CliRunner().invoke(main, ["misalign", str(austin["image"]), str(austin["buildings"]), "-o", str(out),
                                       "--max-disp", "12", "--field", str(field_tif), "--seed", "3"])
    assert result.exit_code == 0, result.output
    truth = gpd.read_file(austin["buildings"])
    moved = gpd.read_file(out)
    assert list(moved["id"]) == list(truth["id"]) and moved.crs == truth.crs
    assert [len(g.exterior.coords) for g in moved.geometry] == [len(g.exterior.coords) for g in truth.geometry]
    with open_raster(austin["image"]) as r:
        grid = PixelGrid.of(r)
    t_px = shapely.get_coordinates(grid.to_pixels(truth.geometry.values))
    m_px = shapely.get_coordinates(grid.to_pixels(moved.geometry.values))
    shift = np.hypot(*(m_px - t_px).T)
    assert shift.max() <= 12.0 + 1e-6 and np.median(shift) > 2.0
    with rasterio.open(field_tif) as src:
        field_m = src.read()
        assert src.crs == truth.crs and src.count == 2
        # align's displacement.tif convention: dx east, dy north, in metres
        assert src.descriptions == ("dx, east (metre)", "dy, north (metre)")
        assert src.tags(1)["units"] == "metre"
        field = np.stack([field_m[0] / src.transform.a, field_m[1] / src.transform.e])
    assert np.abs(correct_points(m_px, field) - t_px).max() < 0.01
