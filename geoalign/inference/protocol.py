"""The protocol every field predictor follows: learned chains, classical baselines, pipelines.

A predictor maps (image, validity, misaligned map raster) on one grid to the field of
:mod:`geoalign.deform` on that grid. ``gsd_m`` is the ground sampling distance it works at:
callers resample imagery to it (and map the field back); ``context_px`` is the border a tile needs
around it for its output to be valid (tiles overlap by at least that much).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FieldPredictor(Protocol):
    gsd_m: float | None  # ground sampling distance the predictor works at (None: any)
    context_px: int  # border (pixels at gsd_m) a tile needs around it for valid output

    def predict(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray) -> np.ndarray:
        """image (3,H,W) float32 [0,1]; valid (H,W) bool; map_ (C,H,W) float32 {0,1}
        ("fill", "edges", "vertices") of the misaligned buildings → field (2,H,W) float32 px."""
        ...
