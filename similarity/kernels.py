"""The similarity kernels of Charpiat et al. (2019), from Jacobians or from a model.

Matrix kernels are (Na, Nb, d, d); scalar kernels are (Na, Nb). For d = 1 the matrix kernels
are 1×1 and the scalar ones reduce to the paper's k^I, k^N and k^C.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._linalg import pinv_psd
from ._model import Data, Output, Params, make_problem
from .jacobians import DEFAULT_CHUNK, iter_jacobians, normalize_jacobians

KINDS = ("inner", "influence", "correlation", "rotation")


def gram(ja: Tensor, jb: Tensor) -> Tensor:
    """K(x,x') = J(x) J(x')ᵀ for all pairs: (Na, d, p), (Nb, d, p) -> (Na, Nb, d, d).

    One matrix product (Na·d, p) @ (p, Nb·d), without copying either operand.
    """
    na, d, p = ja.shape
    nb = jb.shape[0]
    K = ja.reshape(na * d, p) @ jb.reshape(nb * d, p).T
    return K.view(na, d, nb, d).transpose(1, 2)


def correlation(ja: Tensor, jb: Tensor, rtol: float | None = None) -> Tensor:
    """K^C(x,x') = K(x,x)^(-1/2) K(x,x') K(x',x')^(-1/2), entries in [-1, 1]."""
    return gram(normalize_jacobians(ja, rtol)[0], normalize_jacobians(jb, rtol)[0])


def influence(ja: Tensor, jb: Tensor, rtol: float | None = None) -> Tensor:
    """K(x',x) K(x,x)⁺ for x in ``ja``, x' in ``jb``: how a push v on f(x) moves f(x').

    A training step that moves f(x) by εv moves f(x') by ε·K(x',x)K(x,x)⁻¹v; for d = 1 this is
    the asymmetric kernel k^N(x,x') = g(x)·g(x') / ‖g(x)‖².
    """
    Kaa_inv = pinv_psd(ja @ ja.transpose(-1, -2), rtol)  # (Na, d, d)
    Kba = gram(jb, ja).transpose(0, 1)  # (Na, Nb, d, d): K(x', x)
    return Kba @ Kaa_inv.unsqueeze(1)


def trace_similarity(K: Tensor) -> Tensor:
    """Scalar similarity Tr(K)/d of matrix kernels (..., d, d); k^C = Tr(K^C)/d."""
    return torch.diagonal(K, dim1=-2, dim2=-1).mean(-1)


def rotation_invariant_similarity(KC: Tensor) -> Tensor:
    """k^{C,rot} = ½·sqrt(‖K^C‖_F² + 2 det K^C) for 2×2 kernels, in [0, 1].

    Equal to 1 when K^C is any rotation: two displacements that agree up to a rotation count
    as similar. Computed as ½·sqrt((a+d)² + (b−c)²), the same value, never a negative root.
    """
    if KC.shape[-1] != 2 or KC.shape[-2] != 2:
        raise ValueError("the rotation-invariant similarity needs d = 2 outputs")
    a, b = KC[..., 0, 0], KC[..., 0, 1]
    c, d = KC[..., 1, 0], KC[..., 1, 1]
    return 0.5 * torch.sqrt((a + d) ** 2 + (b - c) ** 2)


def scalar_similarity(KC: Tensor, kind: str = "correlation") -> Tensor:
    """Reduce K^C blocks to one number per pair: 'correlation' (trace) or 'rotation'."""
    if kind == "correlation":
        return trace_similarity(KC)
    if kind == "rotation":
        return rotation_invariant_similarity(KC)
    raise ValueError(f"kind must be 'correlation' or 'rotation', got {kind!r}")


def _all_jacobians(model: nn.Module, x: Data, output: Output | None, chunk_size: int,
                   params: Params) -> Tensor:
    problem = make_problem(model, output, params)
    return torch.cat(list(iter_jacobians(problem, x, chunk_size)), dim=0)


def kernel(model: nn.Module, xa: Data, xb: Data | None = None, output: Output | None = None,
           normalized: bool = True, *, chunk_size: int = DEFAULT_CHUNK, params: Params = None,
           rtol: float | None = None) -> Tensor:
    """Matrix kernels between two sets of inputs, (Na, Nb, d, d): K^C, or K if not normalized.

    ``xb`` defaults to ``xa``. Both Jacobian sets are held in memory ((Na + Nb)·d·p numbers):
    for large sets use the streamed estimators of ``similarity.density``.
    """
    ja = _all_jacobians(model, xa, output, chunk_size, params)
    jb = ja if xb is None else _all_jacobians(model, xb, output, chunk_size, params)
    return correlation(ja, jb, rtol) if normalized else gram(ja, jb)


def similarity(model: nn.Module, xa: Data, xb: Data | None = None, output: Output | None = None,
               kind: str = "correlation", *, chunk_size: int = DEFAULT_CHUNK,
               params: Params = None, rtol: float | None = None) -> Tensor:
    """Scalar kernels (Na, Nb) of one ``kind``:

    - 'inner': k^I = Tr K(x,x')/d (g(x)·g(x') for d = 1);
    - 'influence': k^N = Tr(K(x',x) K(x,x)⁺)/d (g·g'/‖g‖² for d = 1; not symmetric);
    - 'correlation': k^C = Tr K^C(x,x')/d, in [-1, 1];
    - 'rotation': k^{C,rot} for d = 2, in [0, 1].
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    ja = _all_jacobians(model, xa, output, chunk_size, params)
    jb = ja if xb is None else _all_jacobians(model, xb, output, chunk_size, params)
    if kind == "inner":
        return trace_similarity(gram(ja, jb))
    if kind == "influence":
        return trace_similarity(influence(ja, jb, rtol))
    return scalar_similarity(correlation(ja, jb, rtol), kind)
