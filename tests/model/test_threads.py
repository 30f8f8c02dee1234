"""torch thread counts: per block, and for a worker that runs beside the caller."""

from __future__ import annotations

import os
import sys
import threading

import pytest
import torch

from geoalign.model.threads import one_thread_worker, torch_threads


def test_a_one_thread_worker_leaves_the_callers_thread_count_alone():
    with torch_threads(2):
        pool = one_thread_worker("test")
        try:
            assert torch.get_num_threads() == 2
            assert pool.submit(torch.get_num_threads).result() == 1
            with torch_threads(1):  # the caller's blocks do not reach the worker
                assert pool.submit(torch.get_num_threads).result() == 1
            assert torch.get_num_threads() == 2
        finally:
            pool.shutdown()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is Linux's")
def test_a_nice_worker_runs_at_a_lower_priority_than_its_caller():
    def nice_of_this_thread() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    pool = one_thread_worker("test", nice=10)
    try:
        assert pool.submit(nice_of_this_thread).result() == min(19, nice_of_this_thread() + 10)
        assert nice_of_this_thread() == os.getpriority(os.PRIO_PROCESS, 0)  # the caller's is unchanged
    finally:
        pool.shutdown()
