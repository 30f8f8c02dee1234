"""Count-sketch random projections of flattened (whitened) Jacobians.

A count sketch sends coordinate i of a D-vector to bucket h(i) with sign s(i): z = S u costs
O(D) per vector and needs only D small integers, where a dense Gaussian matrix would need
D×m numbers (a gigabyte for p = 5·10⁵, m = 512). Inner products are preserved in
expectation: E[z·z'] = u·u' and Var[z·z'] = (‖u‖²‖u'‖² + (u·u')² − 2Σ_i u_i²u'_i²)/m
(Charikar et al. 2002; Weinberger et al. 2009), i.e. a standard error of about 1/√m for
unit vectors.
"""

from __future__ import annotations

import torch
from torch import Tensor


class CountSketch:
    """A fixed random map R^D -> R^m, reproducible from ``seed``."""

    def __init__(self, dim_in: int, dim_out: int, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.dim_in, self.dim_out = dim_in, dim_out
        self.bucket = torch.randint(0, dim_out, (dim_in,), generator=gen)
        self.sign = torch.randint(0, 2, (dim_in,), generator=gen).mul_(2).sub_(1)

    def __call__(self, u: Tensor) -> Tensor:
        """(n, D) -> (n, m)."""
        if u.shape[-1] != self.dim_in:
            raise ValueError(f"expected vectors of size {self.dim_in}, got {u.shape[-1]}")
        z = torch.zeros(u.shape[0], self.dim_out, dtype=u.dtype)
        return z.index_add_(1, self.bucket, u * self.sign.to(u.dtype))
