"""A predictor's field averaged over neighbouring buildings (the realigning field of training rounds)."""

from __future__ import annotations

import numpy as np
import pytest

from geoalign.inference.smooth import SmoothedPredictor
from geoalign.rasterize import MAP_CHANNELS

SMOOTH = np.array([2.0, -1.0], np.float32)  # the misalignment every building shares (px)


class ScatteredField:
    """A FieldPredictor: ``SMOOTH`` plus one offset per building (its box ± 4 px), as a chain's
    prediction noise scatters from building to building."""

    name = "scattered"
    gsd_m = 0.3
    channels = MAP_CHANNELS
    context_px = 10

    def __init__(self, boxes, offsets) -> None:
        self.boxes, self.offsets = boxes, offsets

    def predict(self, image, valid, map_):
        field = np.broadcast_to(SMOOTH[:, None, None], (2, *image.shape[-2:])).copy()
        for (r, c), off in zip(self.boxes, self.offsets):
            field[:, max(r - 4, 0):r + 24, max(c - 4, 0):c + 24] += off[:, None, None]
        return field


def _scene(side: int = 256):
    """Nine 20 px buildings on a 3 × 3 lattice; map channels fill and edges."""
    boxes = [(r, c) for r in (40, 118, 196) for c in (40, 118, 196)]
    map_ = np.zeros((len(MAP_CHANNELS), side, side), np.float32)
    for r, c in boxes:
        map_[0, r:r + 20, c:c + 20] = 1.0
        map_[1, r:r + 20, c:c + 20] = 1.0
        map_[1, r + 1:r + 19, c + 1:c + 19] = 0.0
    return np.full((3, side, side), 0.5, np.float32), np.ones((side, side), bool), map_, boxes


def test_smoothing_keeps_the_shared_misalignment_and_averages_the_scatter_out():
    image, valid, map_, boxes = _scene()
    offsets = np.random.default_rng(0).normal(0.0, 1.5, (len(boxes), 2)).astype(np.float32)
    offsets -= offsets.mean(0)  # the scatter averages to zero over the nine buildings
    inner = ScatteredField(boxes, offsets)
    edges = map_[1] > 0
    raw = np.linalg.norm(inner.predict(image, valid, map_)[:, edges] - SMOOTH[:, None], axis=0)

    def error_px(sigma_px: float) -> float:
        out = SmoothedPredictor(inner, sigma_px).predict(image, valid, map_)
        return float(np.median(np.linalg.norm(out[:, edges] - SMOOTH[:, None], axis=0)))

    assert np.median(raw) > 1.2
    assert error_px(64.0) < 0.45 * np.median(raw)  # 0.55 against 1.51 px: averaged over the lattice
    assert error_px(8.0) > 0.9 * np.median(raw)  # within one building's reach nothing is averaged
    smoothed = SmoothedPredictor(inner, 64.0)
    assert smoothed.context_px == 10 + 192 and smoothed.name == "scattered"


def test_a_field_shared_by_every_building_is_kept_exactly():
    image, valid, map_, boxes = _scene()
    out = SmoothedPredictor(ScatteredField(boxes, np.zeros((len(boxes), 2), np.float32)), 32.0).predict(
        image, valid, map_)
    assert np.allclose(out, SMOOTH[:, None, None], atol=1e-4)
    with pytest.raises(ValueError, match="positive"):
        SmoothedPredictor(ScatteredField(boxes, []), 0.0)
