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

Two optional protocols extend it, each checked by ``isinstance`` (never by probing attributes):

* :class:`RasterWidePredictor` — a field that depends on the whole raster (the global
  translation): the tiler first hands it every tile's evidence (``reset``, ``accumulate`` per tile,
  ``finish``), then asks it for each tile's field;
* :class:`StagedPredictor` — a pipeline of stages (``local+learned``) that can return each stage's
  own field next to the composed one, for per-tile reports.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

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

    def accumulate(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray, margin_px: int = 0) -> None:
        """Add one tile's evidence; the outer ``margin_px`` of the tile (its context, counted by
        the neighbouring tiles' footprints) is left out."""
        ...

    def finish(self) -> np.ndarray:
        """Fix the raster-wide estimate from the evidence; ``predict`` returns it from then on."""
        ...


@runtime_checkable
class StagedPredictor(FieldPredictor, Protocol):
    """A pipeline whose field composes the fields of its stages."""

    def predict_stages(self, image: np.ndarray, valid: np.ndarray,
                       map_: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """(composed field, [each stage's own field, in stage order]), all (2,H,W) float32 px."""
        ...
