"""Density estimators: how many neighbours each sample has from the network's point of view.

- ``soft_density``: N_S(x) = Σ_x' k^C(x,x'), streamed in O(N·d²·p) through
  N_S(x) = Tr(Ĵ(x) Ĝᵀ)/d with Ĝ = Σ_x' Ĵ(x') (Ĵ = K(x,x)^(-1/2) J, whitened Jacobians).
- ``threshold_density``: N_τ(x) = #{x' : k(x,x') ≥ τ} for a list of τ, exact, blocked.
- ``positive_density``: N_α⁺(x) = Σ_{k(x,x') > 0} k(x,x')^α, exact, blocked.
Sums include x' = x itself (k^C(x,x) = 1 for a non-zero gradient).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from . import _fused
from ._model import Data, Output, Params, make_problem
from ._pairwise import DEFAULT_BLOCK_BYTES, similarity_blocks
from ._streams import projections, weighted_gradient_sums
from .jacobians import DEFAULT_CHUNK, iter_jacobians, normalize_jacobians


def soft_density(model: nn.Module, data: Data, reference: Data | None = None,
                 output: Output | None = None, *, chunk_size: int = DEFAULT_CHUNK,
                 batch_size: int = 128, params: Params = None, rtol: float | None = None,
                 fused: bool | None = None) -> Tensor:
    """N_S(x) = Σ_{x' ∈ reference} k^C(x,x') for every x in ``data``, shape (N,).

    Two streamed passes, never an N×p matrix: pass 1 sums whitened Jacobians of the
    reference into Ĝ (d×p); pass 2 projects each data sample on Ĝ. When ``reference`` is None
    (the data itself), pass 2 is a batched forward-mode (JVP) pass reusing the K(x,x)^(-1/2)
    of pass 1. ``fused`` picks the layer-wise fast engine for models built of Linear/Conv
    layers (default: whenever it applies); ``False`` forces the generic torch.func path.
    """
    problem = make_problem(model, output, params)
    ref = data if reference is None else reference
    G = None
    if _fused.applies(problem) if fused is None else fused:
        try:
            G, W = _fused.whitened_sum(problem, ref, batch_size, rtol)
        except _fused.Unsupported:
            if fused:
                raise
    if G is None:
        sums, W = weighted_gradient_sums(problem, ref, None, chunk_size, rtol)
        G = sums[0]  # (d, p)
    d = G.shape[0]
    if reference is None:
        M = projections(problem, data, G, batch_size)  # (N, d, d): J_a(x)·Ĝ_c
        return torch.einsum("nca,nac->n", W, M) / d
    out = [torch.einsum("ndp,dp->n", normalize_jacobians(J, rtol)[0], G) / d
           for J in iter_jacobians(problem, data, chunk_size)]
    return torch.cat(out)


def threshold_density(model: nn.Module, data: Data, taus: Sequence[float] | Tensor,
                      reference: Data | None = None, output: Output | None = None, *,
                      kind: str = "correlation", chunk_size: int = DEFAULT_CHUNK,
                      block_bytes: int = DEFAULT_BLOCK_BYTES, params: Params = None,
                      rtol: float | None = None) -> Tensor:
    """N_τ(x) = #{x' : k(x,x') ≥ τ} for every τ in ``taus``: (len(taus), N) counts.

    Exact, one blocked pass over all pairs for every τ at once. ``kind`` is 'correlation'
    (k^C = Tr K^C / d) or 'rotation' (k^{C,rot}, d = 2).
    """
    problem = make_problem(model, output, params)
    taus = torch.as_tensor(taus, dtype=torch.float64)
    counts: dict[int, Tensor] = {}
    for row, _, S in similarity_blocks(problem, data, reference, kind=kind, chunk_size=chunk_size,
                                       block_bytes=block_bytes, rtol=rtol):
        c = (S.to(torch.float64).unsqueeze(0) >= taus[:, None, None]).sum(-1)
        counts[row] = counts[row] + c if row in counts else c
    return torch.cat([counts[r] for r in sorted(counts)], dim=1)


def positive_density(model: nn.Module, data: Data, alpha: float = 1.0,
                     reference: Data | None = None, output: Output | None = None, *,
                     kind: str = "correlation", chunk_size: int = DEFAULT_CHUNK,
                     block_bytes: int = DEFAULT_BLOCK_BYTES, params: Params = None,
                     rtol: float | None = None) -> Tensor:
    """N_α⁺(x) = Σ_{x' : k(x,x') > 0} k(x,x')^α, shape (N,): exact, blocked.

    Large α counts only close neighbours; α → 0 tends to the number of positive pairs.
    """
    problem = make_problem(model, output, params)
    sums: dict[int, Tensor] = {}
    for row, _, S in similarity_blocks(problem, data, reference, kind=kind, chunk_size=chunk_size,
                                       block_bytes=block_bytes, rtol=rtol):
        pos = S > 0
        part = torch.where(pos, S.clamp_min(0) ** alpha, torch.zeros_like(S)).sum(-1)
        sums[row] = sums[row] + part if row in sums else part
    return torch.cat([sums[r] for r in sorted(sums)])
