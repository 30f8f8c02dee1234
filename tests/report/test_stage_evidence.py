"""What the report reads from the pipeline instead of computing it again: the classical stage's
windows and the map it hands the learned stage; and the scorer's network on the centre's cone."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import similarity as sim
from geoalign.align.resolve import resolve_predictor
from geoalign.baselines.local_offset import LevelWindows, LocalOffsetPredictor
from geoalign.deform import deform_geometries, random_smooth_field
from geoalign.grid import PixelGrid, reproject_to
from geoalign.inference import StageEvidence, WindowedPredictor
from geoalign.inference.compose import move_map
from geoalign.inference.tiling import TileInputs, WorkGrid, predict_tiled
from geoalign.io.raster import RasterReader
from geoalign.io.vectors import read_buildings
from geoalign.model.checkpoint import load_model
from geoalign.model.predictor import DEFAULT_MODEL_DIR
from geoalign.rasterize import rasterize_map
from geoalign.report.attach import new_report
from geoalign.report.stats import STATS_FILE, centre, centre_net, patch_net

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL_DIR / STATS_FILE).exists(), reason="no shipped statistics")


@pytest.fixture(scope="module")
def austin_px(austin):
    with RasterReader(austin["image"]) as r:
        grid = PixelGrid(r.transform, r.width, r.height, r.crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdf = reproject_to(read_buildings(austin["buildings"]), grid.crs)
    px = grid.to_pixels(np.asarray(gdf.geometry.values, dtype=object))
    phi = random_smooth_field((grid.height, grid.width), max_amplitude_px=6, correlation_length_px=128, rng=1)
    return grid, deform_geometries(px, phi)


def test_the_local_search_keeps_typed_windows_of_its_last_call(austin, austin_px):
    _, geoms = austin_px
    local = LocalOffsetPredictor(search_px=16)
    assert isinstance(local, WindowedPredictor) and local.last_windows == []
    with RasterReader(austin["image"]) as r:
        image, valid = r.read()
    map_ = rasterize_map(geoms, image.shape[1:])
    local.predict(image, valid, map_)
    first = local.last_windows
    assert [type(w) for w in first] == [LevelWindows, LevelWindows]
    assert [w.search_px for w in first] == [18, 8]
    for w in first:
        assert w.confidence.shape == w.weight.shape == (len(w.cy), len(w.cx)) == w.residual.shape[1:]
    local.predict(image, valid, np.zeros_like(map_))  # no building: no window, a fresh list
    assert local.last_windows == [] and len(first) == 2


def test_the_report_reads_the_pipelines_classical_stage_and_does_not_search_again(austin, austin_px):
    grid, geoms = austin_px
    predictor = resolve_predictor("local+learned")[0]
    report = new_report(None, geoms, (grid.height, grid.width), grid.transform)
    seen = []

    def hook(tf):
        seen.append(tf)
        report.on_tile_field(tf)

    with RasterReader(austin["image"]) as reader:
        predict_tiled(TileInputs(reader, WorkGrid.for_predictor(reader, predictor.gsd_m), geoms), predictor,
                      tile_px=512, sink=lambda r0, s: None, show_progress=False, on_tile=hook)
    assert report.local.last_windows == []  # the report's own classical search never ran
    result = report.finish()
    assert np.isfinite(result.expected_error_px).sum() == len(geoms)
    assert np.isfinite(result.features[:, :12]).all()  # both levels' window statistics for every building
    # the windows handed over are the classical stage's own, in the tile's input pixels
    tf = next(t for t in seen if t.has_buildings)
    assert isinstance(tf.evidence, StageEvidence) and len(tf.evidence.windows) == 2
    local, learned = predictor.stages
    m = predictor.context_px - local.context_px  # the classical stage runs on the tile less the learned context
    inner = (slice(m, -m), slice(m, -m))
    field = local.predict(tf.image[(slice(None), *inner)], tf.valid[inner], tf.map_[(slice(None), *inner)])
    for mine, handed in zip(local.last_windows, tf.evidence.windows):
        np.testing.assert_array_equal(mine.cy + m, handed.cy)
        np.testing.assert_array_equal(mine.cx + m, handed.cx)
        np.testing.assert_array_equal(mine.confidence, handed.confidence)
        np.testing.assert_array_equal(mine.residual, handed.residual)
    rows, cols = tf.tile.footprint_in_input()
    np.testing.assert_array_equal(tf.stage_fields[0], np.pad(field, ((0, 0), (m, m), (m, m)), mode="edge")[:, rows, cols])
    full = np.pad(field, ((0, 0), (m, m), (m, m)), mode="edge")
    np.testing.assert_array_equal(tf.evidence.stage_maps[1], move_map(tf.map_, full))
    assert tf.evidence.stage_maps[0] is tf.map_


def test_the_report_reads_a_cut_of_each_tile_and_computes_what_the_whole_input_window_gives(austin, austin_px):
    """The report scores the part of each tile it reads (its claimed report tiles, their patches
    and buildings, the footprint): every feature, tile record and preview pixel is the one the
    whole input window gives (to the last bits of the vertices' coordinates in another origin),
    and the cut is a fraction of that window."""
    from geoalign.report.trust import ClassicalStage

    grid, geoms = austin_px
    predictor = resolve_predictor("local+learned")[0]
    cut, whole = (new_report(None, geoms, (grid.height, grid.width), grid.transform) for _ in range(2))
    shares = []

    def hook(tf):
        if not tf.has_buildings:
            return
        cut.on_tile_field(tf)
        (r0, r1, c0, c1), (i0, i1, j0, j1) = cut.reading_window(tf.tile), tf.tile.inp
        shares.append((r1 - r0) * (c1 - c0) / ((i1 - i0) * (j1 - j0)))
        foot = tf.tile.foot
        pads = ((0, 0), (foot[0] - i0, i1 - foot[1]), (foot[2] - j0, j1 - foot[3]))
        ev = tf.evidence
        whole.on_tile(inp=tf.tile.inp, core=tf.tile.claim, image=tf.image, valid=tf.valid, map_=tf.map_,
                      field=np.pad(tf.field, pads, mode="edge"), preview_window=foot,
                      classical=ClassicalStage(np.pad(tf.stage_fields[0], pads, mode="edge"), tuple(ev.windows),
                                               ev.stage_maps[1]))

    with RasterReader(austin["image"]) as reader:
        predict_tiled(TileInputs(reader, WorkGrid.for_predictor(reader, predictor.gsd_m), geoms), predictor,
                      tile_px=384, sink=lambda r0, s: None, show_progress=False, on_tile=hook)
    assert len(shares) >= 4 and max(shares) < 0.5
    a, b = cut.finish(), whole.finish()
    assert np.isfinite(a.features).any(axis=1).sum() == len(geoms)
    np.testing.assert_allclose(a.features, b.features, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.expected_error_px, b.expected_error_px, rtol=1e-12)
    assert len(a.tiles) == len(b.tiles) > 4
    for ta, tb in zip(a.tiles, b.tiles):
        assert ta.keys() == tb.keys()
        for key in ta:
            if isinstance(ta[key], float):
                np.testing.assert_allclose(ta[key], tb[key], rtol=1e-12, atol=1e-12, err_msg=key)
            else:
                assert ta[key] == tb[key], key
    np.testing.assert_array_equal(cut.preview, whole.preview)


def test_the_scorers_network_on_the_centres_cone_gives_the_whole_patchs_values(austin, austin_px):
    _, geoms = austin_px
    chain, _ = load_model(DEFAULT_MODEL_DIR)
    whole, cone = patch_net(chain.eval(), 1), centre_net(chain.eval(), 1)
    with RasterReader(austin["image"]) as r:
        image, valid = r.read()
    map_ = rasterize_map(geoms, image.shape[1:])
    # two 96 px patches of scale 1 (192 working px, average-pooled) over buildings
    pool = torch.nn.functional.avg_pool2d
    x = torch.cat([pool(torch.from_numpy(image)[None], 2), pool(torch.from_numpy(map_)[None], 2)], 1)
    patches = torch.cat([x[:, :, 100:196, 150:246], x[:, :, 300:396, 250:346]])
    assert patches[:, 3].sum() > 500 and 2 * cone.half_px < patches.shape[-1]  # the crop is a real crop
    assert cone.use_cone and centre(cone(patches)).shape == (2, 2)  # stage by stage on the cone
    with torch.no_grad():
        np.testing.assert_allclose(centre(cone(patches)).numpy(), centre(whole(patches)).numpy(), atol=1e-5)
        assert centre(whole(patches)).abs().max() > 0.05
    j_whole = sim.jacobians(whole, patches, output=centre).double()
    j_cone = sim.jacobians(cone, patches, output=centre).double()
    assert j_whole.shape == j_cone.shape == (2, 2, sum(p.numel() for p in whole.parameters()))
    scale = j_whole.abs().max()
    assert (j_cone - j_whole).abs().max() < 1e-4 * scale
    # the first layer's gradients come back through the whole network, cost volumes included
    first = j_whole[..., 2:2 + 12 * 6 * 9]  # after the two temperatures: image_encoder.0.weight
    assert (first.abs().sum((0, 1)) > 0).double().mean() > 0.5  # less the ReLU-dead channels


def test_the_valid_cost_volume_equals_the_networks_with_its_gradients():
    from geoalign.model.scale_net import cost_volume
    from geoalign.report.cone import ValidCostVolume

    gen = torch.Generator().manual_seed(0)
    r = 2
    f_map = torch.randn(2, 3, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    f_img = torch.randn(2, 3, 5 + 2 * r, 6 + 2 * r, generator=gen, dtype=torch.float64, requires_grad=True)
    mine = ValidCostVolume.apply(f_map, f_img, r)
    # the network's cost volume on the wider image features: its centre reads no padding
    ref_map = torch.nn.functional.pad(f_map, (r, r, r, r))
    ref = cost_volume(ref_map, f_img, r)[..., r:-r, r:-r]
    assert torch.allclose(mine, ref)
    g = torch.randn(mine.shape, generator=gen, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad((mine * g).sum(), (f_map, f_img)),
                    torch.autograd.grad((ref * g).sum(), (f_map, f_img))):
        assert torch.allclose(a, b) and a.abs().max() > 0
