"""Dataset storage: fixed-size shards of plain ``.npy`` arrays, memory-mapped when read.

Layout: ``DATASET/scale{s}/{split}-{k:05d}.{array}.npy`` with arrays ``image`` (uint8, 3×P×P),
``valid`` (uint8, P×P), ``map`` (uint8, C×P×P, the misaligned map), ``map_true`` (uint8),
``field`` (float32, 2×P×P, pixels of scale s), ``meta`` (float64 rows: source, window col_off,
row_off, width, height, amplitude_px). A writer keeps at most one shard in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ARRAYS = ("image", "valid", "map", "map_true", "field", "meta")


def shard_stem(scale: int, split: str, k: int) -> str:
    return f"scale{scale}/{split}-{k:05d}"


class ShardWriter:
    """Buffers pairs of one (scale, split) and writes a shard each ``shard_size`` pairs."""

    def __init__(self, root: Path, scale: int, split: str, shard_size: int) -> None:
        self.root, self.scale, self.split, self.shard_size = root, scale, split, shard_size
        self.buffer: dict[str, list[np.ndarray]] = {name: [] for name in ARRAYS}
        self.shards: list[dict] = []
        self.count = 0

    def add(self, pair, meta: np.ndarray) -> None:
        b = self.buffer
        b["image"].append(np.round(pair.image * 255).astype(np.uint8))
        b["valid"].append(pair.valid.astype(np.uint8))
        b["map"].append(np.round(pair.map_misaligned * 255).astype(np.uint8))
        b["map_true"].append(np.round(pair.map_true * 255).astype(np.uint8))
        b["field"].append(pair.field.astype(np.float32))
        b["meta"].append(np.asarray(meta, dtype=np.float64))
        self.count += 1
        if len(b["image"]) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        n = len(self.buffer["image"])
        if n == 0:
            return
        stem = shard_stem(self.scale, self.split, len(self.shards))
        (self.root / stem).parent.mkdir(parents=True, exist_ok=True)
        for name in ARRAYS:
            np.save(self.root / f"{stem}.{name}.npy", np.stack(self.buffer[name]))
            self.buffer[name] = []
        self.shards.append({"stem": stem, "count": n})


def open_shard(root: Path, stem: str) -> dict[str, np.ndarray]:
    """Memory-map every array of a shard (nothing is read until indexed)."""
    return {name: np.load(root / f"{stem}.{name}.npy", mmap_mode="r") for name in ARRAYS}
