"""WMS GetMap from a real server on 127.0.0.1 cropping the Kampala GeoTIFF: chunked requests,
exact pixels on the zoom-21 grid, axis order in EPSG:4326, server errors."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from fetch_servers import KAMPALA_TIF, source_on_grid, wms_app
from geoalign.errors import DownloadError
from geoalign.sources import SourceError
from geoalign.sources.imagery import fetch_imagery


def kampala_bbox_3857(col0: int, row0: int, col1: int, row1: int) -> tuple[float, ...]:
    with rasterio.open(KAMPALA_TIF) as src:
        t = src.transform
    return (t.c + col0 * t.a, t.f + row1 * t.e, t.c + col1 * t.a, t.f + row0 * t.e)


@pytest.fixture
def wms(serve):
    log: list[dict] = []
    server = serve(wms_app({"kampala": KAMPALA_TIF}, log))
    return server, log


def test_getmap_in_chunks_is_exact(wms, tmp_path, fetch_settings, monkeypatch):
    server, log = wms
    monkeypatch.setattr(fetch_settings, "wms_max_size_px", 256)
    out = tmp_path / "wms.tif"
    result = fetch_imagery(f"wms:{server.url}/wms", kampala_bbox_3857(100, 50, 700, 450), out,
                           bbox_crs="EPSG:3857", zoom=21, layer="kampala")
    # 600 × 400 px in chunks of at most 256 px: 3 × 2 GetMap requests
    assert result.n_requests == 6 and len(log) == 6
    assert sorted((int(q["WIDTH"]), int(q["HEIGHT"])) for q in log) == sorted(
        [(256, 256), (256, 256), (88, 256), (256, 144), (256, 144), (88, 144)])
    assert {q["CRS"] for q in log} == {"EPSG:3857"} and {q["LAYERS"] for q in log} == {"kampala"}
    with rasterio.open(out) as dst, rasterio.open(KAMPALA_TIF) as src:
        assert dst.crs.to_epsg() == 3857 and (dst.width, dst.height) == (600, 400)
        assert dst.transform.almost_equals(src.transform @ src.transform.translation(100, 50))
        data, mask = dst.read(), dst.dataset_mask()
        expected = src.read(window=Window(100, 50, 600, 400))
        expected_mask = src.dataset_mask(window=Window(100, 50, 600, 400))
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_array_equal(data[:, mask > 0], expected[:, expected_mask > 0])


def test_geographic_crs_swaps_bbox_axes(wms, tmp_path):
    server, log = wms
    with rasterio.open(KAMPALA_TIF) as src:
        from rasterio.warp import transform_bounds

        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    bbox = (w + 0.0004, s + 0.0003, w + 0.0012, s + 0.0009)
    out = tmp_path / "wgs84.tif"
    result = fetch_imagery(f"wms:{server.url}/wms", bbox, out, resolution_m=0.15,
                           layer="kampala", dst_crs="EPSG:4326")
    assert result.crs == "EPSG:4326" and len(log) == 1
    lat_first = [float(v) for v in log[0]["BBOX"].split(",")]
    assert lat_first[0] == pytest.approx(bbox[1], abs=1e-5)  # south first
    assert lat_first[1] == pytest.approx(bbox[0], abs=1e-5)
    with rasterio.open(out) as dst:
        assert dst.crs.to_epsg() == 4326
        # 0.0008° of longitude near the equator ≈ 89 m ≈ 594 px of 0.15 m
        assert dst.width == pytest.approx(594, abs=2)
        data, mask = dst.read().astype(np.float32), dst.dataset_mask() > 0
        expected = source_on_grid(dst, KAMPALA_TIF, Resampling.nearest)
    assert mask.mean() > 0.98
    assert np.abs(data - expected)[:, mask].mean() < 1.0


def test_unknown_layer_and_missing_layer(wms, tmp_path):
    server, _ = wms
    out = tmp_path / "x.tif"
    bbox = kampala_bbox_3857(0, 0, 64, 64)
    with pytest.raises(DownloadError, match="refused the request: Layer roads is not defined"):
        fetch_imagery(f"wms:{server.url}/wms", bbox, out, bbox_crs="EPSG:3857", zoom=21,
                      layer="roads")
    with pytest.raises(SourceError, match=r"needs --layer \(layers offered: kampala\)"):
        fetch_imagery(f"wms:{server.url}/wms", bbox, out, bbox_crs="EPSG:3857", zoom=21)
    assert not out.exists()
