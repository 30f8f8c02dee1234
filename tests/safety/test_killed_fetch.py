"""A fetch killed halfway leaves no output; the rerun asks only for the tiles it lacks and
writes the same raster as an uninterrupted fetch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fetch"))
from fetch_servers import KAMPALA_TIF, _Handler, tile_app  # noqa: E402

GEOALIGN = str(Path(sys.executable).parent / "geoalign")
Z = 21


def _slow_tile_server(delay_s: float):
    app = tile_app(KAMPALA_TIF)
    hits: Counter = Counter()

    def slow(handler):
        hits[handler.path] += 1
        time.sleep(delay_s)
        app(handler)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.app = slow  # type: ignore[attr-defined]
    httpd.hits = Counter()  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, hits


def _bbox() -> list[str]:
    with rasterio.open(KAMPALA_TIF) as src:
        t = src.transform
    col0, row0, col1, row1 = 0, 0, 3072, 2048
    return [str(v) for v in (t.c + col0 * t.a, t.f + row1 * t.e, t.c + col1 * t.a, t.f + row0 * t.e)]


def test_a_killed_fetch_leaves_no_output_and_the_rerun_reuses_the_cache(tmp_path):
    httpd, hits = _slow_tile_server(0.15)
    try:
        env = {**os.environ, "GEOALIGN_CACHE_DIR": str(tmp_path / "cache"), "GEOALIGN_PROGRESS": "off"}
        out_dir = tmp_path / "out"
        out_dir.mkdir()
        args = [GEOALIGN, "-q", "fetch", "imagery", "--bbox", *_bbox(), "--bbox-crs", "EPSG:3857",
                "--source", f"xyz:http://127.0.0.1:{httpd.server_port}/tiles/{{z}}/{{x}}/{{y}}.png",
                "--zoom", str(Z)]
        proc = subprocess.Popen([*args, "-o", str(out_dir / "k.tif")], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while sum(hits.values()) < 20:  # of the 96 tiles
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert list(out_dir.iterdir()) == []  # no output, no temporary file
        before = sum(hits.values())
        r = subprocess.run([*args, "-o", str(out_dir / "k.tif")], env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        asked_again = sum(hits.values()) - before
        assert asked_again <= 96 - 15  # the tiles fetched before the kill come from the cache
        fresh_env = {**env, "GEOALIGN_CACHE_DIR": str(tmp_path / "cache2")}
        r = subprocess.run([*args, "-o", str(tmp_path / "fresh.tif")], env=fresh_env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        with rasterio.open(out_dir / "k.tif") as a, rasterio.open(tmp_path / "fresh.tif") as b:
            assert np.array_equal(a.read(), b.read()) and a.transform == b.transform
    finally:
        httpd.shutdown()
        httpd.server_close()
