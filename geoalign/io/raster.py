"""Reading imagery window by window, with one documented normalization for every input type.

Normalization (so that 8-bit RGB, 16-bit pan, float64 multispectral all feed the network alike):

* **Bands** → 3 channels. 1 band: replicated (grey). 2 bands: the first, replicated (the second is
  usually alpha). 3 bands: as they are. 4 or more: the bands whose colour interpretation is
  red/green/blue when the file says so, else the first three.
* **Values** → float32 in [0, 1]. ``uint8``: divided by 255. Any other type (uint16, float, ...):
  a per-band linear stretch between the 2nd and 98th percentiles of the valid pixels, measured
  once on a decimated overview of the whole raster, so every window of a big raster gets the same
  scaling and the full raster is never read at once.
* **Validity**: GDAL's mask (nodata value, internal mask band or alpha) marks pixels to ignore;
  pixels outside the raster (boundless windows) are invalid too. Invalid pixels read as 0.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from geoalign.errors import CRSError, InputFileError, first_line

log = logging.getLogger(__name__)

#: Longest side of the overview read to measure percentiles for non-8-bit imagery.
STATS_OVERVIEW_PX = 1024
STRETCH_PERCENTILES = (2.0, 98.0)


@dataclass(frozen=True)
class BandScaling:
    """Per-band affine map of raw values to [0, 1]: ``(raw - low) / (high - low)``, clipped."""

    low: tuple[float, ...]
    high: tuple[float, ...]


def _rgb_band_indexes(src: rasterio.DatasetReader) -> list[int]:
    """1-based band indexes feeding the 3 output channels (see module docstring)."""
    n = src.count
    if n == 1:
        return [1, 1, 1]
    if n == 2:
        return [1, 1, 1]
    if n == 3:
        return [1, 2, 3]
    interp = list(src.colorinterp)
    wanted = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    if all(w in interp for w in wanted):
        return [interp.index(w) + 1 for w in wanted]
    return [1, 2, 3]


def _measure_scaling(src: rasterio.DatasetReader, bands: list[int]) -> BandScaling:
    if src.dtypes[0] == "uint8":
        return BandScaling(low=(0.0,) * 3, high=(255.0,) * 3)
    factor = max(1, int(np.ceil(max(src.width, src.height) / STATS_OVERVIEW_PX)))
    shape = (max(1, src.height // factor), max(1, src.width // factor))
    unique = sorted(set(bands))
    data = src.read(unique, out_shape=(len(unique), *shape), resampling=Resampling.nearest)
    valid = src.dataset_mask(out_shape=shape, resampling=Resampling.nearest) > 0
    low, high = [], []
    for b in bands:
        values = data[unique.index(b)][valid & np.isfinite(data[unique.index(b)])]
        if values.size == 0:
            lo, hi = 0.0, 1.0
        else:
            lo, hi = (float(v) for v in np.percentile(values, STRETCH_PERCENTILES))
            if hi <= lo:
                hi = lo + 1.0
        low.append(lo)
        high.append(hi)
    return BandScaling(low=tuple(low), high=tuple(high))


class RasterReader:
    """An open raster that yields normalized windows: ``(image float32 (3,h,w), valid bool (h,w))``.

    Keeps the dataset open; use as a context manager. Nothing is read until asked, so rasters of
    any size are fine.
    """

    def __init__(self, path: str | Path, *, require_crs: bool = True) -> None:
        self.path = Path(path)
        self._src = open_dataset(self.path)
        try:
            if require_crs and self._src.crs is None:
                raise CRSError(
                    f"{self.path}: the raster has no CRS (coordinate reference system); "
                    "georeference it first, e.g. `gdal_edit.py -a_srs EPSG:xxxx`."
                )
            self.bands = _rgb_band_indexes(self._src)
            self.scaling = _measure_scaling(self._src, self.bands)
        except BaseException:
            self._src.close()
            raise

    # --- georeferencing -------------------------------------------------------------------
    @property
    def crs(self) -> CRS:
        return self._src.crs

    @property
    def transform(self):
        return self._src.transform

    @property
    def width(self) -> int:
        return self._src.width

    @property
    def height(self) -> int:
        return self._src.height

    @property
    def bounds(self):
        return self._src.bounds

    @property
    def gsd_m(self) -> float:
        """Ground sampling distance in metres (mean of x and y pixel sizes)."""
        from geoalign.grid import pixel_size_m

        return pixel_size_m(self._src.crs, self._src.transform, self._src.bounds)

    @property
    def dataset(self) -> rasterio.DatasetReader:
        return self._src

    # --- reading --------------------------------------------------------------------------
    def read(
        self, window: Window | None = None, out_shape: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Read a (possibly boundless, possibly resampled) window, normalized to [0, 1]."""
        if window is None:
            window = Window(0, 0, self.width, self.height)
        if out_shape is None:
            out_shape = (int(round(window.height)), int(round(window.width)))
        unique = sorted(set(self.bands))
        resampling = Resampling.average if out_shape[0] < window.height else Resampling.bilinear
        # Boundless reads go through a VRT and cost several times more: only when needed.
        boundless = (window.col_off < 0 or window.row_off < 0
                     or window.col_off + window.width > self.width
                     or window.row_off + window.height > self.height)
        raw = self._src.read(
            unique, window=window, out_shape=(len(unique), *out_shape), boundless=boundless,
            fill_value=0, resampling=resampling, masked=False,
        ).astype(np.float32)
        mask = self._src.dataset_mask(
            window=window, out_shape=out_shape, boundless=boundless, resampling=Resampling.nearest
        )
        valid = mask > 0
        image = np.empty((3, *out_shape), dtype=np.float32)
        for c, b in enumerate(self.bands):
            lo, hi = self.scaling.low[c], self.scaling.high[c]
            band = raw[unique.index(b)]
            image[c] = np.clip((band - lo) / (hi - lo), 0.0, 1.0)
        image[:, ~valid] = 0.0
        image[~np.isfinite(image)] = 0.0
        return image, valid

    def close(self) -> None:
        self._src.close()

    def __enter__(self) -> "RasterReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_dataset(path: str | Path) -> rasterio.DatasetReader:
    """Open a raster with a clear error for missing or corrupt files."""
    path = Path(path)
    if not str(path).startswith(("/vsi", "http://", "https://")) and not path.exists():
        raise InputFileError(f"{path}: no such raster file.")
    try:
        src = rasterio.open(path)
    except RasterioIOError as err:
        raise InputFileError(f"{path}: not a readable raster ({first_line(err)}).") from None
    try:
        # A truncated GeoTIFF opens fine and fails on the first block read: probe one block.
        src.read(1, window=Window(0, 0, min(src.width, 16), min(src.height, 16)))
        src.read(1, window=Window(max(0, src.width - 16), max(0, src.height - 16),
                                  min(src.width, 16), min(src.height, 16)))
    except RasterioIOError as err:
        src.close()
        raise InputFileError(f"{path}: the raster is corrupt or truncated ({first_line(err)}).") from None
    return src


@contextlib.contextmanager
def open_raster(path: str | Path, *, require_crs: bool = True) -> Iterator[RasterReader]:
    """``with open_raster(p) as r: image, valid = r.read(window)``."""
    reader = RasterReader(path, require_crs=require_crs)
    try:
        yield reader
    finally:
        reader.close()


def block_windows(width: int, height: int, block_px: int) -> Iterator[Window]:
    """Row-major windows of ``block_px`` square (smaller at the right and bottom edges) covering a
    ``width`` × ``height`` raster: how rasters of any size are read and written."""
    for row in range(0, height, block_px):
        for col in range(0, width, block_px):
            yield Window(col, row, min(block_px, width - col), min(block_px, height - row))


def geotiff_profile(
    *, width: int, height: int, count: int, dtype: str, crs, transform, nodata=None
) -> dict:
    """A tiled, compressed GeoTIFF profile: what every GeoTIFF geoalign writes uses."""
    tiled = width >= 256 and height >= 256
    profile = dict(
        driver="GTiff", width=width, height=height, count=count, dtype=dtype, crs=crs,
        transform=transform, compress="deflate", predictor=3 if dtype.startswith("float") else 2,
        BIGTIFF="IF_SAFER",
    )
    if tiled:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if nodata is not None:
        profile["nodata"] = nodata
    return profile


def displacement_px_to_crs(field_px: np.ndarray, transform) -> np.ndarray:
    """A (2, H, W) field in pixels (columns, rows) → the same moves in CRS units (x east, y
    north for a north-up raster), as every displacement GeoTIFF geoalign writes holds them."""
    out = np.empty(field_px.shape, dtype=np.float64)
    out[0] = transform.a * field_px[0] + transform.b * field_px[1]
    out[1] = transform.d * field_px[0] + transform.e * field_px[1]
    return out


def describe_displacement_bands(dst, crs) -> None:
    """Band names and units of a displacement GeoTIFF, so GIS tools show what the numbers are."""
    unit = (crs.linear_units or "CRS units") if crs is not None else "CRS units"
    for band, axis in ((1, "dx, east"), (2, "dy, north")):
        dst.set_band_description(band, f"{axis} ({unit})")
        dst.update_tags(band, units=unit)
