"""`geoalign train` writes, per realignment round, the similarity module's view of a sample of the
round's training patches (densities and pair similarities), checked against brute-force Jacobians."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from geoalign.dataset import DatasetConfig, SourcePair, build_dataset
from geoalign.model.chain import ChainConfig
from geoalign.model.checkpoint import load_model
from geoalign.model.scale_net import ScaleNetConfig
from geoalign.report.stats import centre, patch_net
from geoalign.train.round_similarity import BINS, FOLDER, ROUND_FILE, SUMMARY_PNG, load_round, sample_patches

TINY = ChainConfig(scales=(1, 0), net=ScaleNetConfig(features=4, hidden=4, range_px=2.5))


@pytest.fixture(scope="module")
def trained(austin, tmp_path_factory):
    from geoalign.train.run import train_model

    root = tmp_path_factory.mktemp("round_sim")
    ds = root / "ds"
    build_dataset([SourcePair(austin["image"], austin["buildings"])], ds,
                  DatasetConfig(scales=(1, 0), patch_px=32, stride_fraction=0.5, gsd_m=1.2, holdout_fraction=0.25),
                  progress=False)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_model(ds, root / "model", work_dir=root / "work", rounds=2, steps=2, pretrain_steps=0,
                    synthetic_weight=0.0, batch_size=2, progress=False, chain_config=TINY)
    finally:
        torch.set_num_threads(old)
    return root


def _brute_force(net: torch.nn.Module, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """k^C (trace) and k^{C,rot} over all pairs, from per-sample Jacobians of the centre displacement."""
    params = [p for p in net.parameters() if p.requires_grad]
    J = []
    for i in range(len(x)):
        y = centre(net(x[i:i + 1]))[0]
        grads = [torch.autograd.grad(y[c], params, retain_graph=True, allow_unused=True) for c in range(2)]
        J.append(torch.stack([torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                         for g, p in zip(gs, params)]) for gs in grads]).double())
    J = torch.stack(J)  # (N, 2, p)
    K = torch.einsum("iap,jbp->ijab", J, J)
    evals, evecs = torch.linalg.eigh(K[range(len(x)), range(len(x))])
    inv_sqrt = evecs @ torch.diag_embed(evals.rsqrt()) @ evecs.transpose(-1, -2)
    KC = inv_sqrt[:, None] @ K @ inv_sqrt[None]
    trace = KC.diagonal(dim1=-2, dim2=-1).sum(-1) / 2
    rot = 0.5 * torch.sqrt((KC ** 2).sum((-1, -2)) + 2 * torch.linalg.det(KC))
    return trace.numpy(), rot.numpy()


def test_train_writes_similarity_histograms_per_round(trained):
    model_dir, rounds_dir = trained / "model", trained / "work" / "rounds"
    for r in (0, 1):
        for ext in ("npz", "png"):
            assert (rounds_dir / f"round{r}" / "model" / f"{ROUND_FILE}.{ext}").stat().st_size > 0
            assert (model_dir / FOLDER / f"round{r}.{ext}").read_bytes() == \
                (rounds_dir / f"round{r}" / "model" / f"{ROUND_FILE}.{ext}").read_bytes()
    assert (model_dir / SUMMARY_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (model_dir / FOLDER / "round2.npz").exists()


@pytest.mark.parametrize("r", [0, 1])
def test_round_numbers_are_the_similarity_of_the_sampled_patches(trained, r):
    """Densities = row sums of k^C / n (self included); pair histogram = k^{C,rot} of distinct pairs;
    both against brute-force Jacobians of the round's own weights on the patches it names."""
    rdir = trained / "work" / "rounds" / f"round{r}"
    arrays = load_round(rdir / "model" / f"{ROUND_FILE}.npz")
    meta = json.loads(str(arrays["meta_json"]))
    assert meta["round"] == r and meta["scales"] == [1]  # the scales align runs (learned_scales)
    ds = trained / "ds" if r == 0 else rdir / "dataset"
    x, idx = sample_patches(ds, 1, meta["patches"], 0 + 1000 * r + 1)
    np.testing.assert_array_equal(idx, arrays["s1/patch_index"])
    n = len(x)
    assert n >= 20
    chain, _ = load_model(rdir / "model")
    trace, rot = _brute_force(patch_net(chain, 1), x)
    np.testing.assert_allclose(arrays["s1/density"], trace.sum(1) / n, rtol=1e-4, atol=1e-6)
    off = ~np.eye(n, dtype=bool)
    expected, edges = np.histogram(np.clip(rot[off], 0, 1), bins=BINS, range=(0, 1))
    np.testing.assert_allclose(arrays["s1/pair_edges"], edges, atol=1e-12)
    assert arrays["s1/pair_counts"].sum() == n * (n - 1)
    # a pair on a bin edge may fall either side in float32: counts agree up to a few pairs per bin
    assert np.abs(arrays["s1/pair_counts"] - expected).max() <= max(2, int(1e-3 * n * n))
    assert 0 < arrays["s1/density"].min() and arrays["s1/density"].max() <= 1 + 1e-6
