"""The learned chain behind the field-predictor protocol (:mod:`geoalign.inference.protocol`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from geoalign.model.chain import Chain, ChainConfig
from geoalign.model.checkpoint import load_model
from geoalign.model.threads import torch_threads
from geoalign.model.warp import INVERSION_STEP_PX

__all__ = ["ChainPredictor", "load_predictor", "untrained_predictor", "DEFAULT_MODEL_DIR"]


class ChainPredictor:
    """A :class:`Chain` behind the :class:`~geoalign.inference.protocol.FieldPredictor` protocol
    (no gradients, float32); ``inversion_step_px``: :meth:`Chain.forward`'s (1: exact, as in
    training)."""

    name = "learned"

    def __init__(self, chain: Chain, gsd_m: float | None, *, threads: int | None = None,
                 inversion_step_px: int = INVERSION_STEP_PX) -> None:
        self.chain = chain.eval()
        self.inversion_step_px = int(inversion_step_px)
        self.gsd_m = gsd_m
        self.context_px = chain.context_px
        self.channels = chain.config.channels
        self.threads = threads

    def predict(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray) -> np.ndarray:
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"image must be (3, H, W), got {image.shape}")
        if map_.shape[0] != len(self.channels) or map_.shape[1:] != image.shape[1:]:
            raise ValueError(f"map must be ({len(self.channels)}, H, W) on the image grid, got {map_.shape}")
        h, w = image.shape[1:]
        # Buildings over invalid pixels (nodata, or the padding past the raster's edge that tiles
        # reach into) have no image evidence: they are left out of the map. The image itself is
        # kept as given (the tiler pads it by reflection): blacked out, it would show a false edge
        # all along the raster border for the network to match (Kampala held-out strip, 8 px:
        # local+learned 5.16 px median with the image blacked out, 1.44 px as given).
        # The inputs are copied once, straight onto the chain's grid (a multiple of 2^max_scale:
        # the chain's own padding, image replicated, map zero), so the chain copies neither.
        m = 2 ** max(self.chain.config.scales)
        H, W = h + (-h) % m, w + (-w) % m
        visible = np.zeros((map_.shape[0], H, W), np.float32)
        np.multiply(map_, valid[None], out=visible[:, :h, :w], casting="unsafe")
        if h == 0 or w == 0 or not np.any(visible):
            return np.zeros((2, h, w), dtype=np.float32)  # no buildings: nothing to move
        img = np.pad(np.asarray(image, np.float32), ((0, 0), (0, H - h), (0, W - w)), mode="edge")
        with torch_threads(self.threads), torch.inference_mode():
            field = self.chain(torch.from_numpy(img)[None], torch.from_numpy(visible)[None], crop_context=True,
                               inversion_step_px=self.inversion_step_px)
        return np.ascontiguousarray(field[0, :, :h, :w].numpy(), dtype=np.float32)


DEFAULT_MODEL_DIR = Path(__file__).parent / "default"


def load_predictor(model_dir: str | Path | None = None, *, scales: tuple[int, ...] | None = None) -> ChainPredictor:
    """Load a model folder (default: the shipped model), optionally only some of its scales.
    Raises ``CheckpointError`` if unusable."""
    chain, config = load_model(DEFAULT_MODEL_DIR if model_dir is None else model_dir)
    if scales is not None:
        chain = chain.fine_stages(tuple(scales))
    return ChainPredictor(chain, config.get("gsd_m"))


def untrained_predictor(config: ChainConfig = ChainConfig(), gsd_m: float | None = 0.3, seed: int = 0) -> ChainPredictor:
    """A freshly initialized chain (predicts a zero field: the last layer starts at zero)."""
    torch.manual_seed(seed)
    return ChainPredictor(Chain(config), gsd_m)
