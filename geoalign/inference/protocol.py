"""The protocols every field predictor follows: learned chains, classical baselines, pipelines.

A predictor maps (image, validity, misaligned map raster) on one grid to the field of
:mod:`geoalign.deform` on that grid. Every predictor states:

* ``name`` — what the summary line and ``run.json`` call it (``"local"``, ``"local+learned"``);
* ``gsd_m`` — the ground sampling distance it works at (``None``: the image's own grid); callers
  resample imagery to it and map the field back;
* ``context_px`` — the border (pixels at ``gsd_m``) a tile needs around its footprint for the
  field on the footprint to be valid (tiles overlap by at least that much);
* ``channels`` — the map channels it reads (:data:`geoalign.rasterize.MAP_CHANNELS` order), which
  the tiler rasterizes.

Optional protocols extend it, each checked by ``isinstance`` (never by probing attributes):

* :class:`RasterWidePredictor` — a field that depends on the whole raster (the global
  translation): the tiler first hands it every tile's evidence (``reset``, ``evidence`` per tile summed,
  ``add_evidence``, ``finish``), then asks it for each tile's field;
* :class:`StagedPredictor` — a pipeline of stages (``local+learned``) that can return each stage's
  own field next to the composed one, and what each stage saw (:class:`StageEvidence`), for
  per-tile reports;
* :class:`WindowedPredictor` — a per-window search (the classical local offset) that keeps the
  statistics of every window of its last ``predict`` (``last_windows``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FieldPredictor(Protocol):
    name: str  # e.g. "local", "learned", "local+learned"
    gsd_m: float | None  # ground sampling distance the predictor works at (None: any)
    context_px: int  # border (pixels at gsd_m) a tile needs around it for valid output
    channels: tuple[str, ...]  # map channels read, e.g. ("fill", "edges", "vertices")

    def predict(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray) -> np.ndarray:
        """image (3,H,W) float32 [0,1]; valid (H,W) bool; map_ (C,H,W) float32 {0,1}
        (``channels``) of the misaligned buildings → field (2,H,W) float32 px (dx east, dy south)."""
        ...


@runtime_checkable
class RasterWidePredictor(FieldPredictor, Protocol):
    """A predictor whose field is estimated from the whole raster before any tile is predicted."""

    def reset(self) -> None:
        """Forget the evidence of a previous raster."""
        ...

    def evidence(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray, margin_px: int = 0) -> np.ndarray:
        """One tile's evidence, an array that sums over tiles; the outer ``margin_px`` of the tile
        (its context, counted by the neighbouring tiles' footprints) is left out. Pure: tiles can
        be mapped on any process, then summed (:func:`~geoalign.inference.tiling.sum_evidence`)."""
        ...

    def add_evidence(self, evidence: np.ndarray) -> None:
        """Add evidence (one tile's, or a sum of tiles')."""
        ...

    def finish(self) -> np.ndarray:
        """Fix the raster-wide estimate from the evidence; ``predict`` returns it from then on."""
        ...


@runtime_checkable
class WindowedPredictor(FieldPredictor, Protocol):
    """A predictor that searches window by window and keeps, after each ``predict``, the
    statistics of every window of every level (``last_windows``: one
    :class:`~geoalign.baselines.local_offset.LevelWindows` per level, centres in pixels of the
    image it was given; a fresh list per call)."""

    last_windows: list[Any]


@dataclass(frozen=True)
class StageEvidence:
    """What the stages of one staged prediction saw, beside their fields (per-tile reports read
    it instead of running a stage again)."""

    stage_maps: tuple[np.ndarray, ...] = ()  # (C,H,W) the map each stage was given (moved by the stages before it)
    windows: tuple[Any, ...] = ()  # per level, the windows of the first WindowedPredictor stage (image px)


@runtime_checkable
class StagedPredictor(FieldPredictor, Protocol):
    """A pipeline whose field composes the fields of its stages."""

    def predict_stages(self, image: np.ndarray, valid: np.ndarray,
                       map_: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], StageEvidence]:
        """(composed field, [each stage's own field, in stage order], what the stages saw); fields
        (2,H,W) float32 px."""
        ...


@runtime_checkable
class TileWorker(Protocol):
    """The part of a per-tile hook that runs where a tile is computed (a Dask worker)."""

    def tile_part(self, tile_field: Any) -> dict[str, np.ndarray]:
        """What the hook takes from one :class:`~geoalign.inference.tiling.TileField`, as plain
        arrays (saved with ``np.savez``, read back without pickle)."""


@runtime_checkable
class RemoteTileHook(Protocol):
    """A ``predict_tiled(on_tile=...)`` hook that can also run in other processes: ``setup()``
    is picklable and its ``build()`` gives a :class:`TileWorker` there; ``merge`` takes the parts
    back in this process. The single-process tiler just calls it."""

    def __call__(self, tile_field: Any) -> None: ...

    def setup(self) -> Any: ...

    def merge(self, part: dict[str, np.ndarray]) -> None: ...
