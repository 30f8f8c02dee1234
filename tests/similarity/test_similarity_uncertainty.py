"""Uncertainty, kernel means, shift and denoising factor against brute force."""

from __future__ import annotations

import numpy as np
import torch

import similarity as sim
from similarity_reference import brute_jacobians, brute_kc


def _outputs(model, x, output):
    with torch.no_grad():
        y = model(x)
        y = output(y) if output is not None else y
    return y.reshape(len(x), -1).numpy()


def test_uncertainty_is_norm_over_summed_inner_kernel(case):
    model, x, output = case
    J = brute_jacobians(model, x, output)
    kI = np.einsum("aip,bip->ab", J, J)
    expected = np.diag(kI) / kI.sum(1)
    np.testing.assert_allclose(sim.uncertainty(model, x, output=output, chunk_size=4).numpy(), expected, rtol=1e-9)
    expected_ref = np.einsum("aip,aip->a", J[:3], J[:3]) / np.einsum("aip,bip->ab", J[:3], J[3:]).sum(1)
    got = sim.uncertainty(model, x[:3], reference=x[3:], output=output)
    np.testing.assert_allclose(got.numpy(), expected_ref, rtol=1e-9)


def test_shift_is_prediction_minus_kernel_weighted_mean(case):
    model, x, output = case
    kc = brute_kc(brute_jacobians(model, x, output))
    y = _outputs(model, x, output)
    expected = y - (kc @ y) / kc.sum(1, keepdims=True)
    got = sim.shift(model, x, output=output, chunk_size=4, batch_size=5)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-8, atol=1e-10)


def test_kernel_mean_against_a_separate_reference(case):
    model, x, output = case
    J = brute_jacobians(model, x, output)
    kc = brute_kc(J[:4], J[4:])
    v = torch.randn(len(x) - 4, 3)
    got = sim.kernel_mean(model, x[:4], v, reference=x[4:], output=output)
    np.testing.assert_allclose(got.numpy(), (kc @ v.numpy()) / kc.sum(1, keepdims=True), rtol=1e-8)


def test_denoising_factor_exact_and_sketched(mlp2, xs):
    kc = brute_kc(brute_jacobians(mlp2, xs))
    expected = np.sqrt((kc ** 2).sum(1)) / kc.sum(1)
    exact = sim.denoising_factor(mlp2, xs, chunk_size=4, block_bytes=1)
    np.testing.assert_allclose(exact.numpy(), expected, rtol=1e-9)
    approx = sim.denoising_factor(mlp2, xs, method="sketch", sketch_dim=4096)
    np.testing.assert_allclose(approx.numpy(), expected, rtol=0.1)
