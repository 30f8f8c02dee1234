"""Multiscale training pairs: (image patch, misaligned map patch, ground-truth field).

``build_dataset`` writes a dataset folder (manifest + memory-mapped shards); ``PairDataset`` reads
it as a torch ``Dataset`` (imported lazily: building a dataset does not need torch);
``write_preview`` (in ``preview``) draws pairs with their fields as arrows.
"""

from geoalign.lazy import lazy_exports

__all__ = ["DatasetConfig", "SourcePair", "build_dataset", "PairDataset"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "build_dataset": "geoalign.dataset.build", "DatasetConfig": "geoalign.dataset.config",
    "SourcePair": "geoalign.dataset.config", "PairDataset": "geoalign.dataset.torch_dataset",
})
