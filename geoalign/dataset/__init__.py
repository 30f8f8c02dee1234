"""Multiscale training pairs: (image patch, misaligned map patch, ground-truth field).

``build_dataset`` writes a dataset folder (manifest + memory-mapped shards); ``PairDataset`` reads
it as a torch ``Dataset`` (imported lazily: building a dataset does not need torch);
``write_preview`` (in ``preview``) draws pairs with their fields as arrows.
"""

from geoalign.dataset.build import build_dataset
from geoalign.dataset.config import DatasetConfig, SourcePair

__all__ = ["DatasetConfig", "SourcePair", "build_dataset", "PairDataset"]


def __getattr__(name: str):
    if name == "PairDataset":
        from geoalign.dataset.torch_dataset import PairDataset

        return PairDataset
    raise AttributeError(name)
