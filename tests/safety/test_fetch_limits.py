"""Servers that stall, drip or flood: ``fetch`` ends within its --timeout/--retries/--deadline in one
line, holds at most ``settings.max_answer_bytes`` of an answer, and its cache keys stay inside the
cache folder whatever the URL. Every server here is real, on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings as hsettings, strategies as st

from cli.main import main
from geoalign.sources import http, settings

#: A bbox of the Austin sample in lon/lat (a handful of zoom-18 tiles).
BBOX = ["--bbox", "-97.7405", "30.2700", "-97.7395", "30.2710"]
OVERPASS_STATUS = ("Connected as: 1\nCurrent time: 2024-01-01T00:00:00Z\nAnnounced endpoint: none\n"
                   "Rate limit: 2\n"
                   "2 slots available now.\nCurrently running queries (pid, space limit, time limit, "
                   "start time):\n")


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "cache_folder", tmp_path / "cache")
    monkeypatch.setattr(settings, "backoff_s", 0.01)
    monkeypatch.setattr(settings, "overpass_url", None)


@pytest.fixture
def silent_server():
    """A server that accepts every connection and never sends a byte."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    for conn in held:
        conn.close()
    sock.close()


@pytest.fixture
def serve():
    """``serve(handler_fn)``: a threaded HTTP server calling ``handler_fn(handler)``; its URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(fn) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                try:
                    fn(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up: what these tests want

            do_POST = do_GET

            def log_message(self, *args) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_port}"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def run(args):
    t0 = time.monotonic()
    result = CliRunner().invoke(main, ["-q", *map(str, args)])
    return result, time.monotonic() - t0


def one_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_a_server_that_never_answers_fails_within_the_deadline(silent_server, tmp_path):
    out = tmp_path / "img.tif"
    result, elapsed_s = run(["fetch", "imagery", *BBOX, "--zoom", "18", "--source",
                             f"xyz:{silent_server}/{{z}}/{{x}}/{{y}}.png", "-o", out,
                             "--timeout", "1", "--retries", "20", "--deadline", "2.5"])
    line = one_line(result)
    assert "deadline of 2.5 s" in line and "127.0.0.1" in line
    assert 2.0 < elapsed_s < 8.0  # 21 attempts of 1 s would take 21 s
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_timeout_and_retries_bound_each_request(silent_server, tmp_path):
    result, elapsed_s = run(["fetch", "buildings", *BBOX, "--source", f"file:{silent_server}/b.geojson",
                             "-o", tmp_path / "b.gpkg", "--timeout", "0.5", "--retries", "1"])
    line = one_line(result)
    assert "did not answer within 0.5 s (after 2 attempts" in line
    assert elapsed_s < 8.0  # the defaults (30 s x 4 attempts) would take 2 minutes


def test_a_silent_overpass_api_fails_within_the_timeout(silent_server, tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "overpass_url", f"{silent_server}/api")
    result, elapsed_s = run(["fetch", "buildings", *BBOX, "--source", "osm", "-o", tmp_path / "b.gpkg",
                             "--timeout", "0.5", "--retries", "0"])
    assert "did not answer within 0.5 s" in one_line(result)
    assert elapsed_s < 15.0  # importing osmnx takes a few seconds; the default waits 30 s


def test_a_server_dripping_bytes_is_cut_at_the_deadline(serve, tmp_path):
    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(10_000_000))
        handler.end_headers()
        for _ in range(600):  # one byte every 0.1 s: never idle long enough for --timeout
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.1)

    url = serve(drip)
    result, elapsed_s = run(["fetch", "imagery", *BBOX, "--zoom", "18", "--source",
                             f"xyz:{url}/{{z}}/{{x}}/{{y}}.png", "-o", tmp_path / "img.tif",
                             "--timeout", "1", "--deadline", "2"])
    assert "deadline of 2 s" in one_line(result)
    assert elapsed_s < 10.0  # the server drips for 60 s


def test_an_endless_overpass_answer_is_capped(serve, tmp_path, monkeypatch):
    sent = {"bytes": 0}

    def flood(handler: BaseHTTPRequestHandler) -> None:
        if handler.path.endswith("/status"):
            body = OVERPASS_STATUS.encode()
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        handler.send_response(200)  # no Content-Length: the body ends when the server closes
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(b'{"elements": [')
        chunk = b'{"type": "node", "id": 1, "lat": 30.27, "lon": -97.74},' * 1000
        while sent["bytes"] < 1 << 30:  # up to 1 GiB, unless the client hangs up
            handler.wfile.write(chunk)
            sent["bytes"] += len(chunk)

    url = serve(flood)
    monkeypatch.setattr(settings, "overpass_url", f"{url}/api")
    monkeypatch.setattr(settings, "max_answer_bytes", 2 * 1024 * 1024)
    out = tmp_path / "b.gpkg"
    result, elapsed_s = run(["fetch", "buildings", *BBOX, "--source", "osm", "-o", out])
    line = one_line(result)
    assert "exceeds 2 MiB" in line and "max_answer_bytes" in line
    assert not out.exists()
    assert sent["bytes"] < 64 * 1024 * 1024  # the client hung up long before 1 GiB


def test_a_declared_oversized_tile_is_refused_before_its_body(serve, tmp_path, monkeypatch):
    def huge(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(5 * 2**30))
        handler.end_headers()
        handler.wfile.write(b"\x89PNG" + b"\0" * 65536)

    url = serve(huge)
    result, _ = run(["fetch", "imagery", *BBOX, "--zoom", "18", "--source",
                     f"xyz:{url}/{{z}}/{{x}}/{{y}}.png", "-o", tmp_path / "img.tif"])
    assert "its answer is 5120 MiB" in one_line(result)
    assert not (tmp_path / "img.tif").exists()


HOSTILE_URLS = [
    "http://example.org/../../../../etc/passwd",
    "http://example.org/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "http://example.org/tiles/..%2F..%2F..%2Fetc%2Fpasswd",
    "/etc/passwd",
    "file:///etc/passwd",
    "http://example.org/a.png/../../../../x.sh",
    "http://example.org/x.%2e%2e%2f%2e%2e%2fsh",
    "http://example.org/" + "a/" * 300 + "tile.png",
    "http://example.org/tile\0.png",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_cache_keys_cannot_escape_the_cache_folder(url, tmp_path):
    cache = (tmp_path / "cache").resolve()
    path = http.cache_path(url).resolve()
    assert path.is_relative_to(cache / "http")
    assert len(path.relative_to(cache / "http").parts) == 2  # <2 hex>/<sha256><suffix>
    assert len(path.name) <= 64 + 9


@hsettings(max_examples=200, deadline=None)
@given(url=st.text(min_size=0, max_size=300), suffix=st.one_of(st.none(), st.sampled_from([".json", ".osm"])))
def test_any_url_keys_a_file_inside_the_cache(url, suffix):
    cache = Path(settings.cache_folder).resolve()
    path = http.cache_path(url, suffix).resolve()
    assert path.parent.parent == cache / "http"


def test_a_hostile_tile_url_is_cached_inside_the_cache_folder(serve, tmp_path):
    from geoalign.sources.output import decode_image  # noqa: F401 - the tile must decode

    import numpy as np
    import rasterio
    from rasterio.io import MemoryFile

    with MemoryFile() as mem:
        with mem.open(driver="PNG", width=256, height=256, count=3, dtype="uint8") as dst:
            dst.write(np.full((3, 256, 256), 90, np.uint8))
        png = mem.read()

    def tiles(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(len(png)))
        handler.end_headers()
        handler.wfile.write(png)

    url = serve(tiles)
    out = tmp_path / "out" / "img.tif"
    result, _ = run(["fetch", "imagery", *BBOX, "--zoom", "18", "--source",
                     f"xyz:{url}/../../%2e%2e/{{z}}/{{x}}/{{y}}.png", "-o", out])
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        assert src.read(1).max() == 90
    cache = (tmp_path / "cache").resolve()
    written = {p.resolve() for p in tmp_path.rglob("*") if p.is_file()}
    assert all(p.is_relative_to(cache) or p == out.resolve() for p in written), written


@pytest.mark.parametrize("kind", ["xyz", "wms", "buildings"])
def test_a_failed_fetch_leaves_no_folder_it_created(kind, silent_server, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    out = tmp_path / "new" / "deeper" / ("x.gpkg" if kind == "buildings" else "x.tif")
    source = {"xyz": ["imagery", *BBOX, "--zoom", "18", "--source", f"xyz:{silent_server}/{{z}}/{{x}}/{{y}}.png"],
              "wms": ["imagery", *BBOX, "--resolution", "1", "--source", f"wms:{silent_server}/wms",
                      "--layer", "a"],
              "buildings": ["buildings", *BBOX, "--source", f"file:{silent_server}/b.geojson"]}[kind]
    result, _ = run(["fetch", *source, "-o", out, "--timeout", "0.3", "--retries", "0"])
    one_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "notes.txt"] or \
        sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


BUSY_STATUS = ("Connected as: 1\nCurrent time: 2024-01-01T00:00:00Z\nAnnounced endpoint: none\n"
               "Rate limit: 2\nCurrently running queries (pid, space limit, time limit, start time):\n"
               "123\t536870912\t180\t2024-01-01T00:00:00Z\n")


@pytest.fixture
def busy_overpass(serve, monkeypatch):
    """An Overpass API whose /status always lists running queries and no free slot."""
    asked = {"status": 0, "query": 0}

    def busy(handler: BaseHTTPRequestHandler) -> None:
        key = "status" if handler.path.endswith("/status") else "query"
        asked[key] += 1
        body = BUSY_STATUS.encode() if key == "status" else b'{"elements": []}'
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    monkeypatch.setattr(settings, "overpass_url", f"{serve(busy)}/api")
    monkeypatch.setattr(settings, "overpass_status_poll_s", 0.5)
    return asked


def test_a_busy_overpass_api_fails_within_the_deadline(busy_overpass, tmp_path):
    out = tmp_path / "b.gpkg"
    result, elapsed_s = run(["fetch", "buildings", *BBOX, "--source", "osm", "-o", out, "--deadline", "3"])
    line = one_line(result)
    assert "no free query slot" in line and "every slot is running a query" in line
    assert elapsed_s < 15.0  # importing osmnx takes a few seconds; its own wait never ends
    assert busy_overpass["status"] >= 2 and busy_overpass["query"] == 0 and not out.exists()


def test_a_busy_overpass_api_fails_within_the_slot_wait_without_a_deadline(busy_overpass, tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "overpass_slot_wait_s", 2.0)
    result, elapsed_s = run(["fetch", "buildings", *BBOX, "--source", "osm", "-o", tmp_path / "b.gpkg"])
    assert "within 2 s" in one_line(result)
    assert elapsed_s < 15.0 and busy_overpass["query"] == 0


@pytest.mark.parametrize("status, wait_s", [
    (OVERPASS_STATUS, 0.0),
    (BUSY_STATUS, 0.5),
    ("Connected as: 1\nCurrent time: 2024-01-01T00:00:00Z\nRate limit: 2\n"
     "Slot available after: 2024-01-01T00:00:09Z, in 9 seconds.\n"
     "Slot available after: 2024-01-01T00:00:04Z, in 4 seconds.\nCurrently running queries (pid):\n", 4.0),
    ("<html>a proxy's error page</html>", 0.0),
])
def test_the_overpass_status_gives_the_wait(status, wait_s, monkeypatch):
    from geoalign.sources.osm import overpass_wait_s

    monkeypatch.setattr(settings, "overpass_status_poll_s", 0.5)
    assert overpass_wait_s(status.encode())[0] == wait_s


def test_an_overpass_api_answering_429_fails_at_once(serve, tmp_path, monkeypatch):
    def too_many(handler: BaseHTTPRequestHandler) -> None:
        body, code = (OVERPASS_STATUS.encode(), 200) if handler.path.endswith("/status") else (b"busy", 429)
        handler.send_response(code)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    monkeypatch.setattr(settings, "overpass_url", f"{serve(too_many)}/api")
    result, elapsed_s = run(["fetch", "buildings", *BBOX, "--source", "osm", "-o", tmp_path / "b.gpkg"])
    assert "is busy (429" in one_line(result)
    assert elapsed_s < 15.0  # osmnx would sleep 55 s and ask again, without end
