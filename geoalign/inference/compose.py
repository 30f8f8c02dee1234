"""Chaining predictors: each stage sees the map as moved by the stages before it.

E.g. the classical local-offset search as a coarse stage, then a learned chain for the fine
residual. Stage k's field ``psi`` lives on the grid the previous stages align to, so the total is
``compose_fields(phi, psi)`` (geoalign.deform): ``phi(q) + psi(q + phi(q))``.

The warps run in torch (``grid_sample``, the chain's own warps, tested equal to the numpy ones of
:mod:`geoalign.deform` in ``tests/model/test_warp.py``): on a 1000² tile scipy's
``map_coordinates`` costs 1.5 s of a 3.9 s pipeline. torch is imported where it is used, so
importing :mod:`geoalign.inference` or :mod:`geoalign.align` does not load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from geoalign.inference.protocol import FieldPredictor, StageEvidence, WindowedPredictor

if TYPE_CHECKING:
    import torch


def _t(a: np.ndarray) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None]


def move_map(map_: np.ndarray, field: np.ndarray, *, iterations: int = 5,
             step_px: int | None = None) -> np.ndarray:
    """The misaligned map raster moved to where ``field`` says it belongs (binary channels kept).

    The inverse field is solved on a ``step_px`` times coarser grid (default
    :data:`~geoalign.model.warp.INVERSION_STEP_PX`) and interpolated back: the
    fields composed here (a classical stage's smoothly interpolated window offsets) vary over tens
    of pixels. On a 12 px smooth field the moved map then differs from the exact warp on 0.6 % of
    the fill pixels and no vertex pixel (full-resolution inversion in torch: 0.5 %; a 4× coarser
    grid: 0.9 % and 2.4 % of the vertices)."""
    if not np.any(field):
        return map_
    import torch

    from geoalign.model.warp import INVERSION_STEP_PX, move_map_torch

    step = INVERSION_STEP_PX if step_px is None else step_px
    with torch.inference_mode():
        moved = move_map_torch(_t(map_), _t(field), iterations, step_px=step)
    return (moved[0] >= 0.5).to(torch.float32).numpy()


def _compose(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``first(q) + second(q + first(q))`` (:func:`geoalign.deform.compose_fields`, in torch)."""
    import torch

    from geoalign.model.warp import compose_fields_torch

    with torch.inference_mode():
        return compose_fields_torch(_t(first), _t(second))[0].numpy()


class ComposedPredictor:
    """A FieldPredictor (and :class:`~geoalign.inference.protocol.StagedPredictor`) running
    ``stages`` in order, composing their fields. The stages share one GSD and one set of map
    channels."""

    def __init__(self, stages: Sequence[FieldPredictor], *, name: str | None = None) -> None:
        self.stages = list(stages)
        if not self.stages:
            raise ValueError("a composed predictor needs at least one stage")
        gsds = {s.gsd_m for s in self.stages if s.gsd_m}
        if len(gsds) > 1:
            raise ValueError(f"stages work at different GSDs {sorted(gsds)}; wrap them per GSD")
        channels = {tuple(s.channels) for s in self.stages}
        if len(channels) > 1:
            raise ValueError(f"stages read different map channels {sorted(channels)}")
        self.gsd_m: float | None = gsds.pop() if gsds else None
        self.channels: tuple[str, ...] = channels.pop()
        self._contexts = [int(s.context_px) for s in self.stages]
        self.context_px = int(sum(self._contexts))
        self.name: str = name or "+".join(s.name for s in self.stages)

    def predict(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray) -> np.ndarray:
        return self.predict_stages(image, valid, map_)[0]

    def predict_stages(self, image: np.ndarray, valid: np.ndarray,
                       map_: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], StageEvidence]:
        """The composed field, each stage's own field (stage k's on the map moved by stages < k)
        and what the stages saw: their input maps and the first per-window stage's windows
        (centres in ``image``'s pixels)."""
        totals, own, maps, windows = self._run(image, valid, map_)
        return totals[-1], own, StageEvidence(tuple(maps), windows)

    def predict_totals(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray) -> list[np.ndarray]:
        """The composed field after each stage: stage 1's, stages 1–2's, …, all stages'."""
        return self._run(image, valid, map_)[0]

    def _run(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray):
        totals: list[np.ndarray] = []
        own: list[np.ndarray] = []
        maps: list[np.ndarray] = []
        windows: tuple = ()
        for i, stage in enumerate(self.stages):
            moved = map_ if i == 0 else move_map(map_, totals[-1])
            field, offset = within_own_context(stage, image, valid, moved, self.context_px - self._contexts[i])
            if not windows and isinstance(stage, WindowedPredictor):
                windows = tuple(w.shifted(offset, offset) for w in stage.last_windows)
            own.append(field)
            maps.append(moved)
            totals.append(field if i == 0 else _compose(totals[-1], field))
        return totals, own, maps, windows


def within_own_context(stage: FieldPredictor, image: np.ndarray, valid: np.ndarray, map_: np.ndarray,
                        margin: int) -> tuple[np.ndarray, int]:
    """``stage``'s field on the tile less ``margin`` px per side, the ring outside extended by its
    nearest values; and where the window it ran on starts in the tile (px, both axes).

    The tile holds the footprint plus every stage's context; each stage runs on the footprint
    plus its own context (the margin is the others' share), the window it gets when it runs
    alone:

    * the local-offset search lays its window lattice from the tile's corner, so a wider window
      shifts the lattice and changes its answer (held-out strips, 32 px, 6 seeds: 3.44 px on its
      own window against 4.07 px with the learned stage's 74 px added around it); on its own
      window the first stage equals ``local`` alone (tested);
    * the learned stage, last, needs only its own 74 px around the footprint: the first stage's
      72 px as well would add a fifth more pixels to compute on 2048-px tiles, all thrown away.

    The ring feeds the next stage's context only (its outer 2 px at most: contexts 72 and 74)."""
    h, w = image.shape[-2:]
    m = int(margin)
    if m <= 0 or h <= 2 * m or w <= 2 * m:
        return np.asarray(stage.predict(image, valid, map_), np.float32), 0
    inner = (slice(m, h - m), slice(m, w - m))
    field = np.asarray(stage.predict(image[(slice(None), *inner)], valid[inner], map_[(slice(None), *inner)]),
                       np.float32)
    return np.pad(field, ((0, 0), (m, m), (m, m)), mode="edge"), m


def behind_local(learned: FieldPredictor, *, search_px: int = 40) -> ComposedPredictor:
    """The ``local+learned`` pipeline: the classical local-offset search
    (:class:`~geoalign.baselines.LocalOffsetPredictor`), then ``learned`` on its residual, both on
    ``learned``'s grid."""
    from geoalign.baselines import classical_predictor

    local = classical_predictor("local", search_px=search_px, gsd_m=learned.gsd_m)
    return ComposedPredictor([local, learned], name="local+learned")
