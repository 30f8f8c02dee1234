"""``geoalign align``: which predictor runs (``resolve``) and the output set (``run``).

The aligner itself, the tiler and the predictor protocol live in :mod:`geoalign.inference`.
"""

from geoalign.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "resolve_predictor": "geoalign.align.resolve", "AlignResult": "geoalign.align.run",
    "align_raster": "geoalign.align.run",
})

__all__ = ["align_raster", "AlignResult", "resolve_predictor"]
