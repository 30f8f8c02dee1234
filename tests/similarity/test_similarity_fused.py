"""The fused layer-wise first pass gives the same N_S as the generic torch.func path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import similarity as sim
from similarity import _fused
from similarity._model import make_problem


class SeqLinear(nn.Module):
    """A Linear layer applied to every position of a sequence (T > 1), then pooled."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(3, 5)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        return self.head(torch.tanh(self.inp(x.reshape(x.shape[0], 4, 3)))).mean(1)


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        return self.lin(torch.tanh(self.lin(x)))


def _conv1d():
    return nn.Sequential(nn.Conv1d(2, 3, 3, padding=1, dilation=1), nn.Tanh(),
                         nn.Conv1d(3, 2, 2, stride=2), nn.Flatten())


@pytest.mark.parametrize("force", [None, "ghost", "full"])
@pytest.mark.parametrize("name", ["mlp", "mlp2", "cnn", "seq", "conv1d"])
def test_fused_equals_generic(name, force, mlp, mlp2, cnn, xs, images, monkeypatch):
    monkeypatch.setattr(_fused, "FORCE", force)
    from similarity_reference import centre
    torch.manual_seed(0)
    model, x, out = {
        "mlp": (mlp, xs, None), "mlp2": (mlp2, xs, None), "cnn": (cnn, images, centre),
        "seq": (SeqLinear().double(), torch.randn(7, 12), None),
        "conv1d": (_conv1d().double(), torch.randn(6, 2, 8), lambda y: y[:, :2]),
    }[name]
    assert _fused.applies(make_problem(model, out))
    fast = sim.soft_density(model, x, output=out, batch_size=4, fused=True)
    slow = sim.soft_density(model, x, output=out, fused=False)
    torch.testing.assert_close(fast, slow, rtol=1e-9, atol=1e-10)


def test_fused_on_a_parameter_subset(cnn, images):
    from similarity_reference import centre
    names = ["0.weight", "5.bias"]
    fast = sim.soft_density(cnn, images, output=centre, params=names, fused=True)
    slow = sim.soft_density(cnn, images, output=centre, params=names, fused=False)
    torch.testing.assert_close(fast, slow)


def test_unsupported_models_fall_back_to_torch_func(xs):
    bn = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)).double().eval()
    assert not _fused.applies(make_problem(bn))
    shared = Shared().double()
    assert _fused.applies(make_problem(shared))  # only visible while running
    torch.testing.assert_close(sim.soft_density(shared, xs), sim.soft_density(shared, xs, fused=False))
    assert torch.isfinite(sim.soft_density(bn, xs)).all()


@pytest.mark.parametrize("name", ["mlp2", "cnn", "seq", "conv1d"])
def test_fused_jacobians_equal_torch_func(name, mlp2, cnn, xs, images):
    from similarity_reference import centre
    torch.manual_seed(0)
    model, x, out = {
        "mlp2": (mlp2, xs, None), "cnn": (cnn, images, centre),
        "seq": (SeqLinear().double(), torch.randn(7, 12), None),
        "conv1d": (_conv1d().double(), torch.randn(6, 2, 8), lambda y: y[:, :2]),
    }[name]
    fast = torch.cat([J for _, J in _fused.iter_outputs_jacobians(make_problem(model, out), x, 4)])
    torch.testing.assert_close(fast, sim.jacobians(model, x, out), rtol=1e-10, atol=1e-12)
