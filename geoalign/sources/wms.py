"""WMS servers → one GeoTIFF, through plain GetMap requests in chunks.

The output grid is chosen here (CRS, bbox snapped to whole pixels, pixel size from the ground
resolution or a web-mercator zoom), then cut into chunks of at most
``settings.wms_max_size_px`` pixels a side, each one GetMap request (servers cap WIDTH/HEIGHT,
typically at 2048 or 4096). Chunks are multiples of 256 px, so each lands on whole blocks of the
output. Transparent pixels of a PNG answer become mask 0.

WMS 1.3.0 orders BBOX by the CRS's axes: latitude first for EPSG:4326, so the box is swapped for
CRSs whose first axis points north. Without ``layer``, the server's capabilities are read with
:mod:`owslib` to tell the user which layers exist.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import rasterio
from pyproj import CRS
from rasterio.windows import Window, bounds as window_bounds

from geoalign.errors import DownloadError
from geoalign.grid import transform_bbox
from geoalign.io.atomic import atomic_path
from geoalign.progress import progress as progress_bar
from geoalign.sources import SourceError, http, settings
from geoalign.sources.output import (
    BLOCK_PX,
    ImageryResult,
    crs_label,
    decode_image,
    output_profile,
    pixel_size_for_resolution,
    snapped_grid,
    web_mercator_pixel_m,
)
from geoalign.sources.xyz import ground_resolution_m

log = logging.getLogger(__name__)

WMS_VERSION = "1.3.0"


def list_layers(base_url: str) -> list[str]:
    """Names of the layers a WMS server offers (its GetCapabilities, read by owslib)."""
    from owslib.wms import WebMapService

    try:
        wms = WebMapService(base_url, version=WMS_VERSION, timeout=settings.timeout_s,
                            headers={"User-Agent": settings.user_agent})
    except Exception as err:  # owslib raises requests, XML and its own errors alike
        raise DownloadError(f"{base_url}: could not read the WMS capabilities ({err}).") from None
    return [name for name in wms.contents if name]


def fetch_wms(
    base_url: str,
    bbox: tuple[float, float, float, float],
    out_path: str | Path,
    *,
    layer: str | None,
    bbox_crs="EPSG:4326",
    resolution_m: float | None = None,
    zoom: int | None = None,
    dst_crs="EPSG:3857",
    image_format: str = "image/png",
    style: str = "",
    progress: bool = False,
) -> ImageryResult:
    """GetMap the ``bbox`` of ``layer`` at ``resolution_m`` ground metres (or a web-mercator
    ``zoom``'s resolution) into a GeoTIFF in ``dst_crs``."""
    out_path = Path(out_path)
    if not layer:
        try:
            offered = ", ".join(list_layers(base_url)[:20]) or "none listed"
        except DownloadError:
            offered = "the capabilities could not be read"
        raise SourceError(f"wms:{base_url} needs --layer (layers offered: {offered}).")
    if resolution_m is None and zoom is None:
        raise SourceError("a wms: source needs --resolution (metres per pixel) or --zoom.")
    dst_crs = CRS.from_user_input(dst_crs or "EPSG:3857")
    lon_w, lat_s, lon_e, lat_n = transform_bbox(bbox, bbox_crs, "EPSG:4326")
    lat_deg = (lat_s + lat_n) / 2.0
    if resolution_m is not None and resolution_m <= 0:
        raise SourceError(f"--resolution must be positive (got {resolution_m} m).")
    if resolution_m is None and dst_crs.to_epsg() == 3857:
        size = (web_mercator_pixel_m(zoom),) * 2  # exactly the tiles' pixel grid
    else:
        ground_m = resolution_m if resolution_m is not None else ground_resolution_m(zoom, lat_deg)
        size = pixel_size_for_resolution(dst_crs, ground_m, lat_deg)
    grid = snapped_grid(transform_bbox(bbox, bbox_crs, dst_crs), dst_crs, size)
    chunk_px = max(BLOCK_PX, int(settings.wms_max_size_px) // BLOCK_PX * BLOCK_PX)
    chunks = [Window(c, r, min(chunk_px, grid.width - c), min(chunk_px, grid.height - r))
              for r in range(0, grid.height, chunk_px) for c in range(0, grid.width, chunk_px)]
    swap_axes = _first_axis_is_north(dst_crs)
    crs_param = crs_label(dst_crs) if dst_crs.to_epsg() else dst_crs.to_string()

    def request(window: Window) -> tuple[Window, http.Fetched]:
        w, s, e, n = window_bounds(window, grid.transform)
        box = (s, w, n, e) if swap_axes else (w, s, e, n)
        params = {
            "SERVICE": "WMS", "VERSION": WMS_VERSION, "REQUEST": "GetMap", "LAYERS": layer,
            "STYLES": style, "CRS": crs_param, "BBOX": ",".join(repr(float(v)) for v in box),
            "WIDTH": int(window.width), "HEIGHT": int(window.height), "FORMAT": image_format,
            "TRANSPARENT": "TRUE",
        }

        def check(body: bytes) -> None:
            _check_image(body, (int(window.height), int(window.width)))

        return window, http.get(base_url, params, check=check)

    result = ImageryResult(path=out_path, source=f"wms:{base_url} layer {layer}",
                           crs=crs_label(dst_crs), width=grid.width, height=grid.height,
                           resolution_m=resolution_m if resolution_m is not None
                           else ground_resolution_m(zoom, lat_deg),
                           zoom=zoom if resolution_m is None else None, n_requests=len(chunks))
    bar = progress_bar(total=len(chunks), desc="GetMap", unit="chunk", enabled=progress)
    try:
        with atomic_path(out_path) as tmp, rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
            with rasterio.open(tmp, "w", **output_profile(grid)) as dst:
                for window, fetched in http.map_parallel(request, chunks):
                    result.n_cached += int(fetched.from_cache)
                    rgb, mask = decode_image(fetched.content)
                    dst.write(np.where(mask[None] > 0, rgb, 0).astype(np.uint8), window=window)
                    dst.write_mask(mask, window=window)
                    bar.update()
    finally:
        bar.close()
    return result


def _check_image(body: bytes, shape_hw: tuple[int, int]) -> None:
    """Refuse WMS exception reports (XML served with status 200) and images of the wrong size."""
    head = body[:512].lstrip()
    if head.startswith(b"<"):
        text = body.decode("utf-8", "replace")
        match = re.search(r"<(?:\w+:)?ServiceException(?:\s[^>]*)?>(.*?)</", text, re.S)
        message = (match.group(1) if match else text[:200]).strip().replace("\n", " ")
        raise http.ContentError(f"the WMS server refused the request: {message}")
    try:
        rgb, _ = decode_image(body)
    except ValueError as err:
        raise http.ContentError(f"GetMap answered something that is not an image ({err})") from None
    if rgb.shape[1:] != shape_hw:
        raise http.ContentError(
            f"GetMap answered a {rgb.shape[2]}×{rgb.shape[1]} image for a "
            f"{shape_hw[1]}×{shape_hw[0]} request; lower geoalign.sources.settings.wms_max_size_px."
        )


def _first_axis_is_north(crs: CRS) -> bool:
    axes = crs.axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")
