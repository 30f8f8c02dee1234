"""A tiny model folder with training statistics, and one synthetic tile, for the trust report."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from affine import Affine

from geoalign.dataset import DatasetConfig, SourcePair, build_dataset
from geoalign.model.card import write_card
from geoalign.model.chain import Chain, ChainConfig
from geoalign.model.checkpoint import save_model
from geoalign.model.scale_net import ScaleNetConfig
from geoalign.rasterize import rasterize_map
from geoalign.report.calibration import FEATURES, Calibration
from geoalign.report.stats import compute_training_stats
from geoalign.synthetic import render_city

TINY = ChainConfig(scales=(1, 0), net=ScaleNetConfig(features=4, hidden=4, range_px=2.5))
GSD_M = 1.2
PATCH_PX = 32


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Per-sample backward passes of tiny convolutions: on 2 shared cores a second thread only
    spins (measured 40x slower)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def tiny_dataset(austin, tmp_path_factory):
    root = tmp_path_factory.mktemp("trust_ds") / "ds"
    build_dataset([SourcePair(austin["image"], austin["buildings"])], root,
                  DatasetConfig(scales=(1, 0), patch_px=PATCH_PX, stride_fraction=0.5, gsd_m=GSD_M,
                                holdout_fraction=0.25), progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_model(tiny_dataset, tmp_path_factory):
    """Random tiny chain (the last layer made non-zero so gradients reach every layer) with its
    training statistics over 24 patches; exemplar row sketches exact (dimension p)."""
    torch.manual_seed(0)
    chain = Chain(TINY)
    with torch.no_grad():
        for p in chain.net(1).head[-1].parameters():
            p.normal_(0, 0.1)
    folder = tmp_path_factory.mktemp("trust_model") / "model"
    save_model(chain, folder, gsd_m=GSD_M)
    write_card(folder, {"gsd_m": GSD_M, "scales": [1, 0], "combination": {"learned_scales": [1]}})
    p = sum(x.numel() for x in chain.parameters())
    compute_training_stats(folder, tiny_dataset, exemplar_dim=p, max_patches=24)
    return folder


def constant_calibration(error_px: float) -> Calibration:
    """A calibration that expects ``error_px`` for every building."""
    n = len(FEATURES)
    return Calibration(FEATURES, np.zeros(n), np.ones(n), np.zeros(n), float(np.log(error_px + 0.5)),
                       np.zeros(n), {"data": "test"})


@pytest.fixture(scope="session")
def city_tile():
    """A 128 px synthetic city: image, valid, buildings (px), map raster, a small smooth field."""
    rng = np.random.default_rng(3)
    image, valid, geoms = render_city((128, 128), rng, building_px=14)
    map_ = rasterize_map(geoms, (128, 128))
    yy, xx = np.mgrid[:128, :128] / 128.0
    field = np.stack([1.5 * np.sin(2 * xx), -1.0 * np.cos(3 * yy)]).astype(np.float32)
    transform = Affine(GSD_M, 0, 500000.0, 0, -GSD_M, 4000000.0)
    return {"image": image, "valid": valid, "geoms": geoms, "map": map_, "field": field, "transform": transform}
