"""Align buildings to imagery: tiled blended inference, vertex moving, outputs (see ``run``)."""

from geoalign.inference.compose import ComposedPredictor, move_map
from geoalign.align.resolve import resolve_predictor
from geoalign.align.run import AlignResult, align_raster, sample_displacement
from geoalign.inference.tiling import TileSource, WorkGrid, predict_tiled

__all__ = ["align_raster", "AlignResult", "ComposedPredictor", "move_map", "predict_tiled",
           "TileSource", "WorkGrid", "sample_displacement", "resolve_predictor"]
