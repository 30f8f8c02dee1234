"""Chaining predictors: each stage sees the map as moved by the stages before it.

E.g. the classical local-offset search as a coarse stage, then a learned chain for the fine
residual. Stage k's field ``psi`` lives on the grid the previous stages align to, so the total is
``compose_fields(phi, psi)`` (geoalign.deform): ``phi(q) + psi(q + phi(q))``.
"""

from __future__ import annotations

import numpy as np

from geoalign.deform import compose_fields, invert_field, warp_raster


def move_map(map_: np.ndarray, field: np.ndarray, *, iterations: int = 5) -> np.ndarray:
    """The misaligned map raster moved to where ``field`` says it belongs (binary channels kept)."""
    if not np.any(field):
        return map_
    psi = invert_field(field, iterations=iterations)
    return (warp_raster(map_, psi, order=1) >= 0.5).astype(np.float32)


class ComposedPredictor:
    """A FieldPredictor running ``stages`` in order, composing their fields."""

    def __init__(self, stages, *, name: str | None = None) -> None:
        self.stages = list(stages)
        if not self.stages:
            raise ValueError("a composed predictor needs at least one stage")
        gsds = {s.gsd_m for s in self.stages if getattr(s, "gsd_m", None)}
        if len(gsds) > 1:
            raise ValueError(f"stages work at different GSDs {sorted(gsds)}; wrap them per GSD")
        self.gsd_m = gsds.pop() if gsds else None
        self.context_px = int(sum(int(getattr(s, "context_px", 0) or 0) for s in self.stages))
        self.name = name or "+".join(getattr(s, "name", type(s).__name__) for s in self.stages)

    def predict(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray) -> np.ndarray:
        total = np.zeros((2, *image.shape[-2:]), np.float32)
        for i, stage in enumerate(self.stages):
            moved = map_ if i == 0 else move_map(map_, total)
            field = np.asarray(stage.predict(image, valid, moved), np.float32)
            total = field if i == 0 else compose_fields(total, field)
        return total
