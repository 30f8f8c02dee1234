"""Numerically safe inverse square roots of small PSD matrices.

K(x,x) = J(x) J(x)ᵀ is d×d, positive semi-definite, and singular when a gradient is zero
(a dead ReLU region, a saturated output) or when two outputs have parallel gradients. The
original code divided by ‖g‖ with no guard and produced NaN; here directions whose
eigenvalue is negligible are dropped (a pseudo inverse square root), so a zero gradient gives
a zero normalized gradient: similar to nothing, never NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor


def default_rtol(dtype: torch.dtype) -> float:
    """Eigenvalues below rtol·λmax are rank deficiency, not signal (≈1e-4 f32, 2e-13 f64)."""
    return 1e3 * torch.finfo(dtype).eps


def inv_sqrt_psd(K: Tensor, rtol: float | None = None, atol: float | None = None) -> Tensor:
    """Pseudo inverse square root of a batch of symmetric PSD matrices (..., d, d).

    Eigenvalues λ ≤ max(atol, rtol·λmax) are treated as zero; the others give λ^(-1/2).
    Differentiable wherever the kept eigenvalues are distinct (d = 1: wherever K > atol).
    """
    rtol = default_rtol(K.dtype) if rtol is None else rtol
    atol = torch.finfo(K.dtype).tiny ** 0.5 if atol is None else atol
    if K.shape[-1] == 1:
        k = K[..., 0, 0]
        keep = k > atol
        safe = torch.where(keep, k, torch.ones_like(k))
        return torch.where(keep, safe.rsqrt(), torch.zeros_like(k))[..., None, None]
    K = 0.5 * (K + K.transpose(-1, -2))
    lam, vec = torch.linalg.eigh(K)
    top = lam[..., -1:].clamp_min(0)
    keep = lam > torch.maximum(rtol * top, torch.full_like(top, atol))
    safe = torch.where(keep, lam, torch.ones_like(lam))
    inv = torch.where(keep, safe.rsqrt(), torch.zeros_like(lam))
    return (vec * inv.unsqueeze(-2)) @ vec.transpose(-1, -2)


def pinv_psd(K: Tensor, rtol: float | None = None, atol: float | None = None) -> Tensor:
    """Pseudo inverse of a batch of PSD matrices with the same cut-off as ``inv_sqrt_psd``."""
    W = inv_sqrt_psd(K, rtol, atol)
    return W @ W
