"""Training on several processes (PyTorch DistributedDataParallel): process group, sampler, rank-0 writes.

A run is defined by its global batch size and seed, not by its process count. Every rank draws the
step's global batch from ``numpy.random.default_rng([seed, step])`` (the same draw everywhere),
keeps its own contiguous rows (:func:`rank_rows`) and augments them exactly as the whole batch would
be (:func:`augment_rows`); the loss is normalised by the global batch's weights
(:func:`mean_over_ranks`) and DDP averages the gradients, so a step's update is the one-process
update up to float rounding, and a checkpoint resumes with any process count.

Rank 0 alone validates and writes (checkpoints, history, datasets, realigned maps, model folder);
the others wait for its result (:func:`on_main`). Launch: ``geoalign train --nproc N`` spawns N
local processes (:func:`launch`); ``torchrun`` starts one process per rank on each machine and sets
``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``, which :func:`process_group` reads
(docs/distributed.md). The collectives run on gloo (the trainer's tensors are on the CPU); on a
machine with CUDA, CUDA tensors would go through nccl.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from geoalign.errors import GeoalignError
from geoalign.train.augment import augment_batch, colour_jitter

T = TypeVar("T")

# How long a rank waits in a collective: the other ranks wait there while rank 0 builds a round's
# dataset or realigns the maps, which takes hours on a large dataset.
COLLECTIVE_TIMEOUT = timedelta(hours=12)
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class DistributedSetupError(GeoalignError):
    """Processes asked for in a way that cannot run (e.g. ``--nproc`` inside torchrun)."""


@dataclass(frozen=True)
class Group:
    """This process's place in the run: ``rank`` in ``[0, world_size)``; one process is ``Group(0, 1)``."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current() -> Group:
    """The running process group, or the one-process group when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return Group(dist.get_rank(), dist.get_world_size())
    return Group()


def is_main() -> bool:
    """Whether this process writes (rank 0, or the only process)."""
    return current().is_main


def launched_by_torchrun() -> bool:
    """torchrun (or any env:// launcher) set the rank variables of this process."""
    return all(v in os.environ for v in TORCHRUN_VARS)


def backend() -> str:
    """gloo for CPU tensors, nccl for CUDA tensors (when CUDA is there)."""
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


@contextmanager
def process_group(timeout: timedelta = COLLECTIVE_TIMEOUT) -> Iterator[Group]:
    """Join the run described by RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (env://); leave it on exit."""
    if dist.is_initialized():
        yield current()
        return
    if torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count())
    dist.init_process_group(backend(), init_method="env://", timeout=timeout)
    try:
        yield current()
        # every rank past its last collective before any tears the group down: a rank leaving
        # while gloo still works for another can abort (SIGABRT) at exit
        dist.barrier()
    finally:
        dist.destroy_process_group()


# --- the sampler: each rank's part of the step's global batch ------------------------------------

def rank_rows(batch_size: int, group: Group | None = None) -> slice:
    """This rank's rows of a ``batch_size`` global batch: contiguous, disjoint across ranks, covering it
    (sizes differ by at most one row; the loss weights pixels, so uneven parts stay exact)."""
    g = group or current()
    if batch_size < g.world_size:
        raise DistributedSetupError(f"batch size {batch_size} is smaller than the {g.world_size} processes: "
                                    "each process needs at least one pair of every batch")
    return slice(g.rank * batch_size // g.world_size, (g.rank + 1) * batch_size // g.world_size)


def augment_rows(rows: dict[str, torch.Tensor], rng: np.random.Generator, part: slice, batch_size: int, *,
                 colour: bool = True, **kwargs: Any) -> dict[str, torch.Tensor]:
    """Augment rows ``part`` of a ``batch_size`` global batch exactly as
    :func:`~geoalign.train.augment.augment_batch` augments the whole batch with the same ``rng``.

    The batch-wide draws (rotation, flip, resolution, crop) come first and are the same on every
    rank; the per-row colour draws come last, so the global batch's are drawn and this part's kept.
    """
    if part == slice(0, batch_size):
        return augment_batch(rows, rng, colour=colour, **kwargs)
    out = augment_batch(rows, rng, colour=False, **kwargs)
    if colour:
        image = out["image"]
        full = image.new_zeros((batch_size, *image.shape[1:]))
        full[part] = image
        out["image"] = colour_jitter(full, rng)[part]
    return out


# --- gradients and losses over the ranks ------------------------------------------------------------

def mean_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """Mean of ``t`` over the ranks (``t`` itself in one process). A rank's loss divided by the mean of
    the ranks' weight sums makes the DDP-averaged gradient that of the global batch's loss."""
    world = current().world_size
    if world == 1:
        return t
    t = t.detach().clone()
    dist.all_reduce(t)
    return t / world


def data_parallel(net_of: Callable[[int], nn.Module]) -> Callable[[int], nn.Module]:
    """``net_of`` (scale -> network) with each network wrapped once in DistributedDataParallel, whose
    backward all-reduces (averages) the gradients; ``net_of`` itself in one process."""
    if current().world_size == 1:
        return net_of
    wrapped: dict[int, nn.Module] = {}  # the wrapper holds its module, so an id is never reused

    def net(scale: int) -> nn.Module:
        module = net_of(scale)
        if id(module) not in wrapped:  # every rank draws the same scale at the same step
            wrapped[id(module)] = nn.parallel.DistributedDataParallel(module, forward_sync_buffers=False)
        return wrapped[id(module)]

    return net


def agree_on_step(loss: torch.Tensor, parts: dict[str, float], stop: bool) -> tuple[torch.Tensor, dict[str, float], bool]:
    """The global batch's loss and loss parts (means over the ranks), and rank 0's decision to stop
    (a time budget), in one all-reduce so every rank leaves the loop at the same step."""
    g = current()
    if g.world_size == 1:
        return loss.detach(), parts, stop
    keys = sorted(parts)
    t = torch.tensor([float(loss.detach()), *(parts[k] for k in keys), float(stop and g.is_main)], dtype=torch.float64)
    dist.all_reduce(t)
    means = (t[:-1] / g.world_size).tolist()
    return torch.tensor(means[0]), dict(zip(keys, means[1:])), bool(t[-1] > 0)


# --- rank 0 does the writing, the others wait -----------------------------------------------------

def on_main(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` run by rank 0 only; every rank returns its result (the others wait for
    it). An exception on rank 0 is raised on every rank, so no rank is left waiting."""
    if current().world_size == 1:
        return fn(*args, **kwargs)
    box: list[Any] = [None]
    error: Exception | None = None
    if is_main():
        try:
            box[0] = (True, fn(*args, **kwargs))
        except Exception as err:  # every rank must leave the broadcast, then raise
            error, box[0] = err, (False, err)
    dist.broadcast_object_list(box, src=0)
    ok, value = box[0]
    if error is not None:
        raise error
    if not ok:
        raise value
    return value


# --- launching ------------------------------------------------------------------------------------

def launch(fn: Callable[..., T], nproc: int, *args: Any, **kwargs: Any) -> T | None:
    """Run ``fn(*args, **kwargs)`` on every rank of a run; returns rank 0's result.

    Under torchrun this process is one rank (other ranks return None); otherwise ``nproc`` > 1
    spawns ``nproc`` local processes, and ``nproc`` = 1 calls ``fn`` here.
    """
    if launched_by_torchrun():
        if nproc > 1:
            raise DistributedSetupError("--nproc starts local processes; under torchrun use its --nproc-per-node")
        with process_group() as group:
            if not group.is_main:
                _quiet_rank()
            result = fn(*args, **kwargs)
        return result if group.is_main else None
    if nproc <= 1:
        return fn(*args, **kwargs)
    return _spawn(fn, nproc, args, kwargs)


def _quiet_rank() -> None:
    """Ranks other than 0 show no progress and only errors (rank 0 speaks for the run)."""
    from geoalign.messages import configure_messages
    from geoalign.progress import configure_progress

    configure_progress("off")
    configure_messages(-1)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(fn: Callable[..., T], nproc: int, args: tuple, kwargs: dict) -> T:
    """``nproc`` local processes (spawned, so each imports torch afresh), rendezvous on a free local port;
    a GeoalignError raised by any rank is raised here as it was (one line in the CLI)."""
    import torch.multiprocessing as mp
    from torch.multiprocessing.spawn import ProcessException

    from geoalign.progress import progress_mode

    verbosity = (logging.WARNING - logging.getLogger("geoalign").getEffectiveLevel()) // 10
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)  # "terminating process ..." after a failure
    with tempfile.TemporaryDirectory(prefix="geoalign-ddp-") as tmp:
        try:
            mp.spawn(_run_rank, args=(nproc, _free_port(), tmp, os.getpid(), fn, args, kwargs, progress_mode(),
                                      verbosity),
                     nprocs=nproc, join=True, start_method="spawn")
        except ProcessException:
            errors = sorted(Path(tmp).glob("error*.pkl"))
            if errors:
                raise pickle.loads(errors[0].read_bytes()) from None
            raise
        return pickle.loads((Path(tmp) / "result.pkl").read_bytes())


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL this rank when the process that spawned it dies: an orphan would go on training and
    writing (torch's own SIGINT is ignored by the ranks of a command started in the background)."""
    from torch.multiprocessing import _prctl_pr_set_pdeathsig  # prctl(PR_SET_PDEATHSIG); no-op off Linux

    _prctl_pr_set_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent_pid:  # it died before the line above
        os._exit(1)


def _run_rank(rank: int, world_size: int, port: int, tmp: str, parent_pid: int, fn: Callable, args: tuple,
              kwargs: dict, progress_mode: str, verbosity: int) -> None:
    """One spawned rank: the variables torchrun would set, the parent's message settings on rank 0."""
    from geoalign.messages import configure_messages
    from geoalign.progress import configure_progress

    _die_with_parent(parent_pid)
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(world_size)})
    if rank == 0:
        configure_progress(progress_mode)
        configure_messages(verbosity)
    else:
        _quiet_rank()
    try:
        with process_group():
            result = fn(*args, **kwargs)
    except GeoalignError as err:
        (Path(tmp) / f"error{rank}.pkl").write_bytes(pickle.dumps(err))
        raise
    if rank == 0:
        (Path(tmp) / "result.pkl").write_bytes(pickle.dumps(result))
    # Leave without the interpreter's teardown: gloo's worker threads can still be winding down
    # after destroy_process_group, and destroying them there aborts the process (SIGABRT,
    # "terminate called without an active exception"); every file of the rank is closed by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
