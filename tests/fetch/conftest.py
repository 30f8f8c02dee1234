"""Fixtures of the fetch tests: servers on 127.0.0.1, a fresh cache per test, fast retries.

The servers themselves (tile, WMS, Overpass, file and failing servers) are in fetch_servers.py.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.warp import reproject

from fetch_servers import AUSTIN_TIF, Server, _Handler


@pytest.fixture
def serve():
    """``serve(app)`` starts a server calling ``app(handler)`` per request; returns its URL."""
    started: list[ThreadingHTTPServer] = []

    def start(app: Callable[[BaseHTTPRequestHandler], None]) -> Server:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.app = app  # type: ignore[attr-defined]
        httpd.hits = Counter()  # type: ignore[attr-defined]
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        return Server(url=f"http://127.0.0.1:{httpd.server_port}", hits=httpd.hits)  # type: ignore[attr-defined]

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: what an offline machine sees."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def fetch_settings(tmp_path, monkeypatch):
    """A fresh cache per test and short pauses, so retries cost milliseconds."""
    from geoalign.sources import settings

    monkeypatch.setattr(settings, "cache_folder", tmp_path / "cache")
    monkeypatch.setattr(settings, "backoff_s", 0.01)
    monkeypatch.setattr(settings, "max_retries", 2)
    monkeypatch.setattr(settings, "timeout_s", 10.0)
    monkeypatch.setattr(settings, "overpass_url", None)
    return settings


@pytest.fixture(scope="session")
def austin_3857_z19(tmp_path_factory) -> Path:
    """The Austin crop (EPSG:26914) reprojected to EPSG:3857 on the zoom-19 pixel grid, so that
    tiles cut from it are exact windows of it."""
    px = 2 * 20037508.342789244 / (256 * 2**19)
    out = tmp_path_factory.mktemp("austin") / "austin_3857_z19.tif"
    with rasterio.open(AUSTIN_TIF) as src:
        from rasterio.warp import transform_bounds

        w, s, e, n = transform_bounds(src.crs, "EPSG:3857", *src.bounds)
        col0, row0 = int(np.floor((w + 20037508.342789244) / px)), int(np.floor((20037508.342789244 - n) / px))
        col1, row1 = int(np.ceil((e + 20037508.342789244) / px)), int(np.ceil((20037508.342789244 - s) / px))
        transform = Affine(px, 0, col0 * px - 20037508.342789244, 0, -px, 20037508.342789244 - row0 * px)
        width, height = col1 - col0, row1 - row0
        data = np.zeros((3, height, width), dtype=np.uint8)
        alpha = np.zeros((height, width), dtype=np.uint8)
        reproject(src.read(), data, src_transform=src.transform, src_crs=src.crs,
                  dst_transform=transform, dst_crs="EPSG:3857", resampling=Resampling.bilinear)
        reproject(np.full((src.height, src.width), 255, np.uint8), alpha, src_transform=src.transform,
                  src_crs=src.crs, dst_transform=transform, dst_crs="EPSG:3857",
                  resampling=Resampling.nearest)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
        out, "w", driver="GTiff", width=width, height=height, count=3, dtype="uint8",
        crs="EPSG:3857", transform=transform,
    ) as dst:
        dst.write(data)
        dst.write_mask(alpha)
    return out


