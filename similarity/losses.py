"""Similarity-enforcing losses: make the network treat known-similar inputs alike.

Both losses are built from per-sample whitened Jacobians computed with torch.func on the
live parameters, so ``loss.backward()`` differentiates through the gradients themselves
(double backpropagation, about twice a normal step per sample involved).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn
from torch.func import jacrev, vmap

from ._model import Output, make_problem
from .jacobians import normalize_jacobians


def _live_params(model: nn.Module, params: Mapping[str, Tensor] | None) -> Mapping[str, Tensor]:
    if params is not None:
        return params
    return {k: v for k, v in model.named_parameters() if v.requires_grad}


def whitened_jacobians(model: nn.Module, x: Tensor, output: Output | None = None,
                       params: Mapping[str, Tensor] | None = None,
                       rtol: float | None = None) -> Tensor:
    """Differentiable Ĵ(x) = K(x,x)^(-1/2) J(x) for a mini-batch, shape (n, d, p).

    ``params`` (name -> tensor, default the model's trainable parameters themselves) are
    the point where the Jacobians are taken and what gradients flow back to.
    """
    problem = make_problem(model, output, _live_params(model, params))
    tree = vmap(jacrev(problem.single), in_dims=(None, 0))(problem.params, x)
    return normalize_jacobians(problem.flatten(tree, lead=2), rtol)[0]


def pair_similarity_loss(model: nn.Module, xa: Tensor, xb: Tensor, output: Output | None = None,
                         params: Mapping[str, Tensor] | None = None,
                         rtol: float | None = None) -> Tensor:
    """−mean_i k^C(xa_i, xb_i) for pairs known to be similar; minimum −1 (identical gradients)."""
    ja = whitened_jacobians(model, xa, output, params, rtol)
    jb = whitened_jacobians(model, xb, output, params, rtol)
    return -(ja * jb).sum((1, 2)).mean() / ja.shape[1]


def group_similarity_loss(model: nn.Module, x1: Tensor, x2: Tensor, output: Output | None = None,
                          params: Mapping[str, Tensor] | None = None,
                          rtol: float | None = None, eps: float = 1e-12) -> Tensor:
    """n_B ‖μ₁ − μ₂‖² / (‖μ₁‖‖μ₂‖) for two mini-batches of n_B samples of one group S.

    μ_k is the mean whitened Jacobian of mini-batch k. With whole groups, the mean pairwise
    k^C of S is (n‖μ‖² − 1)/(n − 1); with mini-batches, driving μ₁ and μ₂ together is the
    unbiased way to raise it (the paper's mini-batch form). ``eps`` guards zero means.
    """
    if x1.shape[0] != x2.shape[0]:
        raise ValueError("the two mini-batches must have the same size n_B")
    mu1 = whitened_jacobians(model, x1, output, params, rtol).mean(0)
    mu2 = whitened_jacobians(model, x2, output, params, rtol).mean(0)
    n = x1.shape[0]
    return n * (mu1 - mu2).square().sum() / (mu1.norm() * mu2.norm() + eps)


def group_mean_similarity(model: nn.Module, x: Tensor, output: Output | None = None,
                          params: Mapping[str, Tensor] | None = None,
                          rtol: float | None = None) -> Tensor:
    """Mean k^C over the distinct pairs of a group, from one sum of whitened Jacobians.

    (‖Σ_i u_i‖² − Σ_i ‖u_i‖²) / (n(n − 1)) with u_i = Ĵ(x_i)/√d: the paper's (n‖μ‖² − 1)/(n − 1)
    without assuming unit norms (a zero gradient has norm 0). Differentiable.
    """
    J = whitened_jacobians(model, x, output, params, rtol)
    n, d = J.shape[0], J.shape[1]
    u = J.reshape(n, -1) / d ** 0.5
    return (u.sum(0).square().sum() - u.square().sum()) / (n * (n - 1))
