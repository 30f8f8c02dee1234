"""What runs inside a Dask worker: the predictor and the raster, opened once per worker process,
and the two task functions (one tile's evidence for a raster-wide predictor, one tile's field).

Tasks carry paths and small descriptions, never open readers or models: a worker rebuilds the
predictor from its :class:`PredictorSpec` (the model is read from disk once per worker) and reopens
the raster by path, both cached for the life of the worker process. Torch runs one thread per
worker, so ``N`` workers use ``N`` cores.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geoalign.inference.protocol import RasterWidePredictor, TileWorker
from geoalign.inference.tiling import (Tile, TileInputs, WorkGrid, fix_raster_wide, predict_tile, tile_evidence,
                                       weighted_field)
from geoalign.io.atomic import atomic_path
from geoalign.io.raster import RasterReader


@dataclass(frozen=True)
class PredictorSpec:
    """The arguments of :func:`geoalign.align.resolve.resolve_predictor`: enough to build the same
    predictor in any process (``model_dir`` must be readable there)."""

    method: str | None = None
    model_dir: str | None = None
    search_px: int = 40
    learned_scales: tuple[int, ...] | None = None
    pick_scales: tuple[int, ...] | None = None
    passes: int = 1
    pick_passes: int = 1
    symmetries: int = 1

    def resolve(self):
        """(predictor, method name, note), as ``geoalign align`` resolves them."""
        from geoalign.align.resolve import resolve_predictor

        return resolve_predictor(self.method, self.model_dir, search_px=self.search_px,
                                 learned_scales=self.learned_scales, pick_scales=self.pick_scales,
                                 passes=self.passes, pick_passes=self.pick_passes, symmetries=self.symmetries)


@dataclass(frozen=True)
class RasterJob:
    """What every task of one raster shares: the raster's path, the working grid and the map
    channels (the buildings travel with each tile: only those under its input window)."""

    raster_path: str
    grid: WorkGrid
    channels: tuple[str, ...]
    spec: PredictorSpec


_lock = threading.Lock()
_predictors: dict[PredictorSpec, object] = {}
_readers: dict[tuple, RasterReader] = {}
_hooks: dict[str, object] = {}  # job key → the per-tile hook's worker side (one job at a time)


def _one_thread() -> None:
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def worker_predictor(spec: PredictorSpec):
    """The worker's predictor for ``spec``, built (model read from disk) on first use."""
    with _lock:
        if spec not in _predictors:
            _one_thread()
            _predictors[spec] = spec.resolve()[0]
        return _predictors[spec]


def warm_up(spec: PredictorSpec, raster_path: str) -> None:
    """Build the predictor and open the raster ahead of the first tile (while the client reads
    the buildings)."""
    worker_predictor(spec)
    worker_reader(raster_path)


def worker_reader(path: str) -> RasterReader:
    """The worker's open reader of ``path`` (reopened by path in each worker, never pickled; a
    file rewritten in place, another size or modification time, is opened again)."""
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    with _lock:
        if key not in _readers:
            _readers[key] = RasterReader(path)
        return _readers[key]


def _inputs(job: RasterJob, geoms_work_px: np.ndarray) -> TileInputs:
    return TileInputs(worker_reader(job.raster_path), job.grid, geoms_work_px, job.channels)


def evidence_task(job: RasterJob, tile: Tile, geoms_work_px: np.ndarray) -> np.ndarray | None:
    """Map step of the raster-wide pass: one tile's evidence (:func:`tile_evidence`)."""
    return tile_evidence(_inputs(job, geoms_work_px), worker_predictor(job.spec), tile)


def worker_hook(key: str, setup) -> TileWorker:
    """The worker side of a per-tile hook (``setup.build()``), built once per job."""
    with _lock:
        if key not in _hooks:
            _one_thread()
            _hooks.clear()
            _hooks[key] = setup.build()
        return _hooks[key]


def field_task(job: RasterJob, tile: Tile, geoms_work_px: np.ndarray, evidence: np.ndarray | None,
               out_path: str, hook: tuple[str, object, str] | None = None) -> tuple[bool, bool]:
    """One tile's weighted footprint field, saved to ``out_path`` (atomically: a finished window
    is on disk whole or not at all); returns (has buildings, some valid pixel).

    ``evidence``: the summed raster-wide evidence for a :class:`RasterWidePredictor` (fixed here
    exactly as in the client), else None. ``hook``: (job key, the hook's picklable setup, path):
    the hook's part of this tile (:class:`~geoalign.inference.protocol.TileWorker`) is saved to
    the path before the field, so a finished window always has its part.
    """
    predictor = worker_predictor(job.spec)
    if isinstance(predictor, RasterWidePredictor):
        fix_raster_wide(predictor, evidence)
    result = predict_tile(_inputs(job, geoms_work_px), predictor, tile, with_stages=hook is not None)
    if hook is not None:
        key, setup, part_path = hook
        save_hook_part(Path(part_path), worker_hook(key, setup).tile_part(result))
    has, valid_any = result.has_buildings, bool(result.has_buildings and result.valid.any())
    save_part(Path(out_path), weighted_field(tile, result.field) if has else None, valid_any)
    return has, valid_any


def save_hook_part(path: Path, part: dict[str, np.ndarray]) -> None:
    """Write a hook's tile part (``.npz`` of plain arrays) atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **part)


def load_hook_part(path: Path) -> dict[str, np.ndarray]:
    """A saved hook part (no pickle)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def save_part(path: Path, weighted: np.ndarray | None, valid_any: bool) -> None:
    """Write one tile's part (``.npy`` field, or an empty marker) atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.zeros((0,), np.float32) if weighted is None else weighted.astype(np.float32, copy=False))
        np.save(f, np.array([valid_any]))


def load_part(path: Path) -> tuple[np.ndarray | None, bool]:
    """(weighted field or None, some valid pixel) of a saved part."""
    with open(path, "rb") as f:
        field = np.load(f)
        valid_any = bool(np.load(f)[0])
    return (None if field.size == 0 else field), valid_any
