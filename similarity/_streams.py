"""The two streamed passes behind every O(N·d²·p) estimator.

Pass 1 (``weighted_gradient_sums``) walks the reference set once and accumulates sums
S_v = Σ_x v(x) ⊗ Ĵ(x) of whitened Jacobians (d×p each, never N×p). Pass 2
(``projections``) walks the data once and projects each sample's Jacobian on those sums with
one forward-mode (JVP) pass: J(x) S_vᵀ for every sample in a batch costs about a forward pass
per direction, far less than building per-sample Jacobians again.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.func import jvp, vmap

from ._model import Data, Problem, iter_batches
from .jacobians import DEFAULT_CHUNK, iter_jacobians, normalize_jacobians

def weighted_gradient_sums(problem: Problem, reference: Data, values: Tensor | None = None,
                           chunk_size: int = DEFAULT_CHUNK, rtol: float | None = None,
                           normalized: bool = True) -> tuple[Tensor, Tensor]:
    """Σ_x v_i(x) Ĵ(x) for each column i of ``values`` (N, q) (all ones when None).

    Returns the sums (q, d, p) and the per-sample inverse square roots W(x) = K(x,x)^(-1/2),
    (N, d, d), kept because pass 2 needs them for the same samples (N·d² numbers, the size
    of the answer, not N·p). With ``normalized=False`` the raw Jacobians are summed and the
    diagonal kernels K(x,x) are returned instead of W.
    """
    sums = None
    per_sample = []
    start = 0
    for J in iter_jacobians(problem, reference, chunk_size):
        n = J.shape[0]
        if normalized:
            Jn, W = normalize_jacobians(J, rtol)
        else:
            Jn, W = J, J @ J.transpose(-1, -2)
        v = torch.ones(n, 1, dtype=J.dtype) if values is None else values[start:start + n].to(J.dtype)
        part = torch.einsum("nq,ndp->qdp", v, Jn)
        sums = part if sums is None else sums + part
        per_sample.append(W)
        start += n
    if sums is None:
        raise ValueError("the reference set is empty")
    return sums, torch.cat(per_sample, dim=0)


def _chunk_projections(problem: Problem, x: Tensor, directions: dict[str, Tensor]) -> Tensor:
    """(n, d, q): J(x) u_i for the q parameter-space directions stacked in ``directions``."""
    def along(tangent: dict[str, Tensor]) -> Tensor:
        return jvp(lambda p: problem(p, x), (problem.params,), (tangent,))[1]
    # ``output`` often selects a few entries of a large output (the centre pixel of a field):
    # copy them out, or the kept views would hold every batch's whole tangent field alive.
    q = next(iter(directions.values())).shape[0]
    if q == 1:  # one direction: no vmap overhead
        return along({k: v[0] for k, v in directions.items()}).unsqueeze(2).clone()
    try:
        return vmap(along, out_dims=2)(directions).clone()
    except RuntimeError as err:  # an operation torch.func cannot batch (e.g. channels_last)
        if "vmap" not in str(err):
            raise
        return torch.stack([along({k: v[i] for k, v in directions.items()}) for i in range(q)], dim=2).clone()


def projections(problem: Problem, data: Data, directions: Tensor,
                batch_size: int = 4 * DEFAULT_CHUNK) -> Tensor:
    """J(x) U for every sample x of ``data`` and U = ``directions``ᵀ, U of shape (q, p).

    Returns (N, d, q). Cost: one forward-mode pass per batch with q tangents (vmapped); memory
    is that of a forward pass of the batch, whatever N.
    """
    tangents = problem.unflatten(directions.to(next(iter(problem.params.values())).dtype))
    out = [_chunk_projections(problem, x, tangents) for x in iter_batches(data, batch_size)]
    return torch.cat(out, dim=0)
