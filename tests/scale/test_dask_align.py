"""Tile-parallel ``align`` on a 2-worker Dask ``LocalCluster``: the same output set as one process
(bit for bit: both run torch on one thread), after a worker is killed mid-job, and after the job
itself is killed and rerun (finished windows are not recomputed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely

distributed = pytest.importorskip("distributed")

from geoalign.align.run import align_raster  # noqa: E402
from geoalign.distributed import PredictorSpec, align_distributed, mosaic_path  # noqa: E402
from geoalign.distributed.cluster import local_cluster  # noqa: E402
from geoalign.distributed.store import PROGRESS_DIR  # noqa: E402

TILE_PX = 256  # 16 tiles on the 1000×1000 px Austin sample


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(2) as c, distributed.Client(c) as client:
        yield c, client


@pytest.fixture(scope="module")
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as in every Dask worker: torch's sums then add in the same order
    yield
    torch.set_num_threads(before)


_plain_cache: dict = {}


def plain(austin, tmp_root: Path, method: str | None) -> Path:
    """The single-process output set of ``method`` (computed once per module)."""
    if method not in _plain_cache:
        spec = PredictorSpec(method)
        predictor, name, note = spec.resolve()
        out = tmp_root / f"plain-{method}"
        align_raster(austin["image"], austin["buildings"], out, predictor, method=name, tile_px=TILE_PX,
                     show_progress=False)
        _plain_cache[method] = out
    return _plain_cache[method]


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory):
    return tmp_path_factory.mktemp("scale")


def assert_same_output(a: Path, b: Path) -> None:
    with rasterio.open(a / "displacement.tif") as fa, rasterio.open(b / "displacement.tif") as fb:
        assert np.array_equal(fa.read(), fb.read())
        assert fb.block_shapes[0] == (256, 256)
    ga, gb = gpd.read_file(a / "aligned.gpkg"), gpd.read_file(b / "aligned.gpkg")
    ca, cb = shapely.get_coordinates(ga.geometry.values), shapely.get_coordinates(gb.geometry.values)
    assert ca.shape == cb.shape and len(ca) > 5000
    assert np.abs(ca - cb).max() <= 1e-6  # metres
    assert np.any(np.abs(ga["shift_m"].to_numpy()) > 0.05)  # the field moved the buildings
    assert not (b / PROGRESS_DIR).exists()  # finished windows are removed with a complete set


@pytest.mark.parametrize("method", ["local", None, "global"])
def test_same_output_as_one_process(cluster, one_thread, austin, tmp_root, method):
    c, _ = cluster
    out = tmp_root / f"dask-{method}"
    result = align_distributed(austin["image"], austin["buildings"], out, PredictorSpec(method),
                               scheduler=c.scheduler_address, tile_px=TILE_PX, show_progress=False)
    assert "16 tiles computed, 0 reused" in result.note
    assert_same_output(plain(austin, tmp_root, method), out)


def _wait_for_parts(progress: Path, at_least: int, timeout_s: float = 120.0) -> int:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        n = len(list(progress.glob("*/r*_c*.npy")))
        if n >= at_least:
            return n
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} windows finished in {timeout_s} s")


def test_worker_killed_mid_job(cluster, one_thread, austin, tmp_root):
    c, client = cluster
    out = tmp_root / "dask-killed-worker"
    done: dict = {}
    job = threading.Thread(target=lambda: done.update(result=align_distributed(
        austin["image"], austin["buildings"], out, PredictorSpec("local"), scheduler=c.scheduler_address,
        tile_px=TILE_PX, show_progress=False)))
    job.start()
    finished_at_kill = _wait_for_parts(out / PROGRESS_DIR, 2)
    pids = client.run(os.getpid)
    os.kill(next(iter(pids.values())), signal.SIGKILL)
    finished_after_kill = len(list((out / PROGRESS_DIR).glob("*/r*_c*.npy")))
    job.join(timeout=300)
    assert finished_at_kill <= finished_after_kill < 16  # killed mid-job
    assert "16 tiles computed" in done["result"].note
    assert_same_output(plain(austin, tmp_root, "local"), out)
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker


def test_killed_job_restarts_without_recomputing_finished_windows(cluster, one_thread, austin, tmp_root):
    c, _ = cluster
    out = tmp_root / "dask-restart"
    cmd = [str(Path(sys.executable).with_name("geoalign")), "-q", "align", str(austin["image"]), str(austin["buildings"]),
           "-o", str(out), "--method", "local", "--tile-px", str(TILE_PX), "--workers", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[2], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_parts(out / PROGRESS_DIR, 4)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the job, its scheduler and its workers
        proc.wait()
    assert not (out / "run.json").exists()
    finished = len(list((out / PROGRESS_DIR).glob("*/r*_c*.npy")))
    assert 4 <= finished < 16
    result = align_distributed(austin["image"], austin["buildings"], out, PredictorSpec("local"),
                               scheduler=c.scheduler_address, tile_px=TILE_PX, show_progress=False)
    assert f"{16 - finished} tiles computed, {finished} reused" in result.note
    assert_same_output(plain(austin, tmp_root, "local"), out)


@pytest.fixture(scope="module")
def austin_tiles(austin, tmp_root) -> Path:
    """The sample cut into 4 GeoTIFF tiles of 500 × 500 px."""
    parts = tmp_root / "tiles"
    parts.mkdir()
    with rasterio.open(austin["image"]) as src:
        profile = src.profile
        for i, (r, col) in enumerate([(0, 0), (0, 500), (500, 0), (500, 500)]):
            win = rasterio.windows.Window(col, r, 500, 500)
            profile.update(width=500, height=500, transform=src.window_transform(win), tiled=False)
            profile.pop("blockxsize", None), profile.pop("blockysize", None)
            with rasterio.open(parts / f"t{i}.tif", "w", **profile) as dst:
                dst.write(src.read(window=win))
    return parts


def test_rasters_mosaic_same_as_one_raster(cluster, one_thread, austin, austin_tiles, tmp_root):
    """The sample cut into 4 GeoTIFF tiles, aligned as one VRT mosaic: the same output."""
    c, _ = cluster
    parts = austin_tiles
    out = tmp_root / "dask-mosaic"
    image, read_paths = mosaic_path(str(parts / "*.tif"), out)
    assert image.suffix == ".vrt" and len(read_paths) == 4
    align_distributed(image, austin["buildings"], out, PredictorSpec("global"), scheduler=c.scheduler_address,
                      tile_px=TILE_PX, show_progress=False, read_paths=read_paths)
    assert_same_output(plain(austin, tmp_root, "global"), out)


def test_rasters_option_without_a_cluster(one_thread, austin, austin_tiles, tmp_root):
    """``--rasters`` alone: the same mosaic aligned in one process, from the command line."""
    from click.testing import CliRunner

    from cli.main import main

    out = tmp_root / "cli-mosaic"
    result = CliRunner().invoke(main, ["-q", "align", "--rasters", str(austin_tiles / "*.tif"),
                                       str(austin["buildings"]), "-o", str(out), "--method", "global",
                                       "--tile-px", str(TILE_PX)])
    assert result.exit_code == 0, result.output
    assert_same_output(plain(austin, tmp_root, "global"), out)
    listed = json.loads((out / "run.json").read_text())
    assert sorted(listed["files"]) == ["aligned.geojson", "aligned.gpkg", "displacement.tif", "overlay.png"]


GATE_PX = 6.0


def plain_report(austin, tmp_root: Path) -> Path:
    """The single-process output set of the default pipeline with ``--report --trust-gate 6``."""
    out = tmp_root / "plain-report"
    if not out.exists():
        from geoalign.report.attach import ReportRequest

        predictor, name, note = PredictorSpec(None).resolve()
        align_raster(austin["image"], austin["buildings"], out, predictor, method=name, tile_px=TILE_PX,
                     show_progress=False, report=ReportRequest(trust_gate_px=GATE_PX))
    return out


def _report_columns(out: Path) -> tuple[list[dict], gpd.GeoDataFrame]:
    tiles = json.loads((out / "report" / "tiles.geojson").read_text())["features"]
    return tiles, gpd.read_file(out / "aligned.gpkg")


def test_trust_report_same_as_one_process(cluster, one_thread, austin, tmp_root):
    """--report on the cluster: the workers compute the report's tiles with the alignment's and
    the client merges them; tiles, per-building confidence and gate are the single-process ones."""
    from geoalign.report.attach import ReportRequest

    c, _ = cluster
    request = ReportRequest(trust_gate_px=GATE_PX)
    spec = PredictorSpec(None)
    plain_out, dask_out = plain_report(austin, tmp_root), tmp_root / "dask-report"
    result = align_distributed(austin["image"], austin["buildings"], dask_out, spec, scheduler=c.scheduler_address,
                               tile_px=TILE_PX, show_progress=False, report=request)
    assert "16 tiles computed, 0 reused" in result.note
    assert_same_report(plain_out, dask_out)


def assert_same_report(plain_out: Path, dask_out: Path) -> None:
    assert_same_output(plain_out, dask_out)
    (tiles_a, aligned_a), (tiles_b, aligned_b) = _report_columns(plain_out), _report_columns(dask_out)
    assert len(tiles_a) == len(tiles_b) >= 10
    for fa, fb in zip(tiles_a, tiles_b):
        assert fa["geometry"] == fb["geometry"]
        for key, va in fa["properties"].items():
            vb = fb["properties"][key]
            if isinstance(va, float):
                assert va == pytest.approx(vb, rel=1e-9, abs=1e-12, nan_ok=True), key
            else:
                assert va == vb, key
    for column in ("expected_error_px", "confidence"):
        a, b = aligned_a[column].to_numpy(), aligned_b[column].to_numpy()
        assert np.isfinite(a).sum() >= 40
        np.testing.assert_allclose(a, b, rtol=1e-9, equal_nan=True)
    assert aligned_a["gated"].tolist() == aligned_b["gated"].tolist()
    names = {p.relative_to(plain_out) for p in (plain_out / "report").rglob("*")}
    assert names == {p.relative_to(dask_out) for p in (dask_out / "report").rglob("*")}


def test_killed_job_with_report_restarts_with_the_same_report(one_thread, austin, tmp_root):
    """The report's tile parts are finished windows too: a rerun reuses them and the report is
    the single-process one."""
    out = tmp_root / "dask-report-restart"
    cmd = [str(Path(sys.executable).with_name("geoalign")), "align", str(austin["image"]), str(austin["buildings"]),
           "-o", str(out), "--tile-px", str(TILE_PX), "--workers", "2", "--report", "--trust-gate", str(GATE_PX)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GEOALIGN_PROGRESS": "off"}
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(cmd, cwd=root, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        _wait_for_parts(out / PROGRESS_DIR, 4)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "run.json").exists()
    finished = len(list((out / PROGRESS_DIR).glob("*/r*_c*.npy")))
    assert 4 <= finished < 16 and len(list((out / PROGRESS_DIR).glob("*/r*_c*.hook.npz"))) >= 1
    rerun = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    reused = int(rerun.stderr.split(" reused")[0].rsplit(", ", 1)[-1])
    assert reused >= finished and f"{16 - reused} tiles computed" in rerun.stderr
    assert_same_report(plain_report(austin, tmp_root), out)
