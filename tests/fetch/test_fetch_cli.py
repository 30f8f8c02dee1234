"""``geoalign fetch`` as a user runs it: summary line on success; offline, HTTP errors and bad
input give one line on stderr, exit code 1 and no output file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import rasterio
from click.testing import CliRunner

from cli.main import main
from fetch_servers import AUSTIN_TIF, HELSINKI_OSM, KAMPALA_TIF, error_app, tile_app

GEOALIGN = Path(sys.executable).parent / "geoalign"


def kampala_bbox_3857(col0: int, row0: int, col1: int, row1: int) -> list[str]:
    with rasterio.open(KAMPALA_TIF) as src:
        t = src.transform
    return [str(v) for v in (t.c + col0 * t.a, t.f + row1 * t.e, t.c + col1 * t.a, t.f + row0 * t.e)]


def run(args: list[str]):
    return CliRunner().invoke(main, ["-q", *args], catch_exceptions=False)


def test_imagery_xyz_summary(serve, tmp_path):
    server = serve(tile_app(KAMPALA_TIF))
    out = tmp_path / "city.tif"
    result = run(["fetch", "imagery", "--bbox", *kampala_bbox_3857(0, 0, 300, 200),
                  "--bbox-crs", "EPSG:3857", "--source", f"xyz:{server.url}/tiles/{{z}}/{{x}}/{{y}}.png",
                  "--zoom", "21", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # messages go to stderr
    assert "300×200 px, EPSG:3857" in result.stderr and "2 requests" in result.stderr
    with rasterio.open(out) as dst:
        assert (dst.width, dst.height, dst.crs.to_epsg()) == (300, 200, 3857)


@pytest.mark.parametrize("failure", ["offline", "http500", "outside", "missing", "bad_source"])
def test_errors_are_one_line_exit_1_no_output(failure, serve, tmp_path, closed_port_url):
    out = tmp_path / "out.tif"
    bbox = ["--bbox", *kampala_bbox_3857(0, 0, 100, 100), "--bbox-crs", "EPSG:3857", "--zoom", "21"]
    if failure == "offline":
        args, expected = bbox + ["--source", f"xyz:{closed_port_url}/{{z}}/{{x}}/{{y}}.png"], "connection refused"
    elif failure == "http500":
        server = serve(error_app(500))
        args, expected = bbox + ["--source", f"xyz:{server.url}/{{z}}/{{x}}/{{y}}.png"], "HTTP 500"
    elif failure == "outside":
        args, expected = ["--bbox", "2.29", "48.85", "2.30", "48.86", "--source", f"file:{AUSTIN_TIF}"], "lies outside"
    elif failure == "missing":
        args, expected = bbox + ["--source", f"file:{tmp_path / 'nope.tif'}"], "no such raster file"
    else:
        args, expected = bbox + ["--source", "tiles:somewhere"], "is not understood"
    result = run(["fetch", "imagery", *args, "-o", str(out)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name != "cache"]


def test_buildings_cli_missing_osm_file(tmp_path):
    out = tmp_path / "b.gpkg"
    result = run(["fetch", "buildings", "--bbox", "0", "0", "1", "1", "--source",
                  f"osm-xml:{tmp_path / 'nope.osm'}", "-o", str(out)])
    assert result.exit_code == 1 and "no such OSM XML file" in result.stderr
    assert not out.exists()


def test_real_command_helsinki_warns_and_writes(tmp_path):
    """The installed ``geoalign`` command in a subprocess: the clipped Helsinki extract gives a
    warning on stderr, not a traceback, and the complete buildings."""
    out = tmp_path / "helsinki.geojson"
    env = {**os.environ, "GEOALIGN_CACHE_DIR": str(tmp_path / "cache"), "GEOALIGN_PROGRESS": "off"}
    proc = subprocess.run(
        [str(GEOALIGN), "fetch", "buildings", "--bbox", "24.935", "60.164", "24.953", "60.179",
         "--source", f"osm-xml:{HELSINKI_OSM}", "-o", str(out)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "skipped 6 of 67 building relations" in proc.stderr and "Traceback" not in proc.stderr
    assert "444 buildings" in proc.stderr
    gdf = gpd.read_file(out)
    assert len(gdf) == 444 and gdf.crs.to_epsg() == 4326
    assert (gdf["element"] == "relation").sum() == 61
