"""XYZ tiles from a real server on 127.0.0.1 → GeoTIFF: tile counts, exact pixels, masks,
retries after dropped transfers, and a cache that never keeps a partial tile."""

from __future__ import annotations

import math

import mercantile
import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from geoalign.errors import DownloadError
from geoalign.sources import SourceError, http
from geoalign.sources.imagery import fetch_imagery
from geoalign.sources.xyz import ground_resolution_m, tile_source, zoom_for_resolution

from fetch_servers import AUSTIN_TIF, KAMPALA_TIF, decode_png_ok, source_on_grid, tile_app, tile_paths

# Kampala's mosaic is the zoom-21 tiles x 1238448..1238459, y 1046528..1046535, pixel for pixel.
Z = 21
TX0, TY0 = 1238448, 1046528


def kampala_bbox_3857(col0: int, row0: int, col1: int, row1: int) -> tuple[float, ...]:
    """The EPSG:3857 bbox of a pixel window of the Kampala mosaic."""
    with rasterio.open(KAMPALA_TIF) as src:
        t = src.transform
    return (t.c + col0 * t.a, t.f + row1 * t.e, t.c + col1 * t.a, t.f + row0 * t.e)


def template(server) -> str:
    return f"xyz:{server.url}/tiles/{{z}}/{{x}}/{{y}}.png"


def read_source(col0: int, row0: int, width: int, height: int):
    with rasterio.open(KAMPALA_TIF) as src:
        window = Window(col0, row0, width, height)
        return src.read(window=window, boundless=True), src.dataset_mask(window=window, boundless=True)


def test_zoom_for_resolution_numbers():
    # 156543.03 m per pixel at zoom 0 on the equator, halving at each zoom
    assert ground_resolution_m(0, 0.0) == pytest.approx(156543.034, rel=1e-6)
    assert zoom_for_resolution(0.3, 0.0) == 19  # z19: 0.2986 m ≤ 0.3 < z18: 0.597 m
    assert zoom_for_resolution(0.3, 60.0) == 18  # z18 at 60°N: 0.2986 m
    assert zoom_for_resolution(0.01, 0.0, max_zoom=20) == 20


def test_provider_names_and_templates():
    esri = tile_source("Esri.WorldImagery")
    assert esri.url_template.endswith("/tile/{z}/{y}/{x}")
    assert esri.url(mercantile.Tile(3, 5, 4)).endswith("/tile/4/5/3")
    tms = tile_source("http://h/{z}/{x}/{-y}.png")
    assert tms.url(mercantile.Tile(0, 0, 1)) == "http://h/1/0/1.png"
    with pytest.raises(SourceError, match="no such xyzservices provider"):
        tile_source("No.Such.Provider")


def test_mosaic_is_exact_crop_with_tile_count(serve, tmp_path):
    server = serve(tile_app(KAMPALA_TIF))
    out = tmp_path / "kampala.tif"
    result = fetch_imagery(template(server), kampala_bbox_3857(600, 300, 1300, 800), out,
                           bbox_crs="EPSG:3857", zoom=Z)
    # cols 600..1299 → tile columns 2..5, rows 300..799 → tile rows 1..3: 4 × 3 tiles
    assert result.n_requests == 12 and result.n_missing == 0 and result.n_cached == 0
    assert sorted(server.hits) == sorted(tile_paths(Z, range(TX0 + 2, TX0 + 6), range(TY0 + 1, TY0 + 4)))
    with rasterio.open(out) as dst, rasterio.open(KAMPALA_TIF) as src:
        assert dst.crs.to_epsg() == 3857
        assert (dst.width, dst.height, dst.count, dst.dtypes[0]) == (700, 500, 3, "uint8")
        assert dst.transform.almost_equals(src.transform @ src.transform.translation(600, 300))
        assert dst.profile["tiled"] and dst.profile["compress"] == "deflate"
        assert dst.mask_flag_enums[0] == [rasterio.enums.MaskFlags.per_dataset]
        data, mask = dst.read(), dst.dataset_mask()
    expected, expected_mask = read_source(600, 300, 700, 500)
    np.testing.assert_array_equal(mask, expected_mask)  # PNG is lossless: exact
    valid = mask > 0
    np.testing.assert_array_equal(data[:, valid], expected[:, valid])

    # the same fetch again comes from the cache: no request reaches the server
    server.hits.clear()
    again = fetch_imagery(template(server), kampala_bbox_3857(600, 300, 1300, 800),
                          tmp_path / "again.tif", bbox_crs="EPSG:3857", zoom=Z)
    assert again.n_cached == 12 and sum(server.hits.values()) == 0


def test_missing_tiles_are_masked(serve, tmp_path):
    server = serve(tile_app(KAMPALA_TIF))
    out = tmp_path / "edge.tif"
    # 300 px past the east edge of the mosaic: tile column 12 does not exist (404)
    result = fetch_imagery(template(server), kampala_bbox_3857(2900, 0, 3300, 256), out,
                           bbox_crs="EPSG:3857", zoom=Z)
    assert (result.n_requests, result.n_missing) == (2, 1)
    with rasterio.open(out) as dst:
        assert (dst.width, dst.height) == (400, 256)
        data, mask = dst.read(), dst.dataset_mask()
    assert (mask[:, 172:] == 0).all() and (data[:, :, 172:] == 0).all()
    expected, expected_mask = read_source(2900, 0, 172, 256)
    np.testing.assert_array_equal(mask[:, :172], expected_mask)
    np.testing.assert_array_equal(data[:, :, :172][:, expected_mask > 0], expected[:, expected_mask > 0])


def test_resolution_picks_zoom_and_warps_to_crs(serve, tmp_path, austin_3857_z19):
    """Tiles cut from the Austin crop reprojected to EPSG:3857; ask 0.5 m in the crop's own UTM."""
    server = serve(tile_app(austin_3857_z19))
    bbox = (616850.0, 3344450.0, 617050.0, 3344650.0)  # EPSG:26914, inside the crop
    out = tmp_path / "austin.tif"
    result = fetch_imagery(template(server), bbox, out, bbox_crs="EPSG:26914", resolution_m=0.5,
                           dst_crs="EPSG:26914")
    assert result.zoom == 19  # z19 at 30.2°N: 0.258 m ≤ 0.5 m < z18: 0.516 m
    assert all(path.startswith("/tiles/19/") for path in server.hits)
    with rasterio.open(out) as dst:
        assert dst.crs.to_epsg() == 26914
        assert dst.res == pytest.approx((0.5, 0.5))
        assert dst.bounds.left <= 616850 and dst.bounds.top >= 3344650
        assert (dst.width, dst.height) == (400, 400)
        data, mask = dst.read().astype(np.float32), dst.dataset_mask() > 0
        expected = source_on_grid(dst, AUSTIN_TIF, Resampling.average)
    assert mask.mean() > 0.99
    diff = np.abs(data - expected)[:, mask]
    # two resamplings apart (UTM → 3857 bilinear → UTM average) but the same picture
    assert diff.mean() < 6.0
    assert np.corrcoef(data[:, mask].ravel(), expected[:, mask].ravel())[0, 1] > 0.97


def test_dropped_transfer_is_retried_and_cache_holds_whole_tiles(serve, tmp_path):
    dropped = set(tile_paths(Z, range(TX0 + 2, TX0 + 4), range(TY0 + 1, TY0 + 2)))
    server = serve(tile_app(KAMPALA_TIF, drop_first=dropped))
    out = tmp_path / "retried.tif"
    result = fetch_imagery(template(server), kampala_bbox_3857(600, 300, 1300, 800), out,
                           bbox_crs="EPSG:3857", zoom=Z)
    assert result.n_requests == 12
    for path in dropped:
        assert server.hits[path] == 2  # half a tile, then the whole tile
    with rasterio.open(out) as dst:
        data = dst.read()
    expected, expected_mask = read_source(600, 300, 700, 500)
    np.testing.assert_array_equal(data[:, expected_mask > 0], expected[:, expected_mask > 0])
    cached = sorted((tmp_path / "cache").rglob("*.png"))
    assert len(cached) == 12 and all(decode_png_ok(p.read_bytes()) for p in cached)


def test_tile_dropping_every_time_fails_cleanly_then_resumes_from_cache(serve, tmp_path):
    always = {tile_paths(Z, range(TX0 + 3, TX0 + 4), range(TY0 + 2, TY0 + 3))[0]}
    server = serve(tile_app(KAMPALA_TIF, drop_always=always))
    out = tmp_path / "never.tif"
    bbox = kampala_bbox_3857(600, 300, 1300, 800)
    with pytest.raises(DownloadError, match="dropped the connection mid-transfer"):
        fetch_imagery(template(server), bbox, out, bbox_crs="EPSG:3857", zoom=Z)
    (bad_path,) = always
    assert server.hits[bad_path] == 3  # 1 + settings.max_retries
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no partial output, no temp
    bad_url = f"{server.url}{bad_path}"
    assert not http.cache_path(bad_url).exists()
    cached = list((tmp_path / "cache").rglob("*"))
    assert not [p for p in cached if ".part" in p.name]
    assert all(decode_png_ok(p.read_bytes()) for p in cached if p.is_file())

    always.clear()  # the server recovers: only the missing tile is asked again
    server.hits.clear()
    result = fetch_imagery(template(server), bbox, out, bbox_crs="EPSG:3857", zoom=Z)
    assert dict(server.hits) == {bad_path: 1}
    assert result.n_cached == 11 and out.exists()


def test_http_500_and_offline_raise_download_error(serve, tmp_path, closed_port_url):
    from fetch_servers import error_app

    server = serve(error_app(500))
    out = tmp_path / "x.tif"
    bbox = kampala_bbox_3857(0, 0, 100, 100)
    with pytest.raises(DownloadError, match=r"HTTP 500 .*after 3 attempts"):
        fetch_imagery(template(server), bbox, out, bbox_crs="EPSG:3857", zoom=Z)
    assert sum(server.hits.values()) == 3 and not out.exists()
    with pytest.raises(DownloadError, match="connection refused"):
        fetch_imagery(f"xyz:{closed_port_url}/{{z}}/{{x}}/{{y}}.png", bbox, out,
                      bbox_crs="EPSG:3857", zoom=Z)
    assert not out.exists()


def test_bbox_without_any_tile_is_an_error(serve, tmp_path):
    server = serve(tile_app(KAMPALA_TIF))
    with pytest.raises(DownloadError, match="none of the 1 tiles"):
        fetch_imagery(template(server), (0.0, 0.0, 0.0001, 0.0001), tmp_path / "x.tif", zoom=Z)
    assert not (tmp_path / "x.tif").exists()


def test_zoom_or_resolution_required(tmp_path):
    with pytest.raises(SourceError, match="--zoom or --resolution"):
        fetch_imagery("xyz:http://127.0.0.1:9/{z}/{x}/{y}.png", (0, 0, 0.001, 0.001),
                      tmp_path / "x.tif")
    assert math.isfinite(ground_resolution_m(Z, 0.35))
