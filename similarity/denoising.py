"""Self-denoising analysis: kernel-weighted means, the shift and the denoising factor.

With noisy labels ỹ = y + ε, at convergence E_k[ŷ] = E_k[ỹ] where
E_k[a](x_i) = Σ_j a_j k(x_i,x_j) / Σ_j k(x_i,x_j) (k = k^C). Hence
ŷ_i − E_k[y] = E_k[ε] + (ŷ_i − E_k[ŷ]): a noise term of size σ_ε·‖k̃(x_i,·)‖₂ (k̃ = k / Σ k,
the *denoising factor*) plus the *shift* ŷ_i − E_k[ŷ].
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._model import Data, Output, Params, iter_batches, make_problem
from ._pairwise import DEFAULT_BLOCK_BYTES, similarity_blocks
from ._sketch import CountSketch
from ._streams import projections, weighted_gradient_sums
from .jacobians import DEFAULT_CHUNK, iter_jacobians, normalize_jacobians


def _outputs(problem, data: Data, batch_size: int) -> Tensor:
    with torch.no_grad():
        # clone: the selected outputs may be views of much larger model outputs
        return torch.cat([problem(problem.params, x).clone() for x in iter_batches(data, batch_size)])


def kernel_mean(model: nn.Module, data: Data, values: Tensor, reference: Data | None = None,
                output: Output | None = None, *, chunk_size: int = DEFAULT_CHUNK,
                batch_size: int = 128, params: Params = None,
                rtol: float | None = None) -> Tensor:
    """E_k[values](x) = Σ_j values_j k^C(x,x_j) / Σ_j k^C(x,x_j) for every x of ``data``.

    ``values`` (N_ref, q) or (N_ref,) are attached to the reference samples (``data`` when
    ``reference`` is None). O(N·q·d²·p): pass 1 accumulates S_i = Σ_j values_ji Ĵ(x_j), pass 2
    projects every sample on all of them at once.
    """
    problem = make_problem(model, output, params)
    ref = data if reference is None else reference
    vals = values.reshape(values.shape[0], -1)
    ones = torch.ones(vals.shape[0], 1, dtype=vals.dtype)
    sums, W = weighted_gradient_sums(problem, ref, torch.cat([ones, vals], 1), chunk_size, rtol)
    q1, d, p = sums.shape
    if reference is None:
        M = projections(problem, data, sums.reshape(q1 * d, p), batch_size)
        M = M.reshape(M.shape[0], d, q1, d)  # [n, a, i, c] = J_a(x)·S_i[c]
        T = torch.einsum("nca,naic->ni", W, M)
    else:
        T = torch.cat([torch.einsum("ndp,idp->ni", normalize_jacobians(J, rtol)[0], sums)
                       for J in iter_jacobians(problem, data, chunk_size)])
    return (T[:, 1:] / T[:, :1]).reshape(T.shape[0], *values.shape[1:])


def shift(model: nn.Module, data: Data, reference: Data | None = None,
          output: Output | None = None, *, chunk_size: int = DEFAULT_CHUNK,
          batch_size: int = 128, params: Params = None, rtol: float | None = None) -> Tensor:
    """ŷ(x) − E_k[ŷ](x), shape (N, d): how far each prediction sits from its neighbours' mean.

    Computed in O(N·d³·p) through weighted gradient sums (no pairwise matrix).
    """
    problem = make_problem(model, output, params)
    ref = data if reference is None else reference
    y_ref = _outputs(problem, ref, batch_size)
    y = y_ref if reference is None else _outputs(problem, data, batch_size)
    mean = kernel_mean(model, data, y_ref, reference, output, chunk_size=chunk_size,
                       batch_size=batch_size, params=params, rtol=rtol)
    return y - mean


def denoising_factor(model: nn.Module, data: Data, reference: Data | None = None,
                     output: Output | None = None, *, method: str = "exact",
                     sketch_dim: int = 1024, seed: int = 0, chunk_size: int = DEFAULT_CHUNK,
                     batch_size: int = 128, block_bytes: int = DEFAULT_BLOCK_BYTES,
                     params: Params = None, rtol: float | None = None) -> Tensor:
    """‖k̃(x,·)‖₂ = sqrt(Σ_j k^C(x,x_j)²) / Σ_j k^C(x,x_j), shape (N,).

    The noise of the labels of x's neighbours reaches f(x) multiplied by this factor (1 for
    an isolated sample, 1/√n for n identical ones). ``method='exact'``: blocked over all
    pairs. ``method='sketch'``: Σ_j k² from count-sketch projections z of the whitened
    Jacobians, Σ_j (z_i·z_j)² = z_iᵀ(Σ_j z_j z_jᵀ)z_i, with the sketch's bias
    (‖u_i‖²Σ_j‖u_j‖² + Σ_j k²)/m removed; the denominator N_S stays exact. Cost
    O(N·d·p + N·m²) and m² memory. Unbiased for Σ_j k² up to the sketch noise, whose size
    grows with n_ref/m relative to Σ_j k²: the README gives errors measured against 'exact'.
    """
    problem = make_problem(model, output, params)
    if method == "exact":
        s1: dict[int, Tensor] = {}
        s2: dict[int, Tensor] = {}
        for row, _, S in similarity_blocks(problem, data, reference, chunk_size=chunk_size,
                                           block_bytes=block_bytes, rtol=rtol):
            a, b = S.sum(-1), S.square().sum(-1)
            s1[row] = s1[row] + a if row in s1 else a
            s2[row] = s2[row] + b if row in s2 else b
        rows = sorted(s1)
        return torch.cat([s2[r] for r in rows]).sqrt() / torch.cat([s1[r] for r in rows])
    if method != "sketch":
        raise ValueError(f"method must be 'exact' or 'sketch', got {method!r}")
    ref = data if reference is None else reference
    sketch = CountSketch(problem.num_params * _out_dim(problem, ref), sketch_dim, seed)
    C = torch.zeros(sketch_dim, sketch_dim, dtype=torch.float64)
    norm_sum = 0.0
    for J in iter_jacobians(problem, ref, chunk_size):
        Jn = normalize_jacobians(J, rtol)[0]
        u = Jn.reshape(Jn.shape[0], -1) / Jn.shape[1] ** 0.5  # k^C = u·u'
        z = sketch(u).double()
        C += z.T @ z
        norm_sum += u.double().square().sum().item()
    m = sketch_dim
    num = []
    for J in iter_jacobians(problem, data, chunk_size):
        Jn = normalize_jacobians(J, rtol)[0]
        u = Jn.reshape(Jn.shape[0], -1) / Jn.shape[1] ** 0.5
        z = sketch(u).double()
        raw = torch.einsum("nm,mk,nk->n", z, C, z)
        un = u.double().square().sum(-1)
        num.append(((raw - un * norm_sum / m) / (1 + 1 / m)).clamp_min(0))
    ns = _soft(model, data, reference, output, chunk_size, batch_size, params, rtol)
    return torch.cat(num).sqrt().to(ns.dtype) / ns


def _out_dim(problem, data: Data) -> int:
    x = next(iter_batches(data, 1))
    with torch.no_grad():
        return problem(problem.params, x).shape[1]


def _soft(model, data, reference, output, chunk_size, batch_size, params, rtol) -> Tensor:
    from .density import soft_density
    return soft_density(model, data, reference, output, chunk_size=chunk_size,
                        batch_size=batch_size, params=params, rtol=rtol)
