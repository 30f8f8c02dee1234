"""Training statistics and per-tile trust against the similarity module's exact values; the gate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import similarity as sim
from geoalign.inference.compose import move_map
from geoalign.baselines.local_offset import LocalOffsetPredictor
from geoalign.dataset.torch_dataset import PairDataset
from geoalign.model.checkpoint import load_model
from geoalign.report.stats import TrainingStats, centre, patch_net
from geoalign.report.trust import TrustReport

from .conftest import constant_calibration


def _training_patches(dataset, n):
    ds = PairDataset(dataset, 1, "train")
    rng = np.random.default_rng(0)  # the subset compute_training_stats draws (seed 0)
    idx = np.sort(rng.choice(len(ds), size=min(len(ds), n), replace=False))
    return torch.stack([torch.cat([ds[int(i)]["image"], ds[int(i)]["map"]]) for i in idx])


def test_stored_training_densities_equal_soft_density_with_the_data_at_hand(tiny_model, tiny_dataset):
    stats = TrainingStats.load(tiny_model)
    st = stats.scales[1]
    chain, _ = load_model(tiny_model)
    model = patch_net(chain.eval(), 1)
    x = _training_patches(tiny_dataset, 24)
    exact = sim.soft_density(model, x, output=centre).numpy()
    assert st.reference.count == len(x) >= 16
    np.testing.assert_allclose(np.sort(st.densities), np.sort(exact), rtol=2e-4)
    np.testing.assert_allclose(st.density_quantiles, np.quantile(exact, np.linspace(0, 1, 101)), rtol=2e-4)
    assert 1.0 <= st.densities.min() and st.densities.max() <= len(x) + 1e-6  # includes k^C(x,x) = 1
    assert stats.meta["scales"] == [1] and st.exemplar_thumbs.shape == (len(x), 4, 32, 32)


def _report(tiny_model, tile, **kw):
    h, w = tile["valid"].shape
    return TrustReport(buildings_px=tile["geoms"], grid_shape=(h, w), work_transform=tile["transform"],
                       model_dir=tiny_model, search_px=8, **kw)


def _feed(report, tile):
    h, w = tile["valid"].shape
    report.on_tile(inp=(0, h, 0, w), core=(0, h, 0, w), image=tile["image"], valid=tile["valid"],
                   map_=tile["map"], field=tile["field"])


def test_tile_statistics_equal_the_similarity_modules_exact_values(tiny_model, tiny_dataset, city_tile):
    report = _report(tiny_model, city_tile, calibration=constant_calibration(1.0))
    _feed(report, city_tile)
    result = report.finish()
    assert report.tile_px == 64 and len(result.tiles) == 4  # 32 px patches of scale 1, 2 x 2 tiles
    # the learned stage's input: the map as moved by the classical stage, cut per tile
    local = LocalOffsetPredictor(search_px=8).predict(city_tile["image"], city_tile["valid"], city_tile["map"])
    moved = move_map(city_tile["map"], local)
    chain, _ = load_model(tiny_model)
    model = patch_net(chain.eval(), 1)
    x_train = _training_patches(tiny_dataset, 24)
    checked = 0
    for t in result.tiles:
        c0, r0, c1, r1 = t["bounds_px"]
        patch = report.scorer.patches(city_tile["image"], moved, np.array([[(r0 + r1) / 2, (c0 + c1) / 2]]))
        if patch[:, 3].sum() == 0:
            assert np.isnan(t["density"])
            continue
        checked += 1
        ns = sim.soft_density(model, patch, reference=x_train, output=centre).item()
        unc = sim.uncertainty(model, patch, reference=x_train, output=centre).item()
        sh = sim.shift(model, patch, reference=x_train, output=centre)[0].numpy() * 2  # scale-1 px → working px
        den = sim.denoising_factor(model, patch, reference=x_train, output=centre, method="sketch",
                                   sketch_dim=256, seed=0).item()
        assert t["density"] == pytest.approx(ns, rel=2e-4)
        assert t["uncertainty"] == pytest.approx(unc, rel=2e-4)
        assert t["denoising_factor"] == pytest.approx(den, rel=2e-3)
        assert t["shift_px"] == pytest.approx(float(np.hypot(*sh)), rel=2e-3, abs=1e-6)
        assert t["shift_m"] == pytest.approx(t["shift_px"] * 1.2)
        st = report.stats.scales[1]
        assert t["density_quantile"] == pytest.approx((st.densities <= ns * (1 + 1e-9)).mean(), abs=1 / 24 + 1e-9)
    assert checked >= 2
    import shapely
    inside = shapely.intersects(city_tile["geoms"], shapely.box(0, 0, 128, 128))  # touching the raster
    assert not inside.all()
    assert sum(t["n_buildings"] for t in result.tiles) == inside.sum() > 0
    assert np.isfinite(result.expected_error_px).sum() == inside.sum()
    ok = np.isfinite(result.expected_error_px)
    low = np.array([result.tiles[i]["low_density"] for i in result.tile_of_building[ok]])
    assert np.allclose(result.expected_error_px[ok], 1.0)
    assert np.allclose(result.confidence[ok][~low], 0.8) and np.allclose(result.confidence[ok][low], 0.4)


@pytest.mark.parametrize("gate_px,expected_px,quantile,gated_share", [
    (None, 3.0, 0.05, 0.0),  # no gate: nothing stays behind
    (2.0, 3.0, 0.0, 1.0),  # every building expected above the gate
    (5.0, 3.0, 0.0, 0.0),  # every building below the gate, no tile low-density
    (5.0, 3.0, 1.0, None),  # below the gate: exactly the buildings of low-density tiles
])
def test_trust_gate_marks_buildings_above_the_gate_or_in_low_density_tiles(tiny_model, city_tile, gate_px,
                                                                           expected_px, quantile, gated_share):
    report = _report(tiny_model, city_tile, calibration=constant_calibration(expected_px),
                     trust_gate_px=gate_px, low_density_quantile=quantile)
    _feed(report, city_tile)
    result = report.finish()
    scored = np.isfinite(result.expected_error_px)
    assert scored.sum() >= 8
    low = np.array([result.tiles[i]["low_density"] for i in result.tile_of_building[scored]])
    assert not result.gated[~scored].any()
    if gated_share is None:
        assert low.any() and (result.gated[scored] == low).all()
        assert np.allclose(result.confidence[scored][low], 0.5 / (1 + (3.0 / 2.0) ** 2))
    else:
        assert result.gated[scored].mean() == gated_share


@pytest.mark.parametrize("expected_px", [1e3, 1e-9])
def test_the_auto_gate_keeps_in_place_buildings_whose_move_is_within_their_expected_error(tiny_model, city_tile,
                                                                                          expected_px):
    report = _report(tiny_model, city_tile, calibration=constant_calibration(expected_px),
                     trust_gate_px="auto", low_density_quantile=0.0)
    _feed(report, city_tile)
    result = report.finish()
    scored = np.isfinite(result.expected_error_px)
    moved = report.move_px[scored]
    assert scored.sum() >= 8 and (moved > 1e-6).sum() >= 4  # the tile's field moves most buildings
    assert (result.gated[scored] == (moved <= expected_px)).all()
    assert result.gated[scored].all() if expected_px > 1 else not result.gated[scored][moved > 1e-6].any()
    assert result.thresholds["trust_gate_px"] == "auto"
