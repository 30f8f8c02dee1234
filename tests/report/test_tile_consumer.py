"""The tile-consumer interface as align's tiler drives it: the shipped model, its statistics and
calibration, a real raster cut into alignment tiles, each handed once to ``on_tile``."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely
from rasterio.windows import Window

from geoalign.align.resolve import resolve_predictor
from geoalign.deform import deform_geometries, random_smooth_field
from geoalign.grid import PixelGrid, reproject_to
from geoalign.io.raster import RasterReader
from geoalign.io.vectors import read_buildings
from geoalign.model.predictor import DEFAULT_MODEL_DIR
from geoalign.rasterize import rasterize_map, translate_geoms
from geoalign.report.attach import building_columns, new_report
from geoalign.report.stats import STATS_FILE

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL_DIR / STATS_FILE).exists(), reason="no shipped statistics")

CORE_PX = 200


def _austin_crop(austin):
    with RasterReader(austin["image"]) as r:
        image, valid = r.read(Window(0, 0, 400, 300))
        grid = PixelGrid(r.transform, 400, 300, r.crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdf = reproject_to(read_buildings(austin["buildings"]), grid.crs)
    px = grid.to_pixels(np.asarray(gdf.geometry.values, dtype=object))
    px = px[shapely.within(px, shapely.box(0, 0, 400, 300))]
    phi = random_smooth_field((300, 400), max_amplitude_px=6, correlation_length_px=128, rng=0)
    return image, valid, grid, px, deform_geometries(px, phi)


def test_alignment_tiles_feed_the_report_once_each(austin, tmp_path):
    image, valid, grid, truth, mis = _austin_crop(austin)
    predictor = resolve_predictor("local+learned")[0]
    ctx = predictor.context_px
    report = new_report(None, mis, (300, 400), grid.transform)
    assert report.tile_px == 192  # the learned stage's training patch: 96 px of scale 1
    H, W = 300, 400
    pad = ((0, 0), (ctx, ctx), (ctx, ctx))
    img_p = np.pad(image, pad, mode="symmetric")
    val_p = np.pad(valid, pad[1:], constant_values=False)
    for r0 in range(0, H, CORE_PX):
        for c0 in range(0, W, CORE_PX):
            core = (r0, min(H, r0 + CORE_PX), c0, min(W, c0 + CORE_PX))
            inp = (core[0] - ctx, core[1] + ctx, core[2] - ctx, core[3] + ctx)
            sl = (slice(inp[0] + ctx, inp[1] + ctx), slice(inp[2] + ctx, inp[3] + ctx))
            map_ = rasterize_map(translate_geoms(mis, -inp[2], -inp[0]), (inp[1] - inp[0], inp[3] - inp[2]))
            field = predictor.predict(img_p[(slice(None), *sl)], val_p[sl], map_)
            report.on_tile(inp=inp, core=core, image=img_p[(slice(None), *sl)], valid=val_p[sl], map_=map_,
                           field=field)
            report.on_tile(inp=inp, core=core, image=img_p[(slice(None), *sl)], valid=val_p[sl], map_=map_,
                           field=field)  # a repeated call changes nothing
    result = report.finish()
    assert sorted((t["row"], t["col"]) for t in result.tiles) == [(i, j) for i in range(2) for j in range(3)]
    inside = np.isfinite(result.expected_error_px)
    assert inside.sum() == len(mis) and (result.tile_of_building >= 0).all()
    assert sum(t["n_buildings"] for t in result.tiles) == len(mis)
    for t in result.tiles:
        if t["n_buildings"]:
            assert np.isfinite(t["expected_error_px"]) and np.isfinite(t["density"]) and t["density"] > 0
            assert 0 <= t["density_quantile"] <= 1
    assert np.all((result.confidence > 0) & (result.confidence <= 1))
    # per-building columns and the gate on align's output frame
    out = gpd.GeoDataFrame({"bid": np.arange(len(mis))}, geometry=list(shapely.affinity.translate(g, 1.0)
                                                                          for g in mis))
    result.gated[:] = False
    result.gated[0] = True
    cols = building_columns(out.assign(shift_m=1.0), result, np.arange(len(mis)), input_geoms=mis)
    assert cols["gated"].sum() == 1 and cols.geometry.iloc[0].equals(mis[0]) and cols["shift_m"].iloc[0] == 0
    assert not cols.geometry.iloc[1].equals(mis[1])
    np.testing.assert_array_equal(cols["expected_error_px"].to_numpy(), result.expected_error_px)
