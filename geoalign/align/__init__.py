"""``geoalign align``: which predictor runs (``resolve``) and the output set (``run``).

The aligner itself, the tiler and the predictor protocol live in :mod:`geoalign.inference`.
"""

from geoalign.align.resolve import resolve_predictor
from geoalign.align.run import AlignResult, align_raster

__all__ = ["align_raster", "AlignResult", "resolve_predictor"]
