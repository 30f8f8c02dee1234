"""torch's thread count, set for a block of work and restored after it (no global change left
behind for the caller), and a worker thread that runs beside the caller on one torch thread."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
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


def one_thread_worker(name: str, *, nice: int = 0) -> ThreadPoolExecutor:
    """A one-thread executor whose torch ops run on one intra-op thread, for work that runs
    beside the caller's (torch's thread count is per thread; setting it also sets the default
    that threads started later take, so the caller's count is put back at once).

    ``nice`` > 0 lowers the thread's scheduling priority by that much (Linux: per thread,
    inherited by the threads it starts), so it takes the cores the caller leaves idle rather
    than sharing the busy ones."""
    old = torch.get_num_threads()
    pool = ThreadPoolExecutor(1, thread_name_prefix=name)
    try:
        pool.submit(one_torch_thread).result()
        if nice > 0 and sys.platform.startswith("linux"):
            pool.submit(_lower_priority, nice).result()
    finally:
        torch.set_num_threads(old)
    return pool


def _lower_priority(by: int) -> None:
    tid = threading.get_native_id()
    os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + by))


def one_torch_thread() -> None:
    """This thread's torch ops on one intra-op thread, whatever other threads set later (a
    thread takes the default count on its first torch query, so that query comes first)."""
    torch.get_num_threads()
    torch.set_num_threads(1)
