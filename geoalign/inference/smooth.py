"""A predictor's field averaged over neighbouring buildings (edge-weighted, at a ground scale).

A chain's field scatters from building to building by its own prediction noise (about 1.3 px at
alignment, docs/model.md). Where the misalignment is known to be smooth over a wider area, as
the label noise of one map source is (a georeferencing offset or drift across a sheet), the
edge-weighted mean of the field within ``sigma_px`` keeps that smooth part and averages the
scatter out: the normalized convolution of the chain's own smoothing layer
(:func:`geoalign.model.warp.smooth_field_at_edges`), at full resolution and a width in pixels of
the predictor's grid.

It serves realigning the training maps between rounds (``geoalign train --realign-smooth-px``).
On the self-denoising benchmark, whose label noise has a 250 px correlation length, 64 px take
the realigned maps' RMS error after three rounds from 2.50 to 2.14 px and their median over the
buildings wholly on the image from 1.33 to 1.30 px, from the 8000-step model (``python -m
benchmarks.self_denoising --realign-smooth-px 64``, docs/model.md).
"""

from __future__ import annotations

import math

import numpy as np

from geoalign.inference.protocol import FieldPredictor


class SmoothedPredictor:
    """A FieldPredictor: ``inner``'s field, edge-weighted smoothed over ``sigma_px`` (pixels of
    the predictor's grid). Its context adds the smoothing's 3 σ reach."""

    def __init__(self, inner: FieldPredictor, sigma_px: float) -> None:
        if not sigma_px > 0:
            raise ValueError(f"sigma_px must be positive, got {sigma_px}")
        self.inner, self.sigma_px = inner, float(sigma_px)
        self.name = inner.name
        self.gsd_m = inner.gsd_m
        self.channels = tuple(inner.channels)
        self.context_px = int(inner.context_px) + int(math.ceil(3 * self.sigma_px))

    def predict(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray) -> np.ndarray:
        import torch

        from geoalign.model.scale_net import edge_map
        from geoalign.model.warp import smooth_field_at_edges

        field = np.asarray(self.inner.predict(image, valid, map_), np.float32)
        if not np.any(map_):
            return field
        with torch.inference_mode():
            edges = edge_map(torch.from_numpy(np.ascontiguousarray(map_, np.float32))[None])
            smoothed = smooth_field_at_edges(torch.from_numpy(field)[None], edges, self.sigma_px)
        return smoothed[0].numpy()
