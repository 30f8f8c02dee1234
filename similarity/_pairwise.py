"""Exact pairwise similarities, block by block, within a memory budget.

Quantities that are not linear in the kernel (N_τ, N_α⁺, ‖k(x,·)‖₂, histograms, exact
top-k) need every pair. Whitened Jacobians of one reference block are held in memory
(``block_bytes``); the data is streamed past each block. When the whole reference fits, its
Jacobians are computed once; otherwise the data Jacobians are recomputed once per block.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ._model import Data, Problem
from .jacobians import DEFAULT_CHUNK, iter_jacobians, normalize_jacobians
from .kernels import gram, scalar_similarity

DEFAULT_BLOCK_BYTES = 1 << 30


def _whitened(problem: Problem, data: Data, chunk_size: int, rtol: float | None) -> Iterator[Tensor]:
    for J in iter_jacobians(problem, data, chunk_size):
        yield normalize_jacobians(J, rtol)[0]


def _reference_blocks(problem: Problem, reference: Data, chunk_size: int, rtol: float | None,
                      block_bytes: int) -> Iterator[tuple[int, Tensor]]:
    """Yield (offset, Ĵ block) with blocks of at most ``block_bytes`` (at least one chunk)."""
    block, size, offset = [], 0, 0
    for Jn in _whitened(problem, reference, chunk_size, rtol):
        block.append(Jn)
        size += Jn.numel() * Jn.element_size()
        if size >= block_bytes:
            cat = torch.cat(block)
            yield offset, cat
            offset += cat.shape[0]
            block, size = [], 0
    if block:
        yield offset, torch.cat(block)


def similarity_blocks(problem: Problem, data: Data, reference: Data | None = None, *,
                      kind: str = "correlation", chunk_size: int = DEFAULT_CHUNK,
                      block_bytes: int = DEFAULT_BLOCK_BYTES,
                      rtol: float | None = None) -> Iterator[tuple[int, int, Tensor]]:
    """Yield (row offset in data, column offset in reference, scalar k block (n, m)).

    Every (data, reference) pair appears in exactly one block. ``reference=None`` means the
    data itself (its Jacobians are then reused when they fit in one block).
    """
    same = reference is None
    ref = data if same else reference
    blocks = _reference_blocks(problem, ref, chunk_size, rtol, block_bytes)
    first = next(blocks, None)
    if first is None:
        return
    second = next(blocks, None)
    if same and second is None:
        # Whole reference in memory: no Jacobian is computed twice.
        _, R = first
        for i in range(0, R.shape[0], chunk_size):
            yield i, 0, scalar_similarity(gram(R[i:i + chunk_size], R), kind)
        return
    pending = [first] + ([second] if second is not None else [])

    def all_blocks() -> Iterator[tuple[int, Tensor]]:
        while pending:  # pop, so at most two blocks are alive at once
            yield pending.pop(0)
        yield from blocks

    for col, R in all_blocks():
        row = 0
        for Jn in _whitened(problem, data, chunk_size, rtol):
            yield row, col, scalar_similarity(gram(Jn, R), kind)
            row += Jn.shape[0]
