"""An align run's outputs are one set: consistent, locked, never touching files it did not write."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from click.testing import CliRunner

from cli.main import main
from geoalign.align import resolve_predictor
from geoalign.io.output_set import LOCK, RUN_MANIFEST, STAGING_PREFIX, verify_output_set
from geoalign.model.predictor import DEFAULT_MODEL_DIR

GEOALIGN = str(Path(sys.executable).parent / "geoalign")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _align(austin, out: Path, *extra: str):
    return CliRunner().invoke(main, ["align", str(austin["image"]), str(austin["buildings"]), "-o", str(out),
                                     "--method", "local", *extra])


def test_a_run_writes_a_verified_set_beside_the_users_files(austin, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    r = _align(austin, out)
    assert r.exit_code == 0, r.output
    assert (out / "notes.txt").read_text() == "mine"
    assert verify_output_set(out) == []
    files = json.loads((out / RUN_MANIFEST).read_text())["files"]
    assert sorted(files) == ["aligned.geojson", "aligned.gpkg", "displacement.tif", "overlay.png"]
    assert not list(out.glob(".*part*")) and not list(out.glob(STAGING_PREFIX + "*"))
    (out / "overlay.png").write_bytes(b"other")
    assert verify_output_set(out) == ["overlay.png is not the file of this run"]


def test_layers_bands_and_edge_flags_say_what_they_are(austin, tmp_path):
    out = tmp_path / "out"
    assert _align(austin, out).exit_code == 0
    assert pyogrio.list_layers(out / "aligned.geojson")[0][0] == "aligned"
    assert pyogrio.list_layers(out / "aligned.gpkg")[0][0] == "aligned"
    with rasterio.open(out / "displacement.tif") as src:
        assert src.descriptions == ("dx, east (metre)", "dy, north (metre)")
        assert src.tags(1)["units"] == "metre"
    df = pyogrio.read_dataframe(out / "aligned.gpkg")
    # Austin sample: 57 footprints, some cut by the raster's edge
    assert df["partly_outside"].sum() >= 1
    assert not (df["partly_outside"] & df["outside_image"]).any()


def test_a_second_run_into_a_locked_folder_fails_in_one_line(austin, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out / LOCK, os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        r = _align(austin, out)
    finally:
        os.close(fd)
    assert r.exit_code == 1
    assert r.output.count("\n") == 1 and "another geoalign run" in r.output
    assert not (out / "aligned.gpkg").exists()


def test_a_failed_run_leaves_no_output_folder(austin, tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff")
    out = tmp_path / "never"
    r = CliRunner().invoke(main, ["align", str(bad), str(austin["buildings"]), "-o", str(out), "--method", "local"])
    assert r.exit_code == 1
    assert not out.exists()


def test_a_killed_run_leaves_the_previous_set_detectably_incomplete_and_a_rerun_repairs_it(kampala, tmp_path):
    out = tmp_path / "out"
    args = [GEOALIGN, "-q", "align", str(kampala["image"]), str(kampala["buildings"]), "-o", str(out),
            "--method", "local"]
    env = {**os.environ, "GEOALIGN_PROGRESS": "off"}
    assert subprocess.run(args, env=env, capture_output=True, timeout=300).returncode == 0
    first = _sha(out / "displacement.tif")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Either the old set is intact (killed before the swap) or run.json is gone: never a mix
    # that looks complete.
    problems = verify_output_set(out)
    assert problems == [] and _sha(out / "displacement.tif") == first or RUN_MANIFEST in problems[0]
    assert subprocess.run(args, env=env, capture_output=True, timeout=300).returncode == 0
    assert verify_output_set(out) == []
    assert not list(out.glob(STAGING_PREFIX + "*"))


def test_the_shipped_model_folder_runs_the_default_pipeline(austin_px):
    image, valid, _, geoms = austin_px
    default, name_default, _ = resolve_predictor(None, None)
    explicit, name_explicit, note = resolve_predictor(None, DEFAULT_MODEL_DIR)
    assert name_explicit == name_default == "local+learned"
    from geoalign.rasterize import rasterize_map

    sl = (slice(None), slice(0, 400), slice(0, 400))
    map_ = rasterize_map(geoms, image.shape[1:], channels=default.channels)
    a = default.predict(image[sl], valid[sl[1:]], map_[sl])
    b = explicit.predict(image[sl], valid[sl[1:]], map_[sl])
    assert np.abs(a).max() > 0.1 and np.allclose(a, b)


def test_buildings_that_miss_the_image_warn_and_stay_put(austin, tmp_path):
    import geopandas as gpd
    import shapely

    far = gpd.GeoDataFrame({"id": [1]}, geometry=[shapely.box(0, 0, 10, 10)], crs="EPSG:26914")
    path = tmp_path / "far.gpkg"
    far.to_file(path)
    with pytest.warns(UserWarning, match="nothing was moved"):
        r = CliRunner().invoke(main, ["align", str(austin["image"]), str(path), "-o", str(tmp_path / "o"),
                                      "--method", "local"])
    assert r.exit_code == 0
