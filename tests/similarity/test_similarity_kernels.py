"""Jacobians and kernels against per-sample loops; the properties the paper states."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import similarity as sim
from similarity_reference import brute_correlation, brute_jacobians


def test_jacobians_match_per_sample_backward(case):
    model, x, output = case
    J = sim.jacobians(model, x, output, chunk_size=4)
    np.testing.assert_allclose(J.numpy(), brute_jacobians(model, x, output), rtol=1e-10, atol=1e-12)


def test_jacobians_accept_a_loader_and_a_parameter_subset(mlp, xs):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xs, xs[:, 0]), batch_size=5)
    full = sim.jacobians(mlp, xs)
    np.testing.assert_allclose(sim.jacobians(mlp, loader).numpy(), full.numpy())
    last = sim.jacobians(mlp, xs, params=["4.weight", "4.bias"])
    assert last.shape == (13, 1, 9)
    np.testing.assert_allclose(last.numpy(), full[:, :, -9:].numpy())
    with pytest.raises(KeyError):
        sim.jacobians(mlp, xs, params=["nope"])


def test_kernel_and_correlation_match_the_formulas(case):
    model, x, output = case
    J = brute_jacobians(model, x, output)
    K = sim.kernel(model, x, output=output, normalized=False)
    np.testing.assert_allclose(K.numpy(), np.einsum("aip,bjp->abij", J, J), rtol=1e-10, atol=1e-12)
    KC = sim.kernel(model, x[:5], x[5:], output=output)
    np.testing.assert_allclose(KC.numpy(), brute_correlation(J[:5], J[5:]), rtol=1e-8, atol=1e-10)


def test_correlation_properties(case):
    model, x, output = case
    KC = sim.kernel(model, x, output=output)
    d = KC.shape[-1]
    eye = torch.eye(d).expand(len(x), d, d)
    torch.testing.assert_close(torch.diagonal(KC, dim1=0, dim2=1).permute(2, 0, 1), eye)
    torch.testing.assert_close(KC.transpose(0, 1), KC.transpose(-1, -2))
    assert KC.abs().max() <= 1 + 1e-12


def test_scalar_kernels_for_one_output(mlp, xs):
    g = brute_jacobians(mlp, xs)[:, 0]
    inner = g @ g.T
    norms = np.linalg.norm(g, axis=1)
    np.testing.assert_allclose(sim.similarity(mlp, xs, kind="inner").numpy(), inner, rtol=1e-10)
    np.testing.assert_allclose(sim.similarity(mlp, xs, kind="influence").numpy(),
                               inner / norms[:, None] ** 2, rtol=1e-10)
    np.testing.assert_allclose(sim.similarity(mlp, xs, kind="correlation").numpy(),
                               inner / np.outer(norms, norms), rtol=1e-10)


def test_trace_and_rotation_invariant_similarity():
    theta = torch.tensor(0.7)
    R = torch.stack([torch.stack([theta.cos(), -theta.sin()]), torch.stack([theta.sin(), theta.cos()])])
    assert sim.rotation_invariant_similarity(R).item() == pytest.approx(1.0)
    assert sim.trace_similarity(R).item() == pytest.approx(theta.cos().item())
    flip = torch.diag(torch.tensor([1.0, -1.0]))
    assert sim.rotation_invariant_similarity(flip).item() == pytest.approx(0.0)
    M = torch.randn(50, 2, 2)
    direct = 0.5 * torch.sqrt(M.square().sum((1, 2)) + 2 * torch.linalg.det(M))
    torch.testing.assert_close(sim.rotation_invariant_similarity(M), direct)
    with pytest.raises(ValueError):
        sim.rotation_invariant_similarity(torch.eye(3))


def test_cnn_kernel_inherits_translation_invariance():
    """A convnet sees two shifted copies of a pattern the same way (the paper's remark)."""
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Conv2d(3, 1, 3, padding=1)).double()
    img = torch.zeros(2, 1, 12, 12)
    patch = torch.randn(3, 3)
    img[0, 0, 2:5, 2:5] = patch
    img[1, 0, 6:9, 6:9] = patch
    out0 = lambda y: y[:, 0, 3, 3]  # noqa: E731 - at the pattern's centre in image 0
    J0 = sim.jacobians(conv, img[:1], out0)
    J1 = sim.jacobians(conv, img[1:], lambda y: y[:, 0, 7, 7])
    torch.testing.assert_close(J0, J1)


def test_zero_gradient_gives_zeros_not_nan():
    model = nn.Linear(3, 2, bias=False).double()
    x = torch.stack([torch.zeros(3), torch.ones(3)])
    KC = sim.kernel(model, x)
    assert torch.isfinite(KC).all()
    assert (KC[0] == 0).all() and (KC[:, 0] == 0).all()
    assert torch.isfinite(sim.similarity(model, x, kind="influence")).all()
    assert torch.isfinite(sim.soft_density(model, x)).all()


def test_rank_deficient_kernel_is_handled():
    """Two outputs with parallel gradients: K(x,x) has rank 1; K^C stays finite and bounded."""
    model = nn.Linear(3, 1).double()
    dup = lambda y: torch.cat([y, 2 * y], 1)  # noqa: E731
    x = torch.randn(4, 3)
    KC = sim.kernel(model, x, output=dup)
    assert torch.isfinite(KC).all() and KC.abs().max() <= 1 + 1e-9
    # The one direction left is the normalized gradient: k^C summed over both rows = 1 on x=x'.
    assert torch.diagonal(KC, dim1=0, dim2=1).diagonal(dim1=0, dim2=1).sum(-1).allclose(torch.ones(4))
