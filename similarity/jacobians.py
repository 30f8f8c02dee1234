"""Per-sample Jacobians J(x) = ∂f_θ(x)/∂θ, shape (d, p), with torch.func.

One ``vmap(jacrev(...))`` call per chunk of samples replaces the original code's one backward
pass (and one .npy file) per sample. Chunks bound memory to chunk·d·p numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.func import jacrev, vmap

from . import _fused
from ._linalg import inv_sqrt_psd
from ._model import Data, Output, Params, Problem, iter_batches, make_problem

DEFAULT_CHUNK = 32


def _chunk_jacobians(problem: Problem, x: Tensor) -> tuple[Tensor, Tensor]:
    """(n, ...) inputs -> outputs (n, d) and Jacobians (n, d, p), in one vmap over the chunk."""

    def with_output(params, xi):
        y = problem.single(params, xi)
        return y, y

    tree, y = vmap(jacrev(with_output, has_aux=True), in_dims=(None, 0))(problem.params, x)
    return y.detach(), problem.flatten(tree, lead=2)


def iter_jacobians(problem: Problem, data: Data, chunk_size: int = DEFAULT_CHUNK,
                   fused: bool = True) -> Iterator[Tensor]:
    """Stream (chunk, d, p) Jacobians over ``data`` (a tensor or a re-iterable loader).

    With ``fused`` (the default inside the library) models made of Linear/Conv layers get
    their Jacobians layer by layer from one batched forward and d backward passes
    (``_fused``), several times faster than vmap on CPU; others use torch.func.
    """
    for _, J in iter_outputs_jacobians(problem, data, chunk_size, fused):
        yield J


def iter_outputs_jacobians(problem: Problem, data: Data, chunk_size: int = DEFAULT_CHUNK,
                           fused: bool = True) -> Iterator[tuple[Tensor, Tensor]]:
    """:func:`iter_jacobians` with the outputs f(x) (chunk, d) that each pass computes anyway."""
    if fused and _fused.applies(problem):
        try:
            yield from _fused.iter_outputs_jacobians(problem, data, chunk_size)
            return
        except _fused.Unsupported:
            pass  # weight sharing seen at run time, before anything was yielded
    vmappable = True
    for x in iter_batches(data, chunk_size):
        if vmappable:
            try:
                yield _chunk_jacobians(problem, x)
                continue
            except RuntimeError as err:  # an operation torch.func cannot batch
                if "vmap" not in str(err):
                    raise
                vmappable = False
        yield _looped_jacobians(problem, x)


def _looped_jacobians(problem: Problem, x: Tensor) -> tuple[Tensor, Tensor]:
    """(n, ...) -> outputs (n, d) and Jacobians (n, d, p) with one forward and d backward passes
    per sample.

    For models torch.func cannot vmap (e.g. convolutions in ``channels_last`` memory format,
    whose ``contiguous(memory_format=...)`` has no batching rule): slower, same values."""
    params = {k: v.detach().requires_grad_(True) for k, v in problem.params.items()}
    leaves = list(params.values())
    out, ys = [], []
    with torch.enable_grad():
        for i in range(x.shape[0]):
            y = problem(params, x[i:i + 1])[0]
            ys.append(y.detach())
            rows = []
            for a in range(y.shape[0]):
                g = torch.autograd.grad(y[a], leaves, retain_graph=a + 1 < y.shape[0], allow_unused=True)
                rows.append(torch.cat([(gi if gi is not None else torch.zeros_like(p)).reshape(-1)
                                       for gi, p in zip(g, leaves)]))
            out.append(torch.stack(rows))
    return torch.stack(ys), torch.stack(out).detach()


def normalize_jacobians(J: Tensor, rtol: float | None = None) -> tuple[Tensor, Tensor]:
    """Ĵ = K(x,x)^(-1/2) J for each sample, and the inverse square roots used.

    The rows of Ĵ(x) are orthonormal (for full-rank K), so K^C(x,x') = Ĵ(x) Ĵ(x')ᵀ: every
    normalized quantity of the paper is an inner product of these whitened Jacobians.
    """
    K = J @ J.transpose(-1, -2)
    W = inv_sqrt_psd(K, rtol)
    return W @ J, W


def jacobians(model: nn.Module, x: Data, output: Output | None = None,
              chunk_size: int = DEFAULT_CHUNK, params: Params = None) -> Tensor:
    """Per-sample Jacobians of ``output(model(x))`` w.r.t. the parameters, shape (N, d, p).

    ``output`` maps the model's batched output to (N, d) (default: the output flattened per
    sample); ``params`` selects the parameters (names or a name -> tensor mapping; default all
    trainable ones), concatenated in ``model.named_parameters()`` order. The model should be
    in eval mode: per-sample Jacobians are not defined through batch statistics.
    """
    problem = make_problem(model, output, params)
    chunks = list(iter_jacobians(problem, x, chunk_size, fused=False))
    return torch.cat(chunks, dim=0)
