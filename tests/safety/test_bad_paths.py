"""Paths and coordinates a user can get wrong: every command answers in one line and exit 1,
writes nothing and leaves its inputs as they were.

* a GeoJSON without a ``crs`` member holding projected metres (RFC 7946 reads it as WGS84);
* an output folder on a read-only file system, an output under a regular file, an unreadable
  input: operating-system errors become one line (``cli.main.GeoalignGroup``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import geopandas as gpd
import pytest
from click.testing import CliRunner

from cli.main import main


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def invoke(args) -> "object":
    return CliRunner().invoke(main, ["-q", *map(str, args)])


def assert_one_line_error(result, *words: str, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]
    return lines[0]


@pytest.fixture
def projected_geojson_without_crs(austin, tmp_path) -> Path:
    """The Austin buildings in UTM metres (EPSG:26914) written as GeoJSON with no ``crs``."""
    gdf = gpd.read_file(austin["buildings"]).to_crs(26914)
    doc = json.loads(gdf.to_json())
    doc.pop("crs", None)
    path = tmp_path / "utm_without_crs.geojson"
    path.write_text(json.dumps(doc))
    return path


def commands(austin, buildings: Path, out: Path) -> dict[str, list]:
    image = austin["image"]
    bbox = ["--bbox", "616800", "3344400", "616950", "3344550", "--bbox-crs", "EPSG:26914"]
    return {
        "align": ["align", image, buildings, "-o", out / "aligned", "--method", "global"],
        "misalign": ["misalign", image, buildings, "-o", out / "m.gpkg"],
        "evaluate": ["evaluate", buildings, austin["buildings"], "--image", image, "--id-field", "id",
                     "-o", out / "eval"],
        "evaluate-truth": ["evaluate", austin["buildings"], buildings, "--image", image,
                           "--id-field", "id", "-o", out / "eval"],
        "dataset": ["dataset", "build", "--source", image, buildings, "-o", out / "ds", "--scales", "2",
                    "--no-preview"],
        "fetch": ["fetch", "buildings", *bbox, "--source", f"file:{buildings}", "-o", out / "b.gpkg"],
    }


@pytest.mark.parametrize("command", ["align", "misalign", "evaluate", "evaluate-truth", "dataset", "fetch"])
def test_projected_coordinates_in_a_geojson_without_crs_are_one_line(
        command, austin, projected_geojson_without_crs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    before = sha256(projected_geojson_without_crs)
    result = invoke(commands(austin, projected_geojson_without_crs, out)[command])
    line = assert_one_line_error(result, "impossible in the declared CRS", "EPSG:4326",
                                 "utm_without_crs.geojson")
    assert "616" in line  # the offending coordinates are shown
    assert list(out.iterdir()) == []
    assert sha256(projected_geojson_without_crs) == before


def test_non_finite_and_huge_projected_coordinates_are_refused(austin, tmp_path):
    from shapely.geometry import Polygon

    huge = gpd.GeoDataFrame(geometry=[Polygon([(0, 0), (1e12, 0), (1e12, 1e12)])], crs=26914)
    path = tmp_path / "huge.gpkg"
    huge.to_file(path, driver="GPKG")
    result = invoke(["misalign", austin["image"], path, "-o", tmp_path / "m.gpkg"])
    assert_one_line_error(result, "impossible in the declared CRS EPSG:26914", "1e+12")
    assert not (tmp_path / "m.gpkg").exists()


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder nobody may write into: a read-only tmpfs when running as root (root ignores
    permission bits), else a folder with mode 0555."""
    path = tmp_path / "readonly"
    path.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)]).returncode:
            pytest.skip("cannot mount a read-only tmpfs")
        yield path
        subprocess.run(["umount", str(path)])
    else:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)


@pytest.mark.parametrize("command", ["align", "align-into", "misalign", "misalign-field", "evaluate",
                                     "dataset", "fetch-imagery", "fetch-buildings"])
def test_an_unwritable_output_is_one_line(command, austin, readonly_dir, tmp_path):
    image, buildings = austin["image"], austin["buildings"]
    bbox = ["--bbox", "616800", "3344400", "616950", "3344550", "--bbox-crs", "EPSG:26914"]
    args = {
        "align": ["align", image, buildings, "-o", readonly_dir / "out", "--method", "global"],
        "align-into": ["align", image, buildings, "-o", readonly_dir, "--method", "global"],
        "misalign": ["misalign", image, buildings, "-o", readonly_dir / "m.gpkg"],
        "misalign-field": ["misalign", image, buildings, "-o", tmp_path / "m.gpkg",
                           "--field", readonly_dir / "f.tif"],
        "evaluate": ["evaluate", buildings, buildings, "--image", image, "--id-field", "id",
                     "-o", readonly_dir / "ev"],
        "dataset": ["dataset", "build", "--source", image, buildings, "-o", readonly_dir / "ds",
                    "--scales", "2", "--no-preview"],
        "fetch-imagery": ["fetch", "imagery", *bbox, "--source", f"file:{image}", "-o", readonly_dir / "x.tif"],
        "fetch-buildings": ["fetch", "buildings", *bbox, "--source", f"file:{buildings}",
                            "-o", readonly_dir / "x.gpkg"],
    }[command]
    line = assert_one_line_error(invoke(args))
    assert str(readonly_dir) in line or "readonly" in line
    assert ("read-only" in line.lower()) or ("permission" in line.lower())
    assert ".part" not in line  # the user's path, not a temporary file's
    assert list(readonly_dir.iterdir()) == []


def test_an_output_under_a_regular_file_is_one_line(austin, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    result = invoke(["align", austin["image"], austin["buildings"], "-o", blocker / "out", "--method", "global"])
    assert_one_line_error(result, "notes.txt", "not a directory")
    result = invoke(["misalign", austin["image"], austin["buildings"], "-o", blocker / "m.gpkg"])
    assert_one_line_error(result, "notes.txt")
    assert blocker.read_text() == "mine"


def test_a_folder_given_as_a_file_is_one_line(austin, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    result = invoke(["misalign", folder, austin["buildings"], "-o", tmp_path / "m.gpkg"])
    assert_one_line_error(result, "is a directory", "misalign --help", exit_code=2)
    result = invoke(["evaluate", austin["buildings"], folder, "--image", austin["image"],
                     "--id-field", "id", "-o", tmp_path / "ev"])
    assert_one_line_error(result, "is a directory", exit_code=2)


def test_usage_errors_are_one_line(tmp_path):
    assert_one_line_error(invoke(["no-such-command"]), "no such command", exit_code=2)
    assert_one_line_error(invoke(["align", "a.tif", "b.gpkg", "-o", tmp_path, "--method", "magic"]),
                          "--method", "magic", exit_code=2)
    assert_one_line_error(invoke(["align", "a.tif"]), "missing argument", exit_code=2)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_an_unreadable_input_is_one_line(austin, tmp_path):
    import shutil

    locked = Path(shutil.copy(austin["buildings"], tmp_path / "locked.geojson"))
    locked.chmod(0)
    try:
        result = invoke(["misalign", austin["image"], locked, "-o", tmp_path / "m.gpkg"])
        assert_one_line_error(result, "locked.geojson")
    finally:
        locked.chmod(0o644)


def test_os_errors_map_to_one_line_with_the_users_path():
    import errno

    from cli.main import os_error_message

    err = OSError(errno.EROFS, os.strerror(errno.EROFS), "/data/out/.aligned.x1y2.part.gpkg")
    assert os_error_message(err) == "/data/out: Read-only file system (choose another path)."
    err = PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/data/in.tif")
    assert os_error_message(err) == ("/data/in.tif: Permission denied (check its permissions or "
                                     "choose another path).")


def test_a_geopackage_labelled_wgs84_holding_metres_names_its_crs(austin, tmp_path):
    gdf = gpd.read_file(austin["buildings"])
    path = tmp_path / "mislabelled.gpkg"
    gdf.set_crs("EPSG:4326", allow_override=True).to_file(path, driver="GPKG")
    line = assert_one_line_error(invoke(["misalign", austin["image"], path, "-o", tmp_path / "m.gpkg"]),
                                 "impossible in the declared CRS EPSG:4326", "check the file's CRS")
    assert "GeoJSON" not in line
