"""The Dask cluster a distributed ``align`` runs on: a ``LocalCluster`` of ``workers`` processes
(one thread each) or an existing scheduler at ``address``."""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

from geoalign.errors import GeoalignError, OptionError


class ClusterError(GeoalignError):
    """The Dask scheduler cannot be reached, or Dask is not installed."""


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ClusterError("--workers/--scheduler need Dask: pip install 'geoalign[dask]'.") from None
    return distributed


#: The environment of each LocalCluster worker process: one thread per numeric library, and glibc's
#: own malloc tuning. Dask's default also sets ``MALLOC_TRIM_THRESHOLD_=65536``, which pins the mmap
#: threshold at 128 KiB: every large array becomes a fresh mmap with its page faults, and a tile
#: costs 1.8× the CPU time (torch convolutions: 3.7 s against 2.1 s for 30 of them on 512² px).
WORKER_ENV = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}


@contextlib.contextmanager
def local_cluster(n_workers: int, *, memory_limit: str | int = "auto") -> Iterator[object]:
    """A ``LocalCluster`` of ``n_workers`` processes with one thread each (:data:`WORKER_ENV`)."""
    distributed = _distributed()
    import dask

    # Dask's statistical profiler samples each worker's task thread every 10 ms for the dashboard,
    # which a LocalCluster started here does not serve.
    with dask.config.set({"distributed.nanny.pre-spawn-environ": dict(WORKER_ENV),
                          "distributed.worker.profile.enabled": False}), \
            distributed.LocalCluster(n_workers=int(n_workers), threads_per_worker=1, processes=True,
                                     memory_limit=memory_limit, scheduler_kwargs={"dashboard": False},
                                     silence_logs=logging.ERROR) as cluster:
        yield cluster


@contextlib.contextmanager
def dask_client(workers: int | None = None, address: str | None = None, *,
                memory_limit: str | int = "auto") -> Iterator[object]:
    """A ``distributed.Client``: on ``address`` when given, else on a new ``LocalCluster`` of
    ``workers`` processes with one thread each (closed on exit)."""
    distributed = _distributed()
    if logging.getLogger("geoalign").getEffectiveLevel() > logging.DEBUG:
        # Dask's own INFO lines (scheduler address, worker start and stop) are not geoalign's
        # messages; -vv shows them.
        for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.worker"):
            logging.getLogger(name).setLevel(logging.ERROR)
    if address and workers:
        raise OptionError("give --workers (a local cluster) or --scheduler (an existing one), not both.")
    if address:
        try:
            client = distributed.Client(address, timeout="20s")
        except (OSError, TimeoutError) as err:
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {err}") from None
        with client:
            yield client
        return
    with local_cluster(int(workers or 1), memory_limit=memory_limit) as cluster, \
            distributed.Client(cluster) as client:
        yield client
