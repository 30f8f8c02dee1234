"""The learned part: scale networks, their coarse-to-fine chain, checkpoints, the chain as a predictor."""

from geoalign.model.chain import Chain, ChainConfig
from geoalign.model.checkpoint import load_model, save_model
from geoalign.model.predictor import ChainPredictor, load_predictor
from geoalign.model.scale_net import ScaleNet, ScaleNetConfig

__all__ = ["Chain", "ChainConfig", "ScaleNet", "ScaleNetConfig", "ChainPredictor", "load_predictor",
           "load_model", "save_model"]
