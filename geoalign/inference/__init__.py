"""Inference over rasters of any size: the predictor protocol, the tiler, composed pipelines and
the aligner every command shares (:func:`geoalign.inference.layer.align_layer`).

Importing this package loads none of its modules (:mod:`geoalign.lazy`); none of them loads
torch (only a composed pipeline's warps use it).
"""

from geoalign.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(("ComposedPredictor", "behind_local", "move_map"), "geoalign.inference.compose"),
    **dict.fromkeys(("FieldRaster", "align_layer", "sample_displacement"), "geoalign.inference.layer"),
    **dict.fromkeys(("FieldPredictor", "RasterWidePredictor", "StagedPredictor", "StageEvidence", "WindowedPredictor"),
                    "geoalign.inference.protocol"),
    **dict.fromkeys(("Tile", "TileField", "TileInputs", "WorkGrid", "plan_tiles", "predict_tile", "predict_tiled",
                     "raster_wide_pass"), "geoalign.inference.tiling"),
})

__all__ = ["align_layer", "FieldRaster", "sample_displacement", "ComposedPredictor", "behind_local", "move_map",
           "FieldPredictor", "RasterWidePredictor", "StagedPredictor", "StageEvidence", "WindowedPredictor", "Tile", "TileField", "TileInputs",
           "WorkGrid", "plan_tiles", "predict_tile", "predict_tiled", "raster_wide_pass"]
