"""XYZ (slippy-map) tile servers → one GeoTIFF.

A source is an :mod:`xyzservices` provider name (``Esri.WorldImagery``) or a URL template with
``{z}``, ``{x}``, ``{y}`` (also ``{-y}`` for TMS rows, ``{s}`` for a subdomain, ``{r}`` for a
retina suffix, left empty). Tile math is :mod:`mercantile`'s.

How a mosaic is built, and why in two steps:

1. Every tile covering the bbox at the chosen zoom is downloaded (a few in parallel, through the
   retrying, caching :mod:`geoalign.sources.http`) and written as one 256×256 block of a
   temporary GeoTIFF in EPSG:3857 whose blocks *are* the tiles, so each block is written once and
   no more than a few tiles are ever in memory. A tile the server does not have (404/204) is a
   hole: zeros with mask 0.
2. That mosaic is cropped to the bbox block by block (pixel values untouched), or warped when
   another ground resolution or CRS is asked for.

Zoom from a ground resolution: the coarsest zoom whose pixels are at least as fine as asked
(ground size = 2π·6378137·cos(lat) / (256·2^zoom) metres), capped at the provider's max zoom;
the mosaic is then averaged down to exactly the requested resolution.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mercantile
from affine import Affine
import numpy as np
import rasterio
from rasterio.windows import Window

from geoalign.errors import DownloadError
from geoalign.grid import PixelGrid, transform_bbox
from geoalign.progress import progress as progress_bar
from geoalign.sources import SourceError, http, settings
from geoalign.sources.output import (
    WEB_MERCATOR_HALF_M,
    ImageryResult,
    crs_label,
    decode_image,
    output_profile,
    pixel_size_for_resolution,
    snapped_grid,
    web_mercator_pixel_m,
    write_from_dataset,
)
log = logging.getLogger(__name__)

#: Web mercator's latitude limit in degrees: tiles stop there.
MAX_LAT_DEG = 85.05112878
DEFAULT_MAX_ZOOM = 22


@dataclass(frozen=True)
class TileSource:
    """Where tiles come from: a URL template and what the provider says about itself."""

    url_template: str
    name: str
    max_zoom: int = DEFAULT_MAX_ZOOM
    tile_size_px: int = 256

    def url(self, tile: mercantile.Tile) -> str:
        """The URL of one tile (``{s}`` → first subdomain ``a``, ``{r}`` → '')."""
        return (self.url_template.replace("{z}", str(tile.z)).replace("{x}", str(tile.x))
                .replace("{-y}", str(2**tile.z - 1 - tile.y)).replace("{y}", str(tile.y))
                .replace("{s}", "a").replace("{r}", ""))


def tile_source(spec: str) -> TileSource:
    """A URL template (has ``{z}``) or an xyzservices provider name → :class:`TileSource`."""
    if "{z}" in spec:
        if "{x}" not in spec or ("{y}" not in spec and "{-y}" not in spec):
            raise SourceError(f"xyz:{spec}: a tile URL template needs {{z}}, {{x}} and {{y}}.")
        return TileSource(url_template=spec, name=spec)
    import xyzservices.providers as providers

    try:
        provider = providers.query_name(spec)
    except ValueError:
        raise SourceError(
            f"xyz:{spec}: no such xyzservices provider; give a name such as "
            "'Esri.WorldImagery' or a URL template like https://host/{z}/{x}/{y}.png."
        ) from None
    if provider.requires_token():
        raise SourceError(
            f"xyz:{spec}: this provider needs an API key; put it in the URL template instead, "
            f"e.g. xyz:{provider.build_url(x='{x}', y='{y}', z='{z}', fill_subdomain=False)}"
        )
    template = provider.build_url(x="{x}", y="{y}", z="{z}", fill_subdomain=False)
    subdomains = provider.get("subdomains")
    if subdomains and "{s}" in template:
        template = template.replace("{s}", str(subdomains)[0])
    return TileSource(url_template=template, name=provider.name,
                      max_zoom=int(provider.get("max_zoom", DEFAULT_MAX_ZOOM)),
                      tile_size_px=int(provider.get("tileSize", 256)))


def ground_resolution_m(zoom: int, lat_deg: float, tile_size_px: int = 256) -> float:
    """Ground size in metres of one pixel at ``zoom`` and latitude ``lat_deg``."""
    return web_mercator_pixel_m(zoom, tile_size_px) * math.cos(math.radians(lat_deg))


def zoom_for_resolution(resolution_m: float, lat_deg: float, *, max_zoom: int = DEFAULT_MAX_ZOOM,
                        tile_size_px: int = 256) -> int:
    """The coarsest zoom whose pixels are at most ``resolution_m`` on the ground (≤ max_zoom)."""
    if resolution_m <= 0:
        raise SourceError(f"--resolution must be positive (got {resolution_m} m).")
    ratio = ground_resolution_m(0, lat_deg, tile_size_px) / resolution_m
    zoom = math.ceil(math.log2(ratio) - 1e-9) if ratio > 1 else 0
    return int(min(max(zoom, 0), max_zoom))


def fetch_xyz(
    source: TileSource | str,
    bbox: tuple[float, float, float, float],
    out_path: str | Path,
    *,
    bbox_crs="EPSG:4326",
    zoom: int | None = None,
    resolution_m: float | None = None,
    dst_crs=None,
    progress: bool = False,
) -> ImageryResult:
    """Download the tiles covering ``bbox`` and write them as one GeoTIFF.

    Give ``zoom`` (tiles' own resolution, EPSG:3857 unless ``dst_crs``) or ``resolution_m``
    (ground metres per pixel: zoom picked, mosaic averaged to it).
    """
    src = tile_source(source) if isinstance(source, str) else source
    out_path = Path(out_path)
    w, s, e, n = transform_bbox(bbox, bbox_crs, "EPSG:4326")
    s, n = max(s, -MAX_LAT_DEG), min(n, MAX_LAT_DEG)
    if not (w < e and s < n):
        raise SourceError(f"the bbox {bbox} is empty (west ≥ east or south ≥ north).")
    lat_deg = (s + n) / 2.0
    if zoom is None and resolution_m is None:
        raise SourceError("an xyz: source needs --zoom or --resolution.")
    if zoom is None:
        zoom = zoom_for_resolution(resolution_m, lat_deg, max_zoom=src.max_zoom,
                                   tile_size_px=src.tile_size_px)
    if not 0 <= zoom <= 30:
        raise SourceError(f"--zoom must be between 0 and 30 (got {zoom}).")
    if zoom > src.max_zoom:
        log.warning("%s: zoom %d is past the provider's max zoom %d; tiles may be missing.",
                    src.name, zoom, src.max_zoom)

    tile_px = src.tile_size_px
    px_m = web_mercator_pixel_m(zoom, tile_px)
    bbox_3857 = transform_bbox((w, s, e, n), "EPSG:4326", "EPSG:3857")
    native = snapped_grid(bbox_3857, "EPSG:3857", (px_m, px_m),
                          origin=(-WEB_MERCATOR_HALF_M, WEB_MERCATOR_HALF_M))
    col0 = int(round((native.transform.c + WEB_MERCATOR_HALF_M) / px_m))
    row0 = int(round((WEB_MERCATOR_HALF_M - native.transform.f) / px_m))
    tx0, ty0 = col0 // tile_px, row0 // tile_px
    tx1, ty1 = (col0 + native.width - 1) // tile_px, (row0 + native.height - 1) // tile_px
    n_tiles = (tx1 - tx0 + 1) * (ty1 - ty0 + 1)
    if n_tiles > settings.max_tiles:
        raise SourceError(
            f"the bbox needs {n_tiles} tiles at zoom {zoom} (limit {settings.max_tiles}); "
            "use a smaller bbox or zoom, or raise geoalign.sources.settings.max_tiles."
        )
    tiles = [mercantile.Tile(x, y, zoom) for y in range(ty0, ty1 + 1) for x in range(tx0, tx1 + 1)]

    result = ImageryResult(path=out_path, source=f"xyz:{src.name}", crs="", width=0, height=0,
                           resolution_m=0.0, zoom=zoom, n_requests=n_tiles)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # The tile mosaic is staged in geoalign's cache folder, never beside the user's files: a killed
    # fetch leaves nothing in the output folder (the cache drops stale mosaics after a day).
    scratch = Path(settings.cache_folder) / "mosaics"
    scratch.mkdir(parents=True, exist_ok=True)
    for stale in scratch.glob(".geoalign-tiles-*"):
        if time.time() - stale.stat().st_mtime > 86400:
            shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=".geoalign-tiles-", dir=scratch) as tmp_dir:
        mosaic_path = Path(tmp_dir) / "mosaic.tif"
        mosaic_grid = PixelGrid(
            Affine(px_m, 0.0, tx0 * tile_px * px_m - WEB_MERCATOR_HALF_M,
                   0.0, -px_m, WEB_MERCATOR_HALF_M - ty0 * tile_px * px_m),
            (tx1 - tx0 + 1) * tile_px, (ty1 - ty0 + 1) * tile_px, native.crs,
        )
        _download_mosaic(src, tiles, (tx0, ty0), mosaic_grid, mosaic_path, result, progress)

        if dst_crs is None and resolution_m is None:
            grid = native
        else:
            crs = dst_crs or "EPSG:3857"
            bounds = transform_bbox(bbox, bbox_crs, crs)  # straight from the user's box
            size = pixel_size_for_resolution(
                crs, resolution_m if resolution_m is not None else ground_resolution_m(zoom, lat_deg, tile_px),
                lat_deg)
            grid = snapped_grid(bounds, crs, size)
        with rasterio.open(mosaic_path) as mosaic:
            write_from_dataset(mosaic, grid, out_path, progress=progress, desc="writing")

    result.crs = crs_label(grid.crs)
    result.width, result.height = grid.width, grid.height
    result.resolution_m = (resolution_m if resolution_m is not None
                           else ground_resolution_m(zoom, lat_deg, tile_px))
    return result


def _download_mosaic(src: TileSource, tiles: list[mercantile.Tile], origin_tile: tuple[int, int],
                     grid: PixelGrid, path: Path, result: ImageryResult, progress: bool) -> None:
    """Fetch ``tiles`` and write each as its own block of a tile-aligned GeoTIFF at ``path``."""
    tile_px = src.tile_size_px

    def check(body: bytes) -> None:
        try:
            rgb, _ = decode_image(body)
        except ValueError as err:  # e.g. an HTML error page served with status 200
            raise http.ContentError(f"a tile is not an image ({err})") from None
        if rgb.shape[1:] != (tile_px, tile_px):
            raise http.ContentError(
                f"tiles are {rgb.shape[2]}×{rgb.shape[1]} px, expected {tile_px}×{tile_px}")

    def fetch(tile: mercantile.Tile) -> tuple[mercantile.Tile, http.Fetched]:
        return tile, http.get(src.url(tile), missing_ok=True, check=check)

    profile = output_profile(grid)
    profile.update(tiled=True, blockxsize=tile_px, blockysize=tile_px, zlevel=1)
    bar = progress_bar(total=len(tiles), desc="tiles", unit="tile", enabled=progress)
    try:
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
            for tile, fetched in http.map_parallel(fetch, tiles):
                window = Window((tile.x - origin_tile[0]) * tile_px,
                                (tile.y - origin_tile[1]) * tile_px, tile_px, tile_px)
                if fetched.content is None:
                    result.n_missing += 1
                    rgb = np.zeros((3, tile_px, tile_px), dtype=np.uint8)
                    mask = np.zeros((tile_px, tile_px), dtype=np.uint8)
                else:
                    result.n_cached += int(fetched.from_cache)
                    rgb, mask = decode_image(fetched.content)
                    rgb = np.where(mask[None] > 0, rgb, 0).astype(np.uint8)
                dst.write(rgb, window=window)
                dst.write_mask(mask, window=window)
                bar.update()
    finally:
        bar.close()
    if result.n_missing == len(tiles):
        raise DownloadError(
            f"{src.name}: the server has none of the {len(tiles)} tiles at zoom "
            f"{tiles[0].z} for this bbox (all answered 'not found'); check --bbox and --zoom."
        )
