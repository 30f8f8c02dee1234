"""The small ways an output can mislead: counts that contradict each other, a "repaired" geometry
still invalid in the output, a field in other units than align's, a run over nodata that says
nothing, half of a two-file output."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from cli.main import main

BOWTIE = [[616900, 3344500], [616910, 3344510], [616910, 3344500], [616900, 3344510], [616900, 3344500]]


@pytest.fixture
def odd_buildings(austin, tmp_path) -> Path:
    """The Austin buildings plus 3 null geometries, 1 empty polygon, 1 point and 1 bow-tie."""
    doc = json.loads(Path(austin["buildings"]).read_text())
    extra = [None] * 3 + [{"type": "Polygon", "coordinates": []},
                          {"type": "Point", "coordinates": [616900, 3344500]},
                          {"type": "Polygon", "coordinates": [BOWTIE]}]
    doc["features"] += [{"type": "Feature", "properties": {"id": 1000 + i}, "geometry": g}
                        for i, g in enumerate(extra)]
    path = tmp_path / "odd.geojson"
    path.write_text(json.dumps(doc))
    return path


def test_align_counts_agree_and_repaired_geometries_are_valid_in_the_output(austin, odd_buildings, tmp_path, caplog):
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(main, ["align", str(austin["image"]), str(odd_buildings), "-o", str(out),
                                           "--method", "global"])
    assert result.exit_code == 0, result.output
    n_in = 57 + 6
    # the warning and the summary tell the same story: 5 features without a polygon, kept
    assert "5 features with no polygon geometry (null, empty, points, lines) kept unchanged" in caplog.text
    assert f"aligned {n_in} features (0 outside the image, 5 with no polygon kept unchanged)" in result.stderr
    for name in ("aligned.gpkg", "aligned.geojson"):
        df = gpd.read_file(out / name)
        assert len(df) == n_in and list(df["id"])[-6:] == [1000, 1001, 1002, 1003, 1004, 1005]
        polygons = df[df.geom_type.isin(["Polygon", "MultiPolygon"]) & ~df.is_empty]
        assert len(polygons) == 58 and polygons.is_valid.all()  # the bow-tie, repaired, too
        bowtie = df.geometry[df["id"] == 1005].iloc[0]
        assert bowtie.geom_type == "MultiPolygon" and bowtie.area == pytest.approx(50.0, rel=0.05)


def test_misalign_counts_what_it_drops(austin, odd_buildings, tmp_path, caplog):
    out = tmp_path / "m.gpkg"
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(main, ["misalign", str(austin["image"]), str(odd_buildings), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "5 features with no polygon geometry (null, empty, points, lines) dropped" in caplog.text
    assert "misaligned 58 features" in result.stderr
    df = gpd.read_file(out)
    assert len(df) == 58 and df.is_valid.all()


def test_misalign_field_has_the_units_and_axes_of_align_displacement(austin, tmp_path):
    mis, field = tmp_path / "m.gpkg", tmp_path / "field.tif"
    runner = CliRunner()
    assert runner.invoke(main, ["misalign", str(austin["image"]), str(austin["buildings"]), "-o", str(mis),
                                "--field", str(field), "--max-disp", "8"]).exit_code == 0
    assert runner.invoke(main, ["-q", "align", str(austin["image"]), str(mis), "-o", str(tmp_path / "a"),
                                "--method", "local"]).exit_code == 0
    with rasterio.open(field) as f, rasterio.open(tmp_path / "a" / "displacement.tif") as d:
        assert f.descriptions == d.descriptions == ("dx, east (metre)", "dy, north (metre)")
        assert f.tags(1)["units"] == d.tags(1)["units"] == "metre"
        truth, found = f.read(), d.read()
    # same sign convention: where the field is strong, align's correction points the same way
    strong = np.hypot(*truth) > 1.0
    cos = (truth * found).sum(axis=0)[strong] / (np.hypot(*truth) * np.hypot(*found) + 1e-9)[strong]
    assert np.median(cos) > 0.7


def test_misalign_writes_both_files_or_neither(austin, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the field's folder should be")
    out = tmp_path / "m.gpkg"
    result = CliRunner().invoke(main, ["-q", "misalign", str(austin["image"]), str(austin["buildings"]),
                                       "-o", str(out), "--field", str(blocker / "field.tif")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_an_all_nodata_image_warns(austin, tmp_path):
    with rasterio.open(austin["image"]) as src:
        profile = src.profile
        profile.update(nodata=0)
        data = np.zeros((src.count, src.height, src.width), src.dtypes[0])
    image = tmp_path / "nodata.tif"
    with rasterio.open(image, "w", **profile) as dst:
        dst.write(data)
    with pytest.warns(UserWarning, match="no valid pixel"):
        result = CliRunner().invoke(main, ["-q", "align", str(image), str(austin["buildings"]), "-o",
                                           str(tmp_path / "out"), "--method", "local"])
    assert result.exit_code == 0, result.output
    df = gpd.read_file(tmp_path / "out" / "aligned.gpkg")
    assert (df["shift_m"] == 0).all()
