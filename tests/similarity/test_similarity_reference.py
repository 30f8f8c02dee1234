"""Scoring against stored reference sums equals the estimators computed with the reference at hand."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import similarity as sim
from similarity_reference import brute_correlation, brute_jacobians, brute_kc


def _split(x):
    return x[:4], x[4:]


def test_scores_from_stored_sums_equal_brute_force(case):
    model, x, output = case
    queries, ref = _split(x)
    J, Jr = brute_jacobians(model, queries, output), brute_jacobians(model, ref, output)
    d, p = J.shape[1:]
    values = torch.randn(len(ref), 3)
    stats = sim.reference_stats(model, ref, values, output, sketch_dim=d * p, exemplars=[0, 2, 4],
                                exemplar_dim=p, chunk_size=3)
    got = sim.score(model, queries, stats, output, chunk_size=2)
    kc = brute_kc(J, Jr)
    np.testing.assert_allclose(got["density"].numpy(), kc.sum(1), rtol=1e-9)
    kI = np.einsum("aip,bip->ab", J, Jr)
    np.testing.assert_allclose(got["uncertainty"].numpy(), np.einsum("aip,aip->a", J, J) / kI.sum(1), rtol=1e-9)
    np.testing.assert_allclose(got["kernel_mean"].numpy(), kc @ values.numpy() / kc.sum(1, keepdims=True),
                               rtol=1e-8)
    np.testing.assert_allclose(got["denoising_factor"].numpy(),
                               np.sqrt((kc ** 2).sum(1)) / kc.sum(1), rtol=1e-8)
    np.testing.assert_allclose(got["exemplar_similarity"].numpy(), kc[:, [0, 2, 4]], rtol=1e-8, atol=1e-12)
    if d == 2:
        KC = brute_correlation(J, Jr)[:, [0, 2, 4]]
        rot = 0.5 * np.sqrt((KC[..., 0, 0] + KC[..., 1, 1]) ** 2 + (KC[..., 0, 1] - KC[..., 1, 0]) ** 2)
        np.testing.assert_allclose(got["exemplar_rotation_similarity"].numpy(), rot, rtol=1e-8, atol=1e-12)


def test_scores_equal_the_library_estimators_with_the_reference_at_hand(case):
    model, x, output = case
    queries, ref = _split(x)
    stats = sim.reference_stats(model, ref, output=output, sketch_dim=16, seed=7)
    got = sim.score(model, queries, stats, output)
    np.testing.assert_allclose(got["density"].numpy(),
                               sim.soft_density(model, queries, ref, output).numpy(), rtol=1e-9)
    np.testing.assert_allclose(got["uncertainty"].numpy(),
                               sim.uncertainty(model, queries, ref, output).numpy(), rtol=1e-9)
    # sketch smaller than d·p: the same estimate as denoising_factor(method='sketch'), same seed
    expected = sim.denoising_factor(model, queries, ref, output, method="sketch", sketch_dim=16, seed=7)
    np.testing.assert_allclose(got["denoising_factor"].numpy(), expected.numpy(), rtol=1e-8)


def test_stats_round_trip_through_npz_without_pickle(mlp2, xs):
    stats = sim.reference_stats(mlp2, xs[4:], torch.randn(len(xs) - 4, 2), exemplars=[1], sketch_dim=8)
    buf = io.BytesIO()
    np.savez(buf, **stats.to_arrays(prefix="s1/"))
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as arrays:
        back = sim.ReferenceStats.from_arrays(arrays, prefix="s1/")
    a, b = sim.score(mlp2, xs[:4], stats), sim.score(mlp2, xs[:4], back)
    assert back.count == len(xs) - 4
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())


def test_score_refuses_statistics_of_another_model(mlp, mlp2, xs):
    stats = sim.reference_stats(mlp, xs)
    wider = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1)).double()
    with pytest.raises(ValueError, match="parameters"):
        sim.score(wider, xs, stats)


class _ChannelsLastCNN(torch.nn.Module):
    """Runs its convolutions in channels_last memory format, which torch.func cannot vmap."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Conv2d(2, 3, 3, padding=1)
        self.scale = torch.nn.Parameter(torch.tensor(0.7))  # a bare parameter: not the fused engine
        self.b = torch.nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x):
        h = torch.tanh(self.a(x.contiguous(memory_format=torch.channels_last))) * self.scale
        return self.b(h).contiguous()


def test_models_torch_func_cannot_vmap_get_looped_jacobians(images):
    from similarity_reference import centre

    torch.manual_seed(5)
    model = _ChannelsLastCNN().double().eval()
    got = sim.jacobians(model, images, centre, chunk_size=4)
    np.testing.assert_allclose(got.numpy(), brute_jacobians(model, images, centre), rtol=1e-10, atol=1e-12)
    kc = brute_kc(brute_jacobians(model, images, centre))
    np.testing.assert_allclose(sim.soft_density(model, images, output=centre).numpy(), kc.sum(1), rtol=1e-9)
    stats = sim.reference_stats(model, images[3:], output=centre)
    np.testing.assert_allclose(sim.score(model, images[:3], stats, centre)["density"].numpy(),
                               brute_kc(brute_jacobians(model, images[:3], centre),
                                        brute_jacobians(model, images[3:], centre)).sum(1), rtol=1e-9)


@pytest.mark.parametrize("path", ["fused", "vmap", "looped"])
def test_score_returns_the_outputs_its_jacobians_are_of(path, cnn, images, monkeypatch):
    from similarity import _fused
    from similarity_reference import centre

    model = _ChannelsLastCNN().double().eval() if path == "looped" else cnn
    if path == "vmap":
        monkeypatch.setattr(_fused, "applies", lambda problem: False)
    stats = sim.reference_stats(model, images[3:], output=centre)
    got = sim.score(model, images[:3], stats, centre, chunk_size=2, outputs=True)
    with torch.no_grad():
        want = centre(model(images[:3]))
    assert got["output"].shape == want.shape and float(want.abs().max()) > 1e-3
    np.testing.assert_allclose(got["output"].numpy(), want.numpy(), rtol=1e-10, atol=1e-12)
    assert "output" not in sim.score(model, images[:3], stats, centre)
