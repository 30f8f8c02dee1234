"""Classical baselines, each a FieldPredictor (:mod:`geoalign.inference.protocol`).

* ``global`` — :class:`GlobalShiftPredictor`: one translation for the whole raster (edge
  cross-correlation, summed over tiles).
* ``local`` — :class:`LocalOffsetPredictor`: the same search per window, coarse to fine, robustly
  weighted and smoothly interpolated. The best classical method here.
* ``tvl1`` — :class:`TVL1Predictor`: scikit-image TV-L1 optical flow between edge rasters.
"""

from __future__ import annotations

from geoalign.errors import OptionError
from geoalign.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "GlobalShiftPredictor": "geoalign.baselines.global_shift",
    "Level": "geoalign.baselines.local_offset", "LocalOffsetPredictor": "geoalign.baselines.local_offset",
    "TVL1Predictor": "geoalign.baselines.tvl1",
})

METHODS = ("global", "local", "tvl1")
#: The classical method ``align`` falls back to while no learned default model ships.
BEST_CLASSICAL = "local"


def classical_predictor(method: str, *, search_px: int = 40, gsd_m: float | None = None):
    """A fresh classical predictor by name (``global``, ``local`` or ``tvl1``) working at ``gsd_m``
    (``None``: the image's own grid; ``search_px`` is in pixels of that grid)."""
    if method == "global":
        from geoalign.baselines.global_shift import GlobalShiftPredictor

        return GlobalShiftPredictor(gsd_m=gsd_m, search_px=search_px)
    if method == "local":
        from geoalign.baselines.local_offset import LocalOffsetPredictor

        return LocalOffsetPredictor(gsd_m=gsd_m, search_px=search_px)
    if method == "tvl1":
        from geoalign.baselines.tvl1 import TVL1Predictor

        return TVL1Predictor(gsd_m=gsd_m)
    raise OptionError(f"unknown method {method!r}; choose among {', '.join(METHODS)}")


__all__ = ["GlobalShiftPredictor", "LocalOffsetPredictor", "Level", "TVL1Predictor", "METHODS",
           "BEST_CLASSICAL", "classical_predictor"]
