"""Training: per-scale trainer (resumable) and the iterative dataset-realignment round loop."""

from geoalign.train.trainer import TrainConfig, TrainSet, train_chain

__all__ = ["TrainConfig", "TrainSet", "train_chain"]
