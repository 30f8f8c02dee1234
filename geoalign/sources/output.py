"""Writing fetched imagery: the output grid, decoded images, and window-by-window copies.

Every imagery source ends here, so all outputs look alike: a tiled, deflate-compressed GeoTIFF
(:func:`geoalign.io.raster.geotiff_profile`) with a CRS, a transform and an internal mask band
(0 where nothing was fetched: missing tiles, areas outside a local raster, transparent WMS
pixels), written through :func:`geoalign.io.atomic.atomic_path` so a failed fetch leaves no file.
Rasters are read and written one 256×256 block at a time, so the size of the area never matters.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS, Geod
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.io import MemoryFile
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from geoalign.errors import EmptyInputError
from geoalign.grid import PixelGrid
from geoalign.io.atomic import atomic_path
from geoalign.io.raster import block_windows, geotiff_profile
from geoalign.progress import progress as progress_bar

#: Size of the square blocks the outputs are written (and copied) in, in pixels.
BLOCK_PX = 256
#: Half the circumference of the web-mercator world in EPSG:3857 metres.
WEB_MERCATOR_HALF_M = 20037508.342789244
EARTH_RADIUS_M = 6378137.0


@dataclass
class ImageryResult:
    """What a fetch wrote, for the summary line (and for tests)."""

    path: Path
    source: str
    crs: str
    width: int
    height: int
    resolution_m: float
    zoom: int | None = None
    n_requests: int = 0
    n_cached: int = 0
    n_missing: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"wrote {self.path}: {self.width}×{self.height} px, {self.crs}, "
                 f"{self.resolution_m:.3g} m/px"]
        if self.zoom is not None:
            parts.append(f"zoom {self.zoom}")
        if self.n_requests:
            parts.append(f"{self.n_requests} requests ({self.n_cached} from cache, "
                         f"{self.n_missing} missing → masked)")
        return ", ".join(parts + self.notes) + f" [{self.source}]"


# --- grids ------------------------------------------------------------------------------------
def web_mercator_pixel_m(zoom: int, tile_size_px: int = 256) -> float:
    """Pixel size at ``zoom`` in EPSG:3857 metres (true ground size is this × cos(latitude))."""
    return 2.0 * WEB_MERCATOR_HALF_M / (tile_size_px * 2**zoom)


def pixel_size_for_resolution(crs, resolution_m: float, lat_deg: float) -> tuple[float, float]:
    """(x, y) pixel size in ``crs`` units for a ground resolution in metres at ``lat_deg``.

    Web mercator stretches distances by 1/cos(latitude); geographic CRSs measure degrees, whose
    length in metres is taken from the WGS84 ellipsoid at ``lat_deg``.
    """
    crs = CRS.from_user_input(crs)
    if crs.is_geographic:
        geod = Geod(ellps="WGS84")
        _, _, m_per_deg_x = geod.inv(0.0, lat_deg, 1.0, lat_deg)
        lat0 = max(-89.0, min(88.0, lat_deg))
        _, _, m_per_deg_y = geod.inv(0.0, lat0, 0.0, lat0 + 1.0)
        return resolution_m / m_per_deg_x, resolution_m / m_per_deg_y
    if crs.to_epsg() == 3857:
        size = resolution_m / math.cos(math.radians(lat_deg))
        return size, size
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return resolution_m / factor, resolution_m / factor


def snapped_grid(
    bounds: tuple[float, float, float, float], crs, pixel_size: tuple[float, float],
    *, origin: tuple[float, float] = (0.0, 0.0),
) -> PixelGrid:
    """The grid of ``pixel_size`` covering ``bounds``, its corners on multiples of the pixel size
    counted from ``origin`` (so fetches of neighbouring areas line up pixel for pixel)."""
    px, py = pixel_size
    w, s, e, n = bounds
    eps = 1e-6  # pixels: tolerate float noise when a bound is already on the grid
    col0 = math.floor((w - origin[0]) / px + eps)
    col1 = math.ceil((e - origin[0]) / px - eps)
    row0 = math.floor((origin[1] - n) / py + eps)
    row1 = math.ceil((origin[1] - s) / py - eps)
    width, height = max(1, col1 - col0), max(1, row1 - row0)
    transform = Affine(px, 0.0, origin[0] + col0 * px, 0.0, -py, origin[1] - row0 * py)
    return PixelGrid(transform, width, height, CRS.from_user_input(crs))


def output_profile(grid: PixelGrid, *, count: int = 3, dtype: str = "uint8", nodata=None) -> dict:
    """The GeoTIFF profile of a fetched image (RGB photometric for 3-band 8-bit)."""
    profile = geotiff_profile(width=grid.width, height=grid.height, count=count, dtype=dtype,
                              crs=grid.crs.to_wkt(), transform=grid.transform, nodata=nodata)
    if count == 3 and dtype == "uint8":
        profile["photometric"] = "RGB"
    return profile


def crs_label(crs) -> str:
    crs = CRS.from_user_input(crs)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


# --- decoding ---------------------------------------------------------------------------------
def decode_image(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """PNG/JPEG/WebP/GeoTIFF bytes → (RGB uint8 (3, h, w), mask uint8 (h, w), 255 = valid).

    Paletted images are expanded through their colour table; grey is replicated; an alpha band
    (or a grey+alpha pair) becomes the mask. Raises ``ValueError`` when the bytes are no image.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            with MemoryFile(data) as mem, mem.open() as src:
                arr = src.read()
                interp = list(src.colorinterp)
                colormap = src.colormap(1) if interp[0] == ColorInterp.palette else None
        except (RasterioIOError, ValueError) as err:
            raise ValueError(f"not an image ({str(err).splitlines()[0] if str(err) else err})") from None
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    h, w = arr.shape[1:]
    mask = np.full((h, w), 255, dtype=np.uint8)
    if colormap is not None:
        lut = np.zeros((256, 4), dtype=np.uint8)
        for value, rgba in colormap.items():
            if 0 <= value < 256:
                lut[value] = rgba
        rgba = lut[arr[0]]  # (h, w, 4)
        return np.ascontiguousarray(rgba[..., :3].transpose(2, 0, 1)), np.where(rgba[..., 3] > 0, 255, 0).astype(np.uint8)
    alpha_index = interp.index(ColorInterp.alpha) if ColorInterp.alpha in interp else None
    if alpha_index is None and arr.shape[0] in (2, 4):
        alpha_index = arr.shape[0] - 1
    if alpha_index is not None:
        mask = np.where(arr[alpha_index] > 0, 255, 0).astype(np.uint8)
        arr = np.delete(arr, alpha_index, axis=0)
    if arr.shape[0] == 1:
        arr = np.repeat(arr, 3, axis=0)
    return np.ascontiguousarray(arr[:3]), mask


# --- copying ----------------------------------------------------------------------------------
def write_from_dataset(
    src: rasterio.DatasetReader, grid: PixelGrid, out_path: Path, *,
    resampling: Resampling | None = None, progress: bool = False, desc: str = "writing",
) -> None:
    """Write ``src`` onto ``grid`` block by block: a plain copy when the grid is a crop of the
    source's pixel grid (values untouched), a warp otherwise (average when shrinking).

    Keeps the source's bands and data type; validity goes to an internal mask band (or stays
    the nodata value when the source has one).
    """
    same_crs = CRS.from_user_input(src.crs) == grid.crs
    offset = ~src.transform @ (grid.transform.c, grid.transform.f)
    aligned = (
        same_crs
        and np.allclose([grid.transform.a, grid.transform.e], [src.transform.a, src.transform.e],
                        rtol=1e-9)
        and grid.transform.b == 0 and grid.transform.d == 0
        and all(abs(v - round(v)) < 1e-6 for v in offset)
    )
    if resampling is None:
        shrink = abs(grid.transform.a) > abs(src.transform.a) * 1.0001 if same_crs else True
        resampling = Resampling.average if shrink else Resampling.bilinear
    profile = output_profile(grid, count=src.count, dtype=src.dtypes[0], nodata=src.nodata)
    bar = progress_bar(total=math.ceil(grid.width / BLOCK_PX) * math.ceil(grid.height / BLOCK_PX),
                       desc=desc, unit="block", enabled=progress)
    with atomic_path(out_path) as tmp, rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(tmp, "w", **profile) as dst:
            if aligned:
                col0, row0 = (int(round(v)) for v in offset)
                for window in block_windows(grid.width, grid.height, BLOCK_PX):
                    src_window = Window(col0 + window.col_off, row0 + window.row_off,
                                        window.width, window.height)
                    # boundless reads build a VRT each time: only when the block sticks out
                    outside = (src_window.col_off < 0 or src_window.row_off < 0
                               or src_window.col_off + src_window.width > src.width
                               or src_window.row_off + src_window.height > src.height)
                    data = src.read(window=src_window, boundless=outside,
                                    fill_value=src.nodata or 0)
                    mask = src.dataset_mask(window=src_window, boundless=outside)
                    _write_block(dst, window, data, mask, src.nodata)
                    bar.update()
            else:
                with WarpedVRT(src, crs=grid.crs.to_wkt(), transform=grid.transform,
                               width=grid.width, height=grid.height, resampling=resampling,
                               add_alpha=src.nodata is None) as vrt:
                    indexes = list(range(1, src.count + 1))
                    for window in block_windows(grid.width, grid.height, BLOCK_PX):
                        data = vrt.read(indexes, window=window)
                        mask = vrt.dataset_mask(window=window)
                        _write_block(dst, window, data, mask, src.nodata)
                        bar.update()
            if src.count >= 3:
                _copy_colorinterp(src, dst)
    bar.close()


def _write_block(dst, window: Window, data: np.ndarray, mask: np.ndarray, nodata) -> None:
    if nodata is None:
        data = np.where(mask[None] > 0, data, 0).astype(data.dtype, copy=False)
        dst.write(data, window=window)
        dst.write_mask(mask, window=window)
    else:
        dst.write(data, window=window)


def _copy_colorinterp(src, dst) -> None:
    interp = [c for c in src.colorinterp[: dst.count]]
    if ColorInterp.alpha in interp or len(interp) != dst.count:
        return
    try:
        dst.colorinterp = interp
    except Exception:  # some drivers refuse a combination; the default is fine then
        pass


def require_overlap(bounds_a, bounds_b, *, what: str, crs) -> tuple[float, float, float, float]:
    """The intersection of two (W, S, E, N) boxes; a clear error when they do not meet."""
    w, s = max(bounds_a[0], bounds_b[0]), max(bounds_a[1], bounds_b[1])
    e, n = min(bounds_a[2], bounds_b[2]), min(bounds_a[3], bounds_b[3])
    if w >= e or s >= n:
        raise EmptyInputError(
            f"the bbox {tuple(round(v, 3) for v in bounds_a)} lies outside {what} "
            f"{tuple(round(v, 3) for v in bounds_b)} (both in {crs_label(crs)}); check --bbox and "
            "--bbox-crs."
        )
    return w, s, e, n
