"""``file:`` imagery: exact crops, reprojection, and the bad inputs (bbox outside, missing file,
no CRS) that must fail with a clear error and no output."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from fetch_servers import AUSTIN_TIF
from geoalign.errors import CRSError, EmptyInputError, InputFileError
from geoalign.sources.imagery import fetch_imagery


def test_crop_is_exact_and_keeps_grid(tmp_path):
    out = tmp_path / "crop.tif"
    # EPSG:26914 box on whole 0.3 m pixels: cols 100..700, rows 300..900 of the crop
    result = fetch_imagery(f"file:{AUSTIN_TIF}", (616830, 3344430, 617010, 3344610), out,
                           bbox_crs="EPSG:26914")
    assert (result.width, result.height, result.crs) == (600, 600, "EPSG:26914")
    with rasterio.open(out) as dst, rasterio.open(AUSTIN_TIF) as src:
        assert dst.crs == src.crs and dst.res == pytest.approx(src.res)
        assert dst.transform.almost_equals(src.transform @ src.transform.translation(100, 300))
        assert dst.profile["tiled"] and dst.profile["compress"] == "deflate"
        np.testing.assert_array_equal(dst.read(), src.read(window=Window(100, 300, 600, 600)))
        assert (dst.dataset_mask() == 255).all()


def test_partly_outside_bbox_is_cut_to_the_raster(tmp_path):
    out = tmp_path / "corner.tif"
    fetch_imagery(f"file:{AUSTIN_TIF}", (617000, 3344300, 617500, 3344500), out,
                  bbox_crs="EPSG:26914")
    with rasterio.open(out) as dst:
        assert tuple(dst.bounds) == pytest.approx((617000, 3344400, 617100, 3344500))


def test_reprojected_to_wgs84(tmp_path):
    out = tmp_path / "wgs84.tif"
    bbox = (-97.7855, 30.2260, -97.7835, 30.2275)  # inside the crop (lon/lat)
    result = fetch_imagery(f"file:{AUSTIN_TIF}", bbox, out, dst_crs="EPSG:4326", resolution_m=0.6)
    assert result.crs == "EPSG:4326"
    with rasterio.open(out) as dst, rasterio.open(AUSTIN_TIF) as src:
        assert dst.crs.to_epsg() == 4326
        # 0.002° of longitude at 30.2°N ≈ 192.5 m ≈ 321 px of 0.6 m
        assert dst.width == pytest.approx(321, abs=2)
        # the centre pixel's colour matches the source's around the same ground point
        row, col = dst.height // 2, dst.width // 2
        lon, lat = dst.xy(row, col)
        from pyproj import Transformer

        x, y = Transformer.from_crs(4326, src.crs, always_xy=True).transform(lon, lat)
        r, c = src.index(x, y)
        patch = src.read(window=Window(c - 1, r - 1, 2, 2)).reshape(3, -1).mean(axis=1)
        assert np.abs(dst.read(window=Window(col, row, 1, 1)).reshape(3) - patch).max() < 40


def test_bbox_outside_missing_file_and_no_crs(tmp_path):
    out = tmp_path / "x.tif"
    with pytest.raises(EmptyInputError, match="lies outside the raster"):
        fetch_imagery(f"file:{AUSTIN_TIF}", (2.29, 48.85, 2.30, 48.86), out)
    with pytest.raises(InputFileError, match="no such raster file"):
        fetch_imagery(f"file:{tmp_path / 'nope.tif'}", (0, 0, 1, 1), out)
    no_crs = tmp_path / "no_crs.tif"
    with rasterio.open(no_crs, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8") as d:
        d.write(np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(CRSError, match="no CRS"):
        fetch_imagery(f"file:{no_crs}", (0, 0, 1, 1), out)
    assert not out.exists()
