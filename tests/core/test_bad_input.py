"""Bad input: one line on stderr, a non-zero exit, no partial output; odd imagery normalized."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from click.testing import CliRunner

from cli.main import main
from geoalign.io.raster import open_raster
from geoalign.io.vectors import GeometryRepairWarning, read_buildings

DATA = Path(__file__).resolve().parents[1] / "data" / "rasters"


def run_build(tmp_path: Path, image: Path, buildings: Path, *extra: str):
    out = tmp_path / "ds"
    result = CliRunner().invoke(
        main, ["-q", "dataset", "build", "--source", str(image), str(buildings), "-o", str(out),
               "--scales", "1,0", "--patch-size", "64", *extra],
    )
    return result, out


def assert_clean_failure(result, out: Path, *words: str) -> None:
    assert result.exit_code != 0
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".ds")], "partial output left"


def copy_raster(src: Path, dst: Path, **changes) -> Path:
    with rasterio.open(src) as s:
        profile = s.profile
        data = s.read()
    profile.update(changes.pop("profile", {}))
    transform = changes.pop("data_fn", None)
    if transform is not None:
        data = transform(data)
        profile.update(count=data.shape[0], dtype=str(data.dtype))
    with rasterio.open(dst, "w", **profile) as d:
        d.write(data)
    return dst


def test_raster_without_crs(tmp_path, austin):
    img = copy_raster(austin["image"], tmp_path / "nocrs.tif", profile={"crs": None})
    result, out = run_build(tmp_path, img, austin["buildings"])
    assert_clean_failure(result, out, "no CRS")


def test_vectors_without_crs(tmp_path, austin):
    gdf = gpd.read_file(austin["buildings"])
    path = tmp_path / "nocrs.gpkg"  # (GeoJSON would imply WGS84)
    with pytest.warns(UserWarning, match="crs"):
        gdf.set_crs(None, allow_override=True).to_file(path, driver="GPKG")
    result, out = run_build(tmp_path, austin["image"], path)
    assert_clean_failure(result, out, "no CRS")


def test_buildings_outside_raster(tmp_path, austin):
    gdf = gpd.read_file(austin["buildings"])
    path = tmp_path / "far.gpkg"
    gdf.set_geometry(gdf.translate(50_000, 0)).to_file(path, driver="GPKG")
    result, out = run_build(tmp_path, austin["image"], path)
    assert_clean_failure(result, out, "outside the raster")


def test_empty_vector_file(tmp_path, austin):
    gdf = gpd.read_file(austin["buildings"]).iloc[:0]
    path = tmp_path / "empty.gpkg"
    gdf.to_file(path, driver="GPKG")
    result, out = run_build(tmp_path, austin["image"], path)
    assert_clean_failure(result, out, "no features")


def test_missing_files(tmp_path, austin):
    result, out = run_build(tmp_path, tmp_path / "nope.tif", austin["buildings"])
    assert_clean_failure(result, out, "no such raster")
    result, out = run_build(tmp_path, austin["image"], tmp_path / "nope.gpkg")
    assert_clean_failure(result, out, "no such vector")


def test_corrupt_geotiff(tmp_path, austin):
    data = austin["image"].read_bytes()
    bad = tmp_path / "truncated.tif"
    bad.write_bytes(data[: len(data) // 3])
    result, out = run_build(tmp_path, bad, austin["buildings"])
    assert_clean_failure(result, out, "truncated.tif")
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"not a tiff at all" * 100)
    result, out = run_build(tmp_path, garbage, austin["buildings"])
    assert_clean_failure(result, out, "not a readable raster")


def test_inputs_are_never_modified(tmp_path, austin):
    img = shutil.copy(austin["image"], tmp_path / "img.tif")
    vec = shutil.copy(austin["buildings"], tmp_path / "b.geojson")
    before = (Path(img).read_bytes(), Path(vec).read_bytes())
    result, out = run_build(tmp_path, Path(img), Path(vec), "--holdout-fraction", "0", "--scales", "1")
    assert result.exit_code == 0, result.output
    assert (Path(img).read_bytes(), Path(vec).read_bytes()) == before


def test_self_intersections_repaired_and_counted(tmp_path, austin):
    gdf = gpd.read_file(austin["buildings"])
    bowtie = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    minx, miny = gdf.total_bounds[:2]
    bad = [shapely.affinity.translate(bowtie, minx + 20 + 15 * k, miny + 20) for k in range(3)]
    gdf = gpd.GeoDataFrame(
        {"name": ["a", "b", "c"] + list(gdf.index.astype(str))},
        geometry=bad + list(gdf.geometry), crs=gdf.crs,
    )
    path = tmp_path / "bowties.gpkg"
    gdf.to_file(path, driver="GPKG")
    with pytest.warns(GeometryRepairWarning, match="repaired 3 invalid geometries"):
        clean = read_buildings(path)
    assert len(clean) == len(gdf) and clean.is_valid.all()
    assert clean.geometry.iloc[0].geom_type == "MultiPolygon"  # a bow-tie becomes two triangles
    assert clean.geometry.iloc[0].area == pytest.approx(50.0)


@pytest.mark.parametrize("kind", ["grey1", "uint16", "float64x4"])
def test_odd_imagery_builds_with_documented_normalization(tmp_path, austin, kind):
    fns = {
        "grey1": lambda d: d.mean(axis=0, keepdims=True).astype(np.uint8),
        "uint16": lambda d: (d.astype(np.uint16) * 257 + 100),
        "float64x4": lambda d: np.concatenate([d, d[:1]]).astype(np.float64) * 7.5,
    }
    img = copy_raster(austin["image"], tmp_path / f"{kind}.tif", data_fn=fns[kind])
    result, out = run_build(tmp_path, img, austin["buildings"], "--holdout-fraction", "0",
                            "--scales", "0", "--stride", "1")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["0"]["train"] > 40
    with open_raster(img) as r, open_raster(austin["image"]) as ref:
        got, valid = r.read()
        want, _ = ref.read()
    assert got.shape == (3, 1000, 1000) and got.dtype == np.float32
    assert 0.0 <= got.min() and got.max() <= 1.0
    # Same picture up to the stretch: strongly correlated with the 8-bit original.
    corr = np.corrcoef(got.mean(axis=0).ravel(), want.mean(axis=0).ravel())[0, 1]
    assert corr > 0.97


def test_real_float64_multispectral_and_uint16_pan_are_normalized():
    with open_raster(DATA / "solaris_rotterdam_ms1.tif") as r:
        assert r.dataset.count == 4 and r.dataset.dtypes[0] == "float64"
        img, valid = r.read()
    # 2–98 % stretch: about 2 % of valid pixels clip at each end, the rest spread over [0, 1].
    frac_low = (img[:, valid] <= 0.0).mean()
    frac_high = (img[:, valid] >= 1.0).mean()
    assert 0.005 < frac_low < 0.05 and 0.005 < frac_high < 0.05
    assert 0.1 < float(np.median(img[:, valid])) < 0.9 and float(img[:, valid].std()) > 0.1
    with open_raster(DATA / "solaris_rotterdam_pan1.tif") as r:
        img, valid = r.read()
    assert img.shape == (3, 600, 600)
    assert np.array_equal(img[0], img[1]) and np.array_equal(img[1], img[2])  # grey replicated
    assert 0.2 < float(np.median(img[:, valid])) < 0.8


def test_repair_warning_reaches_cli_users_as_one_line(tmp_path, austin):
    import subprocess
    import sys

    gdf = gpd.read_file(austin["buildings"])
    minx, miny = gdf.total_bounds[:2]
    bowtie = shapely.affinity.translate(shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)]), minx + 20, miny + 20)
    path = tmp_path / "bowtie.gpkg"
    gpd.GeoDataFrame(geometry=[bowtie, *gdf.geometry], crs=gdf.crs).to_file(path, driver="GPKG")
    res = subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", "dataset", "build", "--source",
         str(austin["image"]), str(path), "-o", str(tmp_path / "ds"), "--scales", "2", "--patch-size", "64"],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr
    warning_lines = [ln for ln in res.stderr.splitlines() if "GeometryRepairWarning" in ln]
    assert len(warning_lines) == 1
    assert "repaired 1 invalid geometry" in warning_lines[0] and ".py:" not in warning_lines[0]
