"""Killed runs and full disks: no output that looks complete but is not; a rerun finishes the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geoalign.io.output_set import STAGING_PREFIX, verify_output_set
from geoalign.model.predictor import load_predictor

GEOALIGN = str(Path(sys.executable).parent / "geoalign")
ENV = {**os.environ, "GEOALIGN_PROGRESS": "off"}


def _run(args, timeout=600):
    return subprocess.run([GEOALIGN, "-q", *map(str, args)], env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def _kill_when(args, ready, timeout_s: float = 120.0) -> None:
    """Start the command and SIGKILL it as soon as ``ready()`` holds (it must not finish first)."""
    proc = subprocess.Popen([GEOALIGN, "-q", *map(str, args)], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert proc.poll() is None, "the command finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _dataset_args(austin, out: Path):
    return ["dataset", "build", "--source", austin["image"], austin["buildings"], "-o", out, "--scales", "1,0",
            "--patch-size", "32", "--gsd", "0.6", "--stride", "0.5", "--no-preview"]


def test_a_killed_dataset_build_leaves_no_dataset_and_a_rerun_builds_it(austin, tmp_path):
    out = tmp_path / "ds"
    _kill_when(_dataset_args(austin, out), lambda: any(tmp_path.glob(".ds.*")))
    assert not (out / "manifest.json").exists()
    r = _run(_dataset_args(austin, out))
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(sum(c.values()) for c in manifest["counts"].values()) > 0


def test_a_killed_training_resumes_to_a_loadable_model(austin, tmp_path):
    ds = tmp_path / "ds"
    assert _run(_dataset_args(austin, ds)).returncode == 0
    model, work = tmp_path / "model", tmp_path / "work"
    args = ["train", ds, "-o", model, "--rounds", "2", "--steps", "150", "--pretrain-steps", "0",
            "--batch-size", "2", "--work-dir", work]
    _kill_when(args, lambda: (work / "rounds" / "round0" / "metrics.json").exists())
    assert not (model / "model_card.json").exists()
    r = _run([*args, "--resume"])
    assert r.returncode == 0, r.stderr
    card = json.loads((model / "model_card.json").read_text())
    assert len(card["metrics"]["rounds"]) == 2
    assert load_predictor(model).gsd_m == 0.6


@pytest.fixture
def tiny_disk(tmp_path):
    """A 600 KB tmpfs: too small for align's outputs on the Austin sample (about 3 MB)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)]).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)])


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(austin, tiny_disk):
    out = tiny_disk / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    r = _run(["align", austin["image"], austin["buildings"], "-o", out, "--method", "local"])
    assert r.returncode == 1
    # libtiff itself also prints "_tiffWriteProc: No space left on device." lines
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("Error:") and "no space left" in last
    assert sorted(p.name for p in out.iterdir()) == [".geoalign.lock", "notes.txt"]
    assert verify_output_set(out) != []
    assert not list(out.glob(STAGING_PREFIX + "*"))


@pytest.mark.parametrize("options", [["--method", "local"], ["--report"]], ids=["local", "report"])
def test_a_killed_align_then_a_rerun_gives_the_result_of_a_run_never_killed(austin, tmp_path, options):
    from geoalign.io.output_set import RUN_MANIFEST

    import rasterio
    from rasterio.windows import Window

    image = tmp_path / "crop.tif"  # 500×500 px of the Austin sample: three runs in seconds
    with rasterio.open(austin["image"]) as src:
        window = Window(0, 0, 500, 500)
        profile = {**src.profile, "width": 500, "height": 500, "transform": src.window_transform(window)}
        with rasterio.open(image, "w", **profile) as dst:
            dst.write(src.read(window=window))
    args = lambda out: ["align", image, austin["buildings"], "-o", out, *options]  # noqa: E731
    fresh, killed = tmp_path / "fresh", tmp_path / "killed"
    assert _run(args(fresh)).returncode == 0
    killed.mkdir()
    (killed / "notes.txt").write_text("mine")
    _kill_when(args(killed), lambda: any(killed.glob(STAGING_PREFIX + "*/*")))
    assert not (killed / RUN_MANIFEST).exists()  # nothing there looks complete
    r = _run(args(killed))
    assert r.returncode == 0, r.stderr
    assert verify_output_set(killed) == []
    assert not list(killed.glob(STAGING_PREFIX + "*"))
    assert (killed / "notes.txt").read_text() == "mine"
    names = ["displacement.tif", "aligned.geojson", "aligned.gpkg", "overlay.png"]
    if "--report" in options:  # report.json also holds timings
        names += ["report/tiles.geojson", "report/to_review.geojson", "report/report.gpkg"]
    for name in names:
        a, b = fresh / name, killed / name
        if name.endswith(".gpkg"):  # GeoPackage stores its write time: compare the features
            import geopandas as gpd

            ga, gb = gpd.read_file(a), gpd.read_file(b)
            assert ga.drop(columns="geometry").equals(gb.drop(columns="geometry"))
            assert all(x.equals_exact(y, 0) for x, y in zip(ga.geometry, gb.geometry))
        else:
            assert a.read_bytes() == b.read_bytes(), name
