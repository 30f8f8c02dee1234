"""Trainer: augmentations keep the field consistent, resume equals uninterrupted, realignment rounds, learning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from geoalign.dataset import DatasetConfig, SourcePair
from geoalign.deform import random_smooth_field, warp_raster
from geoalign.errors import OptionError
from geoalign.model.chain import Chain, ChainConfig
from geoalign.model.scale_net import ScaleNetConfig
from geoalign.synthetic import build_synthetic_dataset, render_city
from geoalign.train import TrainConfig, TrainSet, train_chain
from geoalign.train.augment import hflip_batch, rot90_batch
from geoalign.train.realign import realign_rounds
from geoalign.train.trainer import HISTORY

TINY = ChainConfig(scales=(1, 0), net=ScaleNetConfig(features=4, hidden=4, range_px=2.5))


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return build_synthetic_dataset(tmp_path_factory.mktemp("s") / "synth", n_train=48, n_val=16, patch_px=32,
                                   progress=False)


def test_render_city_gives_image_and_buildings():
    img, valid, geoms = render_city((64, 64), np.random.default_rng(0), building_px=12)
    assert img.shape == (3, 64, 64) and img.dtype == np.float32 and valid.all()
    assert 0 <= img.min() and img.max() <= 1 and len(geoms) > 0


@pytest.mark.parametrize("k,flip", [(1, False), (2, False), (3, True), (0, True)])
def test_rotations_and_flips_turn_the_field(k, flip):
    rng = np.random.default_rng(0)
    true = np.clip(random_smooth_field((40, 40), max_amplitude_px=1, correlation_length_px=4, rng=rng)[:1] + 0.5, 0, 1)
    field = random_smooth_field((40, 40), max_amplitude_px=3, correlation_length_px=12, rng=rng)
    mis = warp_raster(true, field)

    def tf(x, is_field=False):
        t = rot90_batch(torch.from_numpy(np.ascontiguousarray(x))[None], k, is_field=is_field)
        return (hflip_batch(t, is_field=is_field) if flip else t)[0].numpy()

    got = warp_raster(tf(true), tf(field, True))
    assert np.abs(got - tf(mis))[:, 5:-5, 5:-5].max() < 1e-3


def _cfg(steps, **kw):
    return TrainConfig(steps=steps, batch_size=4, crop_px=24, checkpoint_every=3, val_every=3, val_pairs=8, **kw)


def test_killed_and_resumed_training_matches_uninterrupted(synth, tmp_path):
    torch.manual_seed(0)
    a = Chain(TINY)
    init = {k: v.clone() for k, v in a.state_dict().items()}
    train_chain(a, [TrainSet(synth)], tmp_path / "a", _cfg(6), progress=False)
    b = Chain(TINY)
    b.load_state_dict(init)
    train_chain(b, [TrainSet(synth)], tmp_path / "b", _cfg(6), progress=False, max_seconds=0.0)  # "killed" after 1 step
    c = Chain(TINY)  # a fresh process: weights come from the checkpoint
    hist = train_chain(c, [TrainSet(synth)], tmp_path / "b", _cfg(6), progress=False, resume=True)
    for (k, va), vc in zip(a.state_dict().items(), c.state_dict().values()):
        assert torch.allclose(va, vc, atol=1e-5), k
    assert [h["step"] for h in hist] == [0, 3, 6]
    assert len((tmp_path / "b" / HISTORY).read_text().splitlines()) == 3


def test_tail_averaged_run_ends_on_the_mean_of_its_last_steps_and_resumes(synth, tmp_path):
    torch.manual_seed(0)
    init = {k: v.clone() for k, v in Chain(TINY).state_dict().items()}

    def fresh() -> Chain:
        chain = Chain(TINY)
        chain.load_state_dict(init)
        return chain

    averaged = fresh()
    hist = train_chain(averaged, [TrainSet(synth)], tmp_path / "avg", _cfg(6, average_tail=0.5), progress=False)
    assert [(h["step"], h.get("tail_mean_of_steps")) for h in hist] == [(0, None), (3, None), (6, None), (6, 3)]
    after_step = []  # the plain run, one step per process: its weights after every step
    for _ in range(6):
        chain = fresh()
        train_chain(chain, [TrainSet(synth)], tmp_path / "plain", _cfg(6), progress=False, resume=True,
                    max_seconds=0.0)
        after_step.append(chain.state_dict())
    last = after_step[-1]
    for k, v in averaged.state_dict().items():
        mean = torch.stack([w[k] for w in after_step[3:]]).mean(0)  # steps 4, 5, 6
        assert torch.allclose(v, mean, atol=1e-6), k
    assert max((averaged.state_dict()[k] - last[k]).abs().max().item() for k in last) > 1e-4
    for _ in range(7):  # killed after every step, the tail's mean carried by the checkpoints; then resumed once done
        resumed = fresh()
        hist = train_chain(resumed, [TrainSet(synth)], tmp_path / "killed", _cfg(6, average_tail=0.5),
                           progress=False, resume=True, max_seconds=0.0)
    assert [h.get("tail_mean_of_steps") for h in hist].count(3) == 1
    for (k, va), vr in zip(averaged.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(va, vr, atol=1e-6), k


def test_realignment_loop_runs_two_rounds_and_records_metrics(austin, tmp_path):
    sources = [SourcePair(austin["image"], austin["buildings"], "train")]
    dcfg = DatasetConfig(scales=(1, 0), patch_px=32, stride_fraction=1.0, gsd_m=1.2, holdout_fraction=0.25)
    torch.manual_seed(0)
    chain, metrics = realign_rounds(sources, tmp_path / "w", rounds=2, dataset_config=dcfg,
                                    train_config=_cfg(3), chain=Chain(TINY), truth=[austin["buildings"]],
                                    progress=False)
    assert [m["round"] for m in metrics] == [0, 1]
    for r, m in enumerate(metrics):
        assert m["d0_median_error_px"] == 0.0 and m["realigned_median_error_px"] >= 0.0
        assert (tmp_path / "w" / f"round{r}" / "model" / "weights.pt").exists()
        assert json.loads((tmp_path / "w" / f"round{r}" / "metrics.json").read_text())["round"] == r
    assert (tmp_path / "w" / "round1" / "dataset" / "manifest.json").exists()  # D1 built from realigned maps


@pytest.mark.parametrize("smooth_px,symmetries", [(0.0, 1), (24.0, 1), (0.0, 2)])
def test_realignment_with_the_classical_stage_first_removes_a_label_offset(austin, tmp_path, smooth_px, symmetries):
    """realign_with="local+learned": D0 shifted by 2.4 m comes back within a fraction of that
    (an untrained chain adds nothing; the classical local search does the work); averaging the
    realigning field over neighbouring buildings, or the chain's over flips, keeps a shift they all share."""
    import geopandas as gpd

    gdf = gpd.read_file(austin["buildings"])
    noisy = tmp_path / "noisy.geojson"
    gdf.set_geometry(gdf.geometry.translate(2.4, -1.8)).to_file(noisy, driver="GeoJSON")  # UTM metres: 3 m
    sources = [SourcePair(austin["image"], noisy, "train")]
    dcfg = DatasetConfig(scales=(1, 0), patch_px=32, stride_fraction=1.0, gsd_m=0.6, holdout_fraction=0.25)
    torch.manual_seed(0)
    _, metrics = realign_rounds(sources, tmp_path / "w", rounds=1, dataset_config=dcfg, train_config=_cfg(2),
                                chain=Chain(TINY), truth=[austin["buildings"]], progress=False,
                                realign_with="local+learned", learned_scales=(0,), realign_smooth_px=smooth_px,
                                realign_symmetries=symmetries)
    m = metrics[0]
    assert m["realign_with"] == "local+learned [0]" and m["realign_smooth_px"] == smooth_px
    assert m["realign_symmetries"] == symmetries
    assert m["d0_median_error_px"] > 4.0 and m["realigned_median_error_px"] < 0.3 * m["d0_median_error_px"]
    with pytest.raises(OptionError, match="realign_with"):
        realign_rounds(sources, tmp_path / "x", rounds=1, realign_with="tvl1")


def test_learning_on_synthetic_pairs_beats_predict_zero(tmp_path):
    """The scale network fits synthetic pairs: error at map edges falls below predict-zero."""
    from geoalign.dataset import PairDataset
    from geoalign.train.trainer import evaluate_pairs

    root = build_synthetic_dataset(tmp_path / "s", n_train=8, n_val=1, patch_px=48, progress=False)
    torch.manual_seed(0)
    chain = Chain(ChainConfig(scales=(0,)))
    cfg = TrainConfig(steps=40, batch_size=8, crop_px=48, lr=3e-3, warmup_steps=1, checkpoint_every=1000,
                      val_every=1000, val_pairs=1, augment=False)
    train_chain(chain, [TrainSet(root)], tmp_path / "run", cfg, progress=False)
    m = evaluate_pairs(chain.net(0).eval(), PairDataset(root, 0, "train"), 8)
    assert m["mean_epe_px"] < 0.9 * m["mean_zero_px"]


def test_vertices_inside_image_marks_whole_buildings_on_the_raster(austin, tmp_path):
    """Austin's crop cuts some buildings at its edge: their vertices are all False, the others all True."""
    import geopandas as gpd
    import shapely

    from geoalign.io.raster import RasterReader
    from geoalign.train.realign import vertices_inside_image

    with RasterReader(austin["image"]) as r:
        crs, (x0, y0, x1, y1) = r.crs, tuple(r.bounds)
    gdf = gpd.read_file(austin["buildings"]).to_crs(crs)
    edge = shapely.box(x0 - 10.0, y0 + 20.0, x0 + 10.0, y0 + 40.0)  # straddles the west edge
    inner = shapely.box(x0 + 20.0, y0 + 20.0, x0 + 40.0, y0 + 40.0)
    extra = gpd.GeoDataFrame(geometry=[edge, inner], crs=crs)
    path = tmp_path / "b.geojson"
    gpd.GeoDataFrame(geometry=list(gdf.geometry.values) + list(extra.geometry.values), crs=crs).to_file(path)
    got = vertices_inside_image(path, austin["image"])
    xy = shapely.get_coordinates(gpd.read_file(path).to_crs(crs).geometry.values)
    assert len(got) == len(xy)
    assert not got[-10:-5].any() and got[-5:].all()  # the two 5-vertex boxes
    on_raster = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    assert (got <= on_raster).all()  # a vertex off the raster is never counted inside
    n_cut = len(gdf) - int(shapely.within(gdf.geometry.values, shapely.box(x0, y0, x1, y1)).sum())
    assert 5 <= n_cut < len(gdf) // 2 and 0.5 < got.mean() < 0.95


def test_the_realigner_averages_the_chain_over_symmetries_inside_the_classical_stage():
    from geoalign.inference.smooth import SmoothedPredictor
    from geoalign.inference.symmetry import SymmetryAveragedPredictor
    from geoalign.train.realign import realigner

    alone = realigner(Chain(TINY), 0.3, "learned", (0,), symmetries=4)
    assert isinstance(alone, SymmetryAveragedPredictor) and len(alone.symmetries) == 4
    staged = realigner(Chain(TINY), 0.3, "local+learned", (0,), smooth_px=16.0, symmetries=2)
    assert isinstance(staged, SmoothedPredictor)
    learned = staged.inner.stages[1]
    assert isinstance(learned, SymmetryAveragedPredictor) and learned.inner.chain.config.scales == (0,)
