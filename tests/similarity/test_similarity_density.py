"""Streamed and blocked estimators against the brute-force pairwise k^C matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import similarity as sim
from similarity_reference import brute_correlation, brute_jacobians, brute_kc


def test_soft_density_is_the_pairwise_sum_of_kc(case):
    model, x, output = case
    kc = brute_kc(brute_jacobians(model, x, output))
    ns = sim.soft_density(model, x, output=output, chunk_size=4, batch_size=5, fused=False)
    np.testing.assert_allclose(ns.numpy(), kc.sum(1), rtol=1e-9, atol=1e-10)


def test_soft_density_against_another_reference(case):
    model, x, output = case
    J = brute_jacobians(model, x, output)
    ns = sim.soft_density(model, x[:4], reference=x[4:], output=output, chunk_size=3)
    np.testing.assert_allclose(ns.numpy(), brute_kc(J[:4], J[4:]).sum(1), rtol=1e-9, atol=1e-10)


def test_threshold_density_counts_every_tau(case):
    model, x, output = case
    kc = brute_kc(brute_jacobians(model, x, output))
    taus = [-0.5, 0.0, 0.3, 0.9, 1.0 - 1e-9]
    for block_bytes in (1, 1 << 30):  # one block per chunk (recomputing), or all at once
        counts = sim.threshold_density(model, x, taus, output=output, chunk_size=4, block_bytes=block_bytes)
        expected = np.stack([(kc >= t).sum(1) for t in taus])
        np.testing.assert_array_equal(counts.numpy(), expected)


def test_positive_density_and_rotation_kind(cnn, images):
    from similarity_reference import centre
    KC = brute_correlation(brute_jacobians(cnn, images, centre))
    kc = np.trace(KC, axis1=2, axis2=3) / 2
    got = sim.positive_density(cnn, images, alpha=2.0, output=centre, chunk_size=4, block_bytes=1)
    np.testing.assert_allclose(got.numpy(), (np.clip(kc, 0, None) ** 2).sum(1), rtol=1e-9)
    a, b, c, d = KC[..., 0, 0], KC[..., 0, 1], KC[..., 1, 0], KC[..., 1, 1]
    rot = 0.5 * np.sqrt((a + d) ** 2 + (b - c) ** 2)
    got = sim.threshold_density(cnn, images, [0.5], output=centre, kind="rotation")
    np.testing.assert_array_equal(got[0].numpy(), (rot >= 0.5).sum(1))


def test_soft_density_is_the_mean_of_n_tau_over_tau(mlp, xs):
    """N_S = ∫₀¹ N_τ dτ when no k^C is negative: check the identity it rests on, per sample."""
    kc = brute_kc(brute_jacobians(mlp, xs))
    taus = np.linspace(0, 1, 2001)[1:]
    counts = sim.threshold_density(mlp, xs, taus).numpy()
    np.testing.assert_allclose(counts.mean(0), np.clip(kc, 0, None).sum(1), atol=5e-3 * len(xs))


def test_dataloader_input_gives_the_same_density(mlp2, xs):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xs), batch_size=4)
    torch.testing.assert_close(sim.soft_density(mlp2, loader), sim.soft_density(mlp2, xs))


def test_float32_model_gives_float32_density_close_to_float64(mlp2, xs):
    ns64 = sim.soft_density(mlp2, xs)
    ns32 = sim.soft_density(mlp2.float(), xs.float())
    assert ns32.dtype == torch.float32
    np.testing.assert_allclose(ns32.numpy(), ns64.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("d_out", [1, 2])
def test_soft_density_flat_reference_of_identical_inputs(d_out):
    """n copies of one input: every k^C = 1, so N_S = n exactly."""
    from similarity_reference import SmallMLP
    torch.manual_seed(0)
    model = SmallMLP(3, 8, d_out).double().eval()
    x = torch.randn(1, 3).expand(7, 3).clone()
    torch.testing.assert_close(sim.soft_density(model, x), torch.full((7,), 7.0))


def test_streamed_projections_keep_no_view_of_whole_outputs(cnn, images):
    """A centre-pixel output is a view of the whole field: kept per batch, memory would grow with N."""
    from similarity._model import make_problem
    from similarity._streams import _chunk_projections
    from similarity_reference import centre
    problem = make_problem(cnn, centre)
    tangents = problem.unflatten(torch.randn(2, problem.num_params))
    for q in (1, 2):
        out = _chunk_projections(problem, images, {k: v[:q] for k, v in tangents.items()})
        assert out.untyped_storage().nbytes() == out.numel() * out.element_size()
