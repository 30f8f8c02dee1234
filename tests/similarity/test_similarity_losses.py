"""Enforcing losses: values against the definitions, gradients by torch.autograd.gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import similarity as sim
from similarity_reference import brute_jacobians, brute_kc


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2)).double()


def test_pair_loss_is_minus_mean_kc(mlp2, xs):
    J = brute_jacobians(mlp2, xs)
    kc = brute_kc(J[:4], J[4:8])
    loss = sim.pair_similarity_loss(mlp2, xs[:4], xs[4:8])
    assert loss.item() == pytest.approx(-np.diag(kc).mean())


def test_group_mean_similarity_is_mean_pairwise_kc(mlp2, xs):
    kc = brute_kc(brute_jacobians(mlp2, xs))
    n = len(xs)
    assert sim.group_mean_similarity(mlp2, xs).item() == pytest.approx((kc.sum() - np.trace(kc)) / (n * (n - 1)))


def test_group_loss_matches_its_formula(mlp2, xs):
    J = brute_jacobians(mlp2, xs)
    W = [np.real(__import__("scipy").linalg.fractional_matrix_power(j @ j.T, -0.5)) for j in J]
    Jn = np.stack([w @ j for w, j in zip(W, J)])
    mu1, mu2 = Jn[:4].mean(0), Jn[4:8].mean(0)
    expected = 4 * ((mu1 - mu2) ** 2).sum() / (np.linalg.norm(mu1) * np.linalg.norm(mu2))
    assert sim.group_similarity_loss(mlp2, xs[:4], xs[4:8]).item() == pytest.approx(expected)


def _as_function(model, loss, *inputs, output=None):
    names = [k for k, _ in model.named_parameters()]
    values = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())

    def fn(*ps):
        return loss(model, *inputs, output=output, params=dict(zip(names, ps)))
    return fn, values


@pytest.mark.parametrize("loss", [sim.pair_similarity_loss, sim.group_similarity_loss], ids=["pair", "group"])
@pytest.mark.parametrize("output", [None, lambda y: y[:, :1]], ids=["d2", "d1"])
def test_gradcheck_enforcing_losses(tiny, loss, output):
    torch.manual_seed(1)
    xa, xb = torch.randn(3, 2), torch.randn(3, 2)
    fn, values = _as_function(tiny, loss, xa, xb, output=output)
    assert torch.autograd.gradcheck(fn, values)


def test_loss_backward_reaches_the_model_parameters(tiny):
    torch.manual_seed(3)
    x1, x2 = torch.randn(4, 2), torch.randn(4, 2)
    before = sim.group_mean_similarity(tiny, torch.cat([x1, x2])).item()
    opt = torch.optim.SGD(tiny.parameters(), lr=0.05)
    for _ in range(30):
        opt.zero_grad()
        loss = sim.group_similarity_loss(tiny, x1, x2)
        loss.backward()
        # The last bias has a constant gradient, so the loss does not depend on it (grad None).
        grads = [p.grad for p in list(tiny.parameters())[:-1]]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        opt.step()
    assert sim.group_mean_similarity(tiny, torch.cat([x1, x2])).item() > before
