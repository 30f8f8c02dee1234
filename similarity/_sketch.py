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
    """A fixed random map R^D -> R^m, reproducible from ``seed``.

    Buckets are balanced: a random permutation of the coordinates is cut into m equal runs
    (the vector zero-padded to a multiple of m), each run summed with random signs. This is a
    count sketch whose hash gives every bucket the same load, and it runs as one gather and
    one reduction instead of a scatter.
    """

    def __init__(self, dim_in: int, dim_out: int, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.dim_in, self.dim_out = dim_in, dim_out
        self.per_bucket = -(-dim_in // dim_out)
        padded = self.per_bucket * dim_out
        self.perm = torch.randperm(padded, generator=gen)
        self.sign = torch.randint(0, 2, (padded,), generator=gen).mul_(2).sub_(1)
        # Bucket b holds positions b·per_bucket … (b+1)·per_bucket − 1 of the permutation; they
        # are gathered slot-major (slot j of every bucket, then slot j + 1, …) so that the
        # reduction adds per_bucket contiguous rows of m numbers, not m short strided runs.
        self.perm = self.perm.view(dim_out, self.per_bucket).T.reshape(-1)
        self.sign = self.sign.view(dim_out, self.per_bucket).T.reshape(-1)
        # Padding coordinates read coordinate 0 with sign 0: no padded copy of the input.
        pad = self.perm >= dim_in
        self.index = self.perm.masked_fill(pad, 0)
        self.sign = self.sign.masked_fill(pad, 0)

    def __call__(self, u: Tensor) -> Tensor:
        """(n, D) -> (n, m)."""
        if u.shape[-1] != self.dim_in:
            raise ValueError(f"expected vectors of size {self.dim_in}, got {u.shape[-1]}")
        v = u.index_select(1, self.index).mul_(self.sign.to(u.dtype))
        return v.view(u.shape[0], self.per_bucket, self.dim_out).sum(1)
