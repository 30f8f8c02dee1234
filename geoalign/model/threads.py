"""torch's thread count, set for a block of work and restored after it (no global change left
behind for the caller)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count: ``n`` inside the block, the caller's own after it
    (``None`` or 0: the caller's own throughout)."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)
