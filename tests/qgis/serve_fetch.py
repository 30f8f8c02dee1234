"""The fetch tests' servers (tests/fetch/fetch_servers.py) in a process of the project's .venv.

QGIS's Python lacks rasterio and mercantile, so the QGIS tests start this script with the
.venv's interpreter: it serves the Kampala raster as XYZ tiles and the Austin buildings as a
cadaster file on 127.0.0.1, prints ``{"tiles": URL, "files": URL}`` on one line, and serves until
its stdin closes.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fetch"))

from fetch_servers import AUSTIN_BUILDINGS, KAMPALA_TIF, _Handler, file_app, tile_app  # noqa: E402


def start(app) -> str:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.app = app  # type: ignore[attr-defined]
    httpd.hits = Counter()  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_port}"


if __name__ == "__main__":
    urls = {"tiles": start(tile_app(KAMPALA_TIF)),
            "files": start(file_app({"/cadastre/buildings.geojson": AUSTIN_BUILDINGS}))}
    print(json.dumps(urls), flush=True)
    sys.stdin.read()
