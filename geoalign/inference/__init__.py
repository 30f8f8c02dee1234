"""Inference over rasters of any size: the predictor protocol, the tiler, composed pipelines and
the aligner every command shares (:func:`geoalign.inference.layer.align_layer`).

Importing this package does not load torch (only a composed pipeline's warps use it).
"""

from geoalign.inference.compose import ComposedPredictor, behind_local, move_map
from geoalign.inference.layer import FieldRaster, align_layer, sample_displacement
from geoalign.inference.protocol import (
    FieldPredictor, RasterWidePredictor, StagedPredictor, StageEvidence, WindowedPredictor,
)
from geoalign.inference.tiling import (
    Tile, TileField, TileInputs, WorkGrid, plan_tiles, predict_tile, predict_tiled, raster_wide_pass,
)

__all__ = ["align_layer", "FieldRaster", "sample_displacement", "ComposedPredictor", "behind_local", "move_map",
           "FieldPredictor", "RasterWidePredictor", "StagedPredictor", "StageEvidence", "WindowedPredictor", "Tile", "TileField", "TileInputs",
           "WorkGrid", "plan_tiles", "predict_tile", "predict_tiled", "raster_wide_pass"]
