"""Multiscale training pairs: (image patch, misaligned map patch, ground-truth field).

``build_dataset`` writes a dataset folder (manifest + memory-mapped shards); ``PairDataset`` reads
it as a torch ``Dataset``; ``write_preview`` draws pairs with their fields as arrows.
"""

from geoalign.dataset.config import DatasetConfig, SourcePair
from geoalign.dataset.build import build_dataset
from geoalign.dataset.torch_dataset import PairDataset

__all__ = ["DatasetConfig", "SourcePair", "build_dataset", "PairDataset"]
