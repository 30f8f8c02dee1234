"""A torch ``Dataset`` over a built dataset folder (memory-mapped; bounded memory)."""

from __future__ import annotations

import bisect
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from geoalign.dataset.build import FORMAT_VERSION, MANIFEST
from geoalign.dataset.shards import open_shard
from geoalign.errors import InputFileError
from geoalign.io.versioned_json import read_versioned_json


def read_manifest(root: str | Path) -> dict:
    root = Path(root)
    return read_versioned_json(
        root / MANIFEST, version=FORMAT_VERSION, error=InputFileError,
        missing=f"{root}: not a geoalign dataset (no {MANIFEST}); build one with `geoalign dataset build`.",
        corrupt=f"{root / MANIFEST}: corrupt dataset manifest; rebuild the dataset.",
        mismatch=f"{root}: dataset format {{found}} is not supported (expected {{expected}}); rebuild it.")


class PairDataset(Dataset):
    """Pairs of one scale and split. Items are dicts of float32 tensors:

    ``image`` (3,P,P) in [0,1], ``map`` (C,P,P) misaligned map, ``map_true`` (C,P,P),
    ``valid`` (P,P), ``field`` (2,P,P) in pixels of this scale, ``meta`` (6,).
    """

    def __init__(self, root: str | Path, scale: int, split: str = "train") -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.scale, self.split = scale, split
        self.shard_info = self.manifest["shards"].get(f"{scale}/{split}", [])
        self._shards: dict[int, dict[str, np.ndarray]] = {}
        self.offsets = np.cumsum([0] + [s["count"] for s in self.shard_info]).tolist()

    def __len__(self) -> int:
        return self.offsets[-1]

    def _shard(self, k: int) -> dict[str, np.ndarray]:
        if k not in self._shards:
            self._shards[k] = open_shard(self.root, self.shard_info[k]["stem"])
        return self._shards[k]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = bisect.bisect_right(self.offsets, i) - 1
        arrays = self._shard(k)
        j = i - self.offsets[k]
        return {
            "image": torch.from_numpy(arrays["image"][j].astype(np.float32) / 255.0),
            "map": torch.from_numpy(arrays["map"][j].astype(np.float32) / 255.0),
            "map_true": torch.from_numpy(arrays["map_true"][j].astype(np.float32) / 255.0),
            "valid": torch.from_numpy(arrays["valid"][j].astype(np.float32)),
            "field": torch.from_numpy(np.array(arrays["field"][j], dtype=np.float32)),
            "meta": torch.from_numpy(np.array(arrays["meta"][j], dtype=np.float64)),
        }
