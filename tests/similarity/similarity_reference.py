"""Brute-force references: one backward pass per sample and per output, in float64.

Deliberately the slow, obvious way (the original netsimilarity loop), so that the library's
vmapped, streamed and fused code is checked against something independent of it.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch
from torch import nn


class SmallMLP(nn.Sequential):
    def __init__(self, d_in: int = 3, hidden: int = 8, d_out: int = 1) -> None:
        super().__init__(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, d_out))


class SmallCNN(nn.Sequential):
    """Dense 2-channel field; the similarity output is the displacement at the centre pixel."""

    def __init__(self) -> None:
        super().__init__(nn.Conv2d(2, 4, 3, padding=1), nn.Tanh(),
                         nn.Conv2d(4, 4, 3, padding=1, stride=2), nn.ReLU(),
                         nn.Upsample(scale_factor=2), nn.Conv2d(4, 2, 3, padding=1))


def centre(y: torch.Tensor) -> torch.Tensor:
    return y[:, :, y.shape[2] // 2, y.shape[3] // 2]


def brute_jacobians(model: nn.Module, x: torch.Tensor, output=None) -> np.ndarray:
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(x.shape[0]):
        y = model(x[i:i + 1])
        y = (output(y) if output is not None else y).reshape(1, -1)[0]
        per_out = []
        for a in range(y.shape[0]):
            g = torch.autograd.grad(y[a], params, retain_graph=True, allow_unused=True)
            per_out.append(torch.cat([(gi if gi is not None else torch.zeros_like(p)).reshape(-1)
                                      for gi, p in zip(g, params)]))
        rows.append(torch.stack(per_out))
    return torch.stack(rows).detach().numpy()


def inv_sqrt(K: np.ndarray) -> np.ndarray:
    return np.real(scipy.linalg.fractional_matrix_power(K, -0.5))


def brute_correlation(J: np.ndarray, Jb: np.ndarray | None = None) -> np.ndarray:
    """K^C for every pair by the formula K(x,x)^-1/2 K(x,x') K(x',x')^-1/2, (Na, Nb, d, d)."""
    Jb = J if Jb is None else Jb
    Wa = [inv_sqrt(j @ j.T) for j in J]
    Wb = [inv_sqrt(j @ j.T) for j in Jb]
    out = np.zeros((len(J), len(Jb), J.shape[1], J.shape[1]))
    for i in range(len(J)):
        for k in range(len(Jb)):
            out[i, k] = Wa[i] @ J[i] @ Jb[k].T @ Wb[k]
    return out


def brute_kc(J: np.ndarray, Jb: np.ndarray | None = None) -> np.ndarray:
    KC = brute_correlation(J, Jb)
    return np.trace(KC, axis1=2, axis2=3) / KC.shape[-1]
