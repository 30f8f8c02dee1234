"""Uncertainty of f(x): how freely f(x) could move without disturbing the other samples.

u(x) = k^I(x,x) / Σ_x' k^I(x,x') (the paper's ‖g(x)‖² / Σ_x' g(x)·g(x') for d = 1; for d > 1
k^I = Tr K / d). Large when x shares little gradient direction with the training set, so a
step towards any label at x costs the rest nothing. The denominator is linear in the
kernel, so it is streamed in O(N·d²·p): Σ_x' k^I(x,x') = Tr(J(x) Gᵀ)/d with G = Σ_x' J(x').
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._model import Data, Output, Params, make_problem
from ._streams import projections, weighted_gradient_sums
from .jacobians import DEFAULT_CHUNK, iter_jacobians


def uncertainty(model: nn.Module, data: Data, reference: Data | None = None,
                output: Output | None = None, *, chunk_size: int = DEFAULT_CHUNK,
                batch_size: int = 128, params: Params = None) -> Tensor:
    """u(x) = Tr K(x,x) / Σ_{x' ∈ reference} Tr K(x,x') for every x of ``data``, shape (N,).

    The inverse is the reliability of f(x). The denominator can be small or negative for
    samples whose gradient opposes the summed gradient G; such values are returned as they
    are (no clipping), so look at their sign before taking logs.
    """
    problem = make_problem(model, output, params)
    ref = data if reference is None else reference
    sums, K = weighted_gradient_sums(problem, ref, None, chunk_size, normalized=False)
    G = sums[0]
    if reference is None:
        M = projections(problem, data, G, batch_size)  # (N, d, d)
        return torch.diagonal(K, dim1=-2, dim2=-1).sum(-1) / torch.diagonal(M, dim1=-2, dim2=-1).sum(-1)
    out = []
    for J in iter_jacobians(problem, data, chunk_size):
        out.append(J.square().sum((1, 2)) / torch.einsum("ndp,dp->n", J, G))
    return torch.cat(out)
