"""Finished windows of a job, recorded in the output folder so a restarted job skips them.

``OUTDIR/.geoalign-progress/<job key>/`` holds one file per finished tile (``r{row}_c{col}.npy``:
its weighted footprint field, or an empty marker for a tile without buildings) and, for a
raster-wide predictor, the summed evidence. The job key hashes everything the fields depend on
(raster, buildings and model files: path, size, modification time; predictor; tile layout;
geoalign version), so a changed input never reuses a stale window. Other keys' folders are removed when a
job starts; the whole ``.geoalign-progress`` folder when its output set is complete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from geoalign import __version__
from geoalign.distributed.worker import PredictorSpec
from geoalign.io.atomic import atomic_path
from geoalign.inference.tiling import Tile

PROGRESS_DIR = ".geoalign-progress"


def _file_id(path: str | Path) -> list:
    p = Path(path)
    st = p.stat()
    return [str(p.resolve()), st.st_size, st.st_mtime_ns]


def job_key(rasters: list[str | Path], buildings: str | Path, spec: PredictorSpec, **layout) -> str:
    """A hash of everything a job's tile fields depend on."""
    from geoalign.model.predictor import DEFAULT_MODEL_DIR

    model_dir = Path(spec.model_dir or DEFAULT_MODEL_DIR)
    model = [_file_id(p) for p in sorted(model_dir.glob("*")) if p.is_file()] if model_dir.is_dir() else []
    doc = {"rasters": [_file_id(r) for r in rasters], "buildings": _file_id(buildings),
           "predictor": asdict(spec), "model": model, "layout": layout, "geoalign": __version__}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


class TileStore:
    """The finished windows of one job (module docstring)."""

    def __init__(self, out_dir: str | Path, key: str) -> None:
        self.root = Path(out_dir) / PROGRESS_DIR
        self.dir = self.root / key

    def open(self) -> "TileStore":
        """Create this job's folder; remove other jobs' (stale) folders."""
        if self.root.is_dir():
            for other in self.root.iterdir():
                if other.is_dir() and other != self.dir and len(other.name) == 16:
                    shutil.rmtree(other, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        return self

    def path(self, tile: Tile) -> Path:
        return self.dir / f"r{tile.row:05d}_c{tile.col:05d}.npy"

    def hook_path(self, tile: Tile) -> Path:
        """The per-tile hook's part of ``tile`` (a trust report's tile records)."""
        return self.dir / f"r{tile.row:05d}_c{tile.col:05d}.hook.npz"

    def finished(self, tile: Tile) -> bool:
        return self.path(tile).is_file()

    def evidence_path(self) -> Path:
        return self.dir / "evidence.npy"

    def load_evidence(self) -> tuple[bool, np.ndarray | None]:
        """(recorded, summed evidence or None)."""
        p = self.evidence_path()
        if not p.is_file():
            return False, None
        arr = np.load(p)
        return True, (None if arr.size == 0 else arr)

    def save_evidence(self, total: np.ndarray | None) -> None:
        with atomic_path(self.evidence_path()) as tmp, open(tmp, "wb") as f:
            np.save(f, np.zeros((0,)) if total is None else total)

    def remove(self) -> None:
        """Remove the whole progress folder (the output set is complete)."""
        shutil.rmtree(self.root, ignore_errors=True)
