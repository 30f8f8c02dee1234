"""Scale net, chain, checkpoints, the chain as a predictor (the torch warps: ``test_warp.py``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from geoalign.deform import random_smooth_field
from geoalign.errors import CheckpointError, OptionError
from geoalign.model.chain import Chain, ChainConfig
from geoalign.model.checkpoint import WEIGHTS, CONFIG, load_model, save_model
from geoalign.inference.protocol import FieldPredictor
from geoalign.model.predictor import load_predictor
from geoalign.model.scale_net import ScaleNet, ScaleNetConfig, count_parameters

TINY = ChainConfig(scales=(2, 1, 0), net=ScaleNetConfig(features=4, hidden=4, range_px=2.0))


def _field(shape, amp=3.0, seed=0):
    return random_smooth_field(shape, max_amplitude_px=amp, correlation_length_px=12.0,
                               rng=np.random.default_rng(seed))


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None]


@pytest.mark.parametrize("shape", [(17, 23), (64, 64), (5, 9)])
def test_scale_net_any_size_and_bound(shape):
    torch.manual_seed(0)
    net = ScaleNet(ScaleNetConfig(features=4, hidden=4, range_px=1.5))
    for p in net.head[-1].parameters():
        torch.nn.init.normal_(p, std=50.0)  # saturate the tanh
    field, seg = net(torch.rand(2, 3, *shape), torch.rand(2, 3, *shape))
    assert field.shape == (2, 2, *shape) and seg.shape == (2, 1, *shape)
    assert field.abs().max() <= 1.5 + 1e-6


def test_parameter_count_documented():
    assert count_parameters(ScaleNet()) == 17381


@pytest.mark.parametrize("shape", [(37, 41), (64, 48)])
def test_chain_any_size_and_starts_at_zero(shape):
    chain = Chain(TINY)
    out = chain(torch.rand(1, 3, *shape), torch.rand(1, 3, *shape))
    assert out.shape == (1, 2, *shape)
    assert out.abs().max() == 0.0  # last layer initialized to zero: predict-zero start


def _constant_chain() -> Chain:
    """Scales 1 and 0 with networks of their own that predict 0.5 and 0.25 px of their scale everywhere."""
    chain = Chain(ChainConfig(scales=(1, 0), shared=False, net=ScaleNetConfig(features=4, hidden=4)))
    for s, v in (("1", 0.5), ("0", 0.25)):
        head = chain.nets[s].head[-1]
        torch.nn.init.zeros_(head.weight)
        head.bias.data[:] = torch.atanh(torch.tensor(v / 2.5))
    return chain


def test_chain_composes_constant_corrections():
    """Each scale adds its (upsampled, ×2^s) correction to what the coarser scales found."""
    chain = _constant_chain()
    out = chain(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
    assert torch.allclose(out, torch.full_like(out, 0.5 * 2 + 0.25), atol=1e-5)
    assert torch.allclose(chain(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), upto_scale=1),
                          torch.full_like(out, 1.0), atol=1e-5)


def test_a_scale_given_twice_runs_twice_on_the_map_its_first_run_moved():
    """A repeated coarse scale reaches twice as far: (1, 1, 0) adds scale 1's correction twice."""
    chain = _constant_chain()
    twice = chain.fine_stages((0, 1, 1))
    assert twice.config.scales == (1, 1, 0) and set(twice.nets) == {"1", "0"}
    assert twice.context_px == chain.context_px + chain.scale_context_px(1)
    out = twice(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
    assert torch.allclose(out, torch.full_like(out, 2 * 0.5 * 2 + 0.25), atol=1e-5)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    chain = Chain(TINY)
    for p in chain.parameters():
        p.data.normal_()
    save_model(chain, tmp_path / "m", gsd_m=0.3)
    loaded, config = load_model(tmp_path / "m")
    x, m = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24)
    assert torch.equal(chain.eval()(x, m), loaded(x, m))
    pred = load_predictor(tmp_path / "m")
    assert isinstance(pred, FieldPredictor) and pred.gsd_m == 0.3 and pred.context_px > 0


def test_corrupt_or_incompatible_checkpoint(tmp_path):
    save_model(Chain(TINY), tmp_path / "m", gsd_m=0.3)
    w = tmp_path / "m" / WEIGHTS
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(tmp_path / "m")
    save_model(Chain(TINY), tmp_path / "v", gsd_m=0.3)
    cfg = json.loads((tmp_path / "v" / CONFIG).read_text())
    cfg["format_version"] = 999
    (tmp_path / "v" / CONFIG).write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="version"):
        load_model(tmp_path / "v")
    save_model(Chain(ChainConfig(scales=(1, 0), net=ScaleNetConfig(features=6, hidden=4))), tmp_path / "x", gsd_m=0.3)
    (tmp_path / "x" / WEIGHTS).write_bytes((tmp_path / "m" / WEIGHTS).read_bytes())
    save_model(Chain(TINY), tmp_path / "y", gsd_m=0.3)
    (tmp_path / "x" / WEIGHTS).write_bytes((tmp_path / "y" / WEIGHTS).read_bytes())
    with pytest.raises(CheckpointError, match="incompatible"):
        load_model(tmp_path / "x")
    with pytest.raises(CheckpointError, match="no config.json"):
        load_model(tmp_path / "missing")


def test_shipped_default_model_loads_and_predicts():
    pred = load_predictor()
    img = np.random.default_rng(0).random((3, 50, 60)).astype(np.float32)
    field = pred.predict(img, np.ones((50, 60), bool), np.zeros((3, 50, 60), np.float32))
    assert field.shape == (2, 50, 60) and not field.any()  # no buildings: zero field


def test_edge_weighted_smoothing_keeps_constants_and_averages_noise():
    from geoalign.model.warp import smooth_field_at_edges

    gen = torch.Generator().manual_seed(0)
    edges = (torch.rand(1, 1, 64, 64, generator=gen) < 0.1).float()
    const = torch.tensor([1.5, -0.5]).view(1, 2, 1, 1).expand(1, 2, 64, 64)
    assert torch.allclose(smooth_field_at_edges(const, edges, 4.0), const, atol=1e-5)
    noisy = const + 0.5 * torch.randn(1, 2, 64, 64, generator=gen)
    before = (noisy - const)[:, :, edges[0, 0] > 0].abs().mean()
    after = (smooth_field_at_edges(noisy, edges, 4.0) - const)[:, :, edges[0, 0] > 0].abs().mean()
    assert after < 0.35 * before  # ~40 edge pixels within reach average the noise down
    # the weights are the edges: a prediction far from any edge does not leak into an edge pixel
    spike = torch.zeros(1, 2, 64, 64)
    spike[..., 5, 5] = 100.0
    only_edges = torch.zeros(1, 1, 64, 64)
    only_edges[..., 40:44, 40:44] = 1.0
    assert smooth_field_at_edges(spike, only_edges, 2.0)[..., 42, 42].abs().max() < 1e-6
    assert torch.equal(smooth_field_at_edges(noisy, edges, 0.0), noisy)


def test_chain_smoothing_config_round_trips_and_widens_context(tmp_path):
    smooth = ChainConfig(scales=TINY.scales, net=TINY.net, smooth_sigma_px=3.0)
    assert ChainConfig.from_json(smooth.to_json()) == smooth
    plain = TINY.to_json()
    plain.pop("smooth_sigma_px")  # a config without the entry loads as "no smoothing"
    assert ChainConfig.from_json(plain).smooth_sigma_px == 0.0
    shipped_key = {**plain, "smooth_sigma": 3.0}  # the shipped model's config.json names it so
    assert ChainConfig.from_json(shipped_key).smooth_sigma_px == 3.0
    assert Chain(smooth).context_px == Chain(TINY).context_px + 9 * (4 + 2 + 1)
    save_model(Chain(smooth), tmp_path / "m", gsd_m=0.3)
    assert load_model(tmp_path / "m")[0].config.smooth_sigma_px == 3.0


def test_buildings_over_invalid_pixels_carry_no_evidence():
    """A building drawn where the image is invalid (nodata, padding past the raster) must not
    steer the field: it is left out, and the image is not blacked out (that would draw a false
    edge)."""
    from geoalign.rasterize import rasterize_map
    from shapely.geometry import box

    pred = load_predictor()
    rng = np.random.default_rng(0)
    image = rng.random((3, 64, 64)).astype(np.float32)
    valid = np.ones((64, 64), bool)
    valid[:, 40:] = False
    inside = [box(8, 8, 24, 20)]
    outside = [box(44, 30, 60, 50)]
    with_outside = rasterize_map(inside + outside, (64, 64))
    only_inside = rasterize_map(inside, (64, 64))
    a = pred.predict(image, valid, with_outside)
    b = pred.predict(image, valid, only_inside)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a).max() > 0  # the building inside does produce a field
    # same as an all-valid image with the map masked: the image itself is used as given
    np.testing.assert_array_equal(a, pred.predict(image, np.ones_like(valid), only_inside))
    assert not np.array_equal(a, pred.predict(np.where(valid, image, 0.0).astype(np.float32), valid, only_inside))


def test_copy_with_keeps_weights_and_mode():
    chain = Chain(TINY).train()
    torch.nn.init.normal_(chain.net(0).head[-1].weight, std=0.1)  # a non-zero field
    image, map_ = torch.rand(1, 3, 32, 32), (torch.rand(1, 3, 32, 32) > 0.8).float()
    same = chain.copy_with()
    assert same.training and same is not chain
    with torch.no_grad():
        assert torch.equal(same.eval()(image, map_), chain.eval()(image, map_))
        smoothed = chain.copy_with(smooth_sigma_px=2.0)
        assert smoothed.config.smooth_sigma_px == 2.0 and chain.config.smooth_sigma_px == 0.0
        assert not torch.equal(smoothed(image, map_), chain(image, map_))


def test_fine_stages_runs_only_the_chosen_scales_with_the_same_weights():
    torch.manual_seed(0)
    chain = Chain(TINY).eval()
    torch.nn.init.normal_(chain.net(0).head[-1].weight, std=0.1)
    image, map_ = torch.rand(1, 3, 32, 32), (torch.rand(1, 3, 32, 32) > 0.8).float()
    fine = chain.fine_stages((0, 1))
    assert fine.config.scales == (1, 0) and chain.config.scales == (2, 1, 0)
    assert fine.context_px < chain.context_px
    with torch.no_grad():
        # scales 1 and 0 of the shared net on the unmoved map: the chain started at scale 1
        one = Chain(ChainConfig(scales=(1, 0), net=TINY.net)).eval()
        one.load_state_dict(chain.state_dict())
        assert torch.equal(fine(image, map_), one(image, map_))
        assert not torch.equal(fine(image, map_), chain(image, map_))
    unshared = Chain(ChainConfig(scales=(2, 1, 0), shared=False, net=TINY.net))
    sub = unshared.fine_stages((0,))
    assert set(sub.nets) == {"0"} and torch.equal(sub.net(0).head[0].weight, unshared.net(0).head[0].weight)
    with pytest.raises(OptionError, match="no network for scale"):
        unshared.fine_stages((3, 0))


def test_untied_chain_gives_the_shared_chains_field_with_one_net_per_scale():
    torch.manual_seed(0)
    chain = Chain(TINY).eval()
    torch.nn.init.normal_(chain.net(0).head[-1].weight, std=0.1)
    image, map_ = torch.rand(1, 3, 32, 32), (torch.rand(1, 3, 32, 32) > 0.8).float()
    untied = chain.untied()
    assert not untied.config.shared and set(untied.nets) == {"2", "1", "0"} and not untied.training
    assert untied.net(1) is not untied.net(0)
    with torch.no_grad():
        field = chain(image, map_)
        assert field.abs().max() > 0.01 and torch.equal(untied(image, map_), field)
        untied.net(2).head[-1].weight.add_(0.05)  # one scale's net changes, the shared chain's do not
        assert torch.equal(chain.untied()(image, map_), field)


def test_widened_net_starts_computing_what_the_narrow_one_computes(tmp_path):
    """A wider network at one scale holds the narrow one's weights: the chain's field moves by under
    1 % of itself (the new feature channels join the unit-norm features, starting at 0.1 of
    their default size), the other scales' networks are untouched, and the model folder
    round-trips the sizes."""
    torch.manual_seed(0)
    chain = Chain(TINY).eval()
    for p in chain.parameters():
        p.data.add_(0.1 * torch.randn_like(p))  # away from the zero-initialized head
    image, map_ = torch.rand(1, 3, 48, 48), (torch.rand(1, 3, 48, 48) > 0.8).float()
    wide = chain.widened(1, features=10, hidden=12)
    assert not wide.training and dict(wide.config.scale_nets)[1].features == 10
    assert count_parameters(wide.net(1)) > 3 * count_parameters(chain.net(1))
    for s in (2, 0):
        assert all(torch.equal(v, chain.net(s).state_dict()[k]) for k, v in wide.net(s).state_dict().items())
    with torch.no_grad():
        field, widened = chain(image, map_), wide(image, map_)
    assert field.abs().mean() > 0.1
    assert (widened - field).abs().mean() < 0.01 * field.abs().mean()
    save_model(wide, tmp_path / "w", gsd_m=0.3)
    loaded = load_model(tmp_path / "w")[0]
    assert loaded.net(1).config.hidden == 12 and loaded.net(0).config.hidden == 4
    with torch.no_grad():
        assert torch.equal(loaded(image, map_), widened)
    fine = loaded.fine_stages((1,))
    assert fine.config.scale_nets == ((1, loaded.net(1).config),) and torch.equal(
        fine.net(1).head[0].weight, loaded.net(1).head[0].weight)
    assert loaded.fine_stages((0,)).config.scale_nets == ()
    with pytest.raises(OptionError, match="only features and hidden may grow"):
        wide.widened(1, features=4, hidden=12)
    with pytest.raises(ValueError, match="one network per scale"):
        ChainConfig(scale_nets=((1, ScaleNetConfig(features=8)),))


def test_combination_uses_the_cards_learned_scales(tmp_path):
    from geoalign.align import resolve_predictor
    from geoalign.model.card import read_card, write_card

    save_model(Chain(TINY), tmp_path / "m", gsd_m=0.3)
    combo, name, _ = resolve_predictor("local+learned", tmp_path / "m")
    assert name == "local+learned" and combo.stages[1].chain.config.scales == (2, 1, 0)
    write_card(tmp_path / "m", {**read_card(tmp_path / "m"), "combination": {"learned_scales": [0, 1]}})
    combo, _, _ = resolve_predictor("local+learned", tmp_path / "m")
    assert combo.stages[1].chain.config.scales == (1, 0)
    assert combo.context_px == combo.stages[0].context_px + combo.stages[1].chain.context_px
    learned, _, _ = resolve_predictor("learned", tmp_path / "m")  # alone: scales above 1 twice
    assert learned.chain.config.scales == (2, 2, 1, 0)
    combo, _, _ = resolve_predictor("local+learned", tmp_path / "m", learned_scales=(2,))  # the caller's
    assert combo.stages[1].chain.config.scales == (2,)
    learned, _, _ = resolve_predictor("learned", tmp_path / "m", learned_scales=(0, 1))
    assert learned.chain.config.scales == (1, 0)


def test_box_sums_and_window_offset_estimate_match_pooling():
    """Box sums over their cell counts equal avg_pool's mean (count_include_pad=False), and the
    window offset estimate equals its plain definition (window means over their mean over offsets)."""
    from geoalign.model.scale_net import box_count, box_sum, local_offset_estimate

    torch.manual_seed(0)
    x = torch.rand(2, 9, 23, 31)
    pooled = F.avg_pool2d(x, 7, 1, 3, count_include_pad=False)
    count = box_count(23, 3, x)[:, None] * box_count(31, 3, x)[None, :]
    torch.testing.assert_close(box_sum(box_sum(x, 3, -2), 3, -1) / count, pooled, atol=1e-5, rtol=0)
    offsets = torch.stack(torch.meshgrid(torch.arange(-1.0, 2), torch.arange(-1.0, 2), indexing="ij")[::-1]).reshape(2, 9)
    temperature = torch.tensor(5.0)
    prob = torch.softmax(pooled / (pooled.mean(1, keepdim=True) + 1e-3) * temperature, dim=1)
    plain = torch.einsum("nkhw,ck->nchw", prob, offsets)
    torch.testing.assert_close(local_offset_estimate(x, offsets, 3, temperature), plain, atol=1e-5, rtol=0)


def test_inference_path_equals_training_path():
    """Without gradients the cost volume is accumulated in place (faster); same output as the
    out-of-place version autograd uses."""
    torch.manual_seed(1)
    net = ScaleNet(TINY.net).eval()
    torch.nn.init.normal_(net.head[-1].weight, std=0.1)
    image, map_ = torch.rand(1, 3, 60, 70), (torch.rand(1, 3, 60, 70) > 0.9).float()
    field_train, logits_train = net(image, map_)
    with torch.inference_mode():
        field_infer, logits_infer = net(image, map_)
    assert field_train.abs().max() > 0.05  # a field that could differ
    torch.testing.assert_close(field_infer, field_train.detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(logits_infer, logits_train.detach(), atol=1e-5, rtol=0)


def test_inference_in_blocks_equals_one_piece():
    """Without gradients a big input runs in overlapping blocks (bounded memory): same output."""
    torch.manual_seed(0)
    net = ScaleNet(TINY.net).eval()
    torch.nn.init.normal_(net.head[-1].weight, std=0.1)
    image, map_ = torch.rand(1, 3, 150, 170), (torch.rand(1, 3, 150, 170) > 0.9).float()
    with torch.no_grad():
        whole = net._forward(image, map_)
        net.inference_block_px = 40  # 4 × 5 blocks
        blocks = net(image, map_)
    torch.testing.assert_close(blocks[0], whole[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(blocks[1], whole[1], atol=1e-5, rtol=0)
    field, _ = net(image, map_)  # with gradients: one piece, as in training
    assert field.requires_grad


@pytest.mark.parametrize("edges", ["zero", "replicate"])
def test_banded_filter_equals_convolution(edges):
    """filter_along (banded matrix products, chunked) = a plain 1-D convolution, along both axes."""
    from geoalign.banded import filter_along

    torch.manual_seed(2)
    x, kernel = torch.rand(2, 3, 41, 57), torch.rand(9)
    mode = "constant" if edges == "zero" else "replicate"
    for dim, pad, view in ((-1, (4, 4, 0, 0), (1, 1, 1, 9)), (-2, (0, 0, 4, 4), (1, 1, 9, 1))):
        plain = F.conv2d(F.pad(x.reshape(6, 1, 41, 57), pad, mode=mode), kernel.view(view)).reshape(x.shape)
        torch.testing.assert_close(filter_along(x, kernel, dim, edges=edges, chunk=16), plain, atol=1e-5, rtol=0)


def test_edge_tensor_matches_scipy_gaussian_gradients():
    """The torch edge tensor (banded Gaussian with scipy's reflection, np.gradient's differences)
    equals scipy.ndimage.gaussian_filter + np.gradient."""
    from scipy import ndimage

    from geoalign.baselines.features import _tensor

    band = np.random.default_rng(3).random((23, 31), dtype=np.float32)
    gy, gx = np.gradient(ndimage.gaussian_filter(band, 1.5, truncate=2.5))
    expected = np.stack([gx * gx, gx * gy, gy * gy])
    np.testing.assert_allclose(_tensor(band, 1.5), expected, atol=1e-6, rtol=1e-5)


def test_sobel_by_slices_and_cross_erosion_match_their_definitions():
    """image_gradients equals the 3×3 Sobel convolution of the replicate-padded luminance;
    erode_cross equals scipy's binary erosion (default cross, outside counted valid)."""
    from scipy import ndimage

    from geoalign.baselines.features import erode_cross
    from geoalign.model.scale_net import image_gradients

    torch.manual_seed(4)
    image = torch.rand(2, 3, 17, 23)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 4.0
    g = F.conv2d(F.pad(image.mean(1, keepdim=True), (1, 1, 1, 1), mode="replicate"), torch.stack([kx, kx.t()])[:, None])
    expected = torch.cat([g * 4.0, torch.sqrt((g**2).sum(1, keepdim=True) + 1e-6) * 4.0], dim=1)
    torch.testing.assert_close(image_gradients(image), expected, atol=1e-6, rtol=0)
    mask = np.random.default_rng(5).random((40, 53)) > 0.08
    for k in (1, 3):
        assert np.array_equal(erode_cross(mask, k), ndimage.binary_erosion(mask, iterations=k, border_value=1))


def test_align_moves_maps_by_a_coarser_inverse_and_training_by_the_exact_one(austin):
    """The shipped chain on the Austin sample (1000 px) misaligned by 8 px: the field
    ``align``'s predictor computes (inverse solved on a 2× coarser grid) is within 0.01 px of the
    exact fixed point's that training and the realignment rounds use, and not the same."""
    import rasterio
    from geoalign.deform import deform_geometries
    from geoalign.grid import PixelGrid
    from geoalign.io.vectors import read_buildings
    from geoalign.rasterize import rasterize_map
    from geoalign.train.realign import realigner

    with rasterio.open(austin["image"]) as src:
        image = src.read().astype(np.float32) / 255.0
        grid = PixelGrid(src.transform, src.width, src.height, src.crs)
    buildings = read_buildings(austin["buildings"]).to_crs(src.crs)
    geoms = grid.to_pixels(np.asarray(buildings.geometry.values, dtype=object))
    shape = image.shape[1:]
    phi = random_smooth_field(shape, max_amplitude_px=8.0, correlation_length_px=128.0, rng=3)
    map_ = rasterize_map(deform_geometries(geoms, phi), shape)
    pred = load_predictor()
    assert pred.inversion_step_px == 2
    coarse = pred.predict(image, np.ones(shape, bool), map_)
    pred.inversion_step_px = 1
    exact = pred.predict(image, np.ones(shape, bool), map_)
    change = np.hypot(*(coarse - exact))
    assert np.abs(exact).max() > 2.0  # the chain does move the buildings
    assert 0 < change.max() < 0.01
    staged = realigner(pred.chain, 0.3, "local+learned", (3, 2, 1))
    assert staged.stages[1].inversion_step_px == 1
    assert realigner(pred.chain, 0.3, "learned", (1,)).inversion_step_px == 1
