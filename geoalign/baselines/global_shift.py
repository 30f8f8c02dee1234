"""Baseline (a): one global translation, the constant-offset practice of OSM imagery offsets.

The correlation surfaces of map-edge windows against the image edge tensor are *summed* over the
whole raster (tile by tile through :meth:`GlobalShiftPredictor.accumulate`, so memory stays
bounded on any raster size), and the offset is the sub-pixel peak of the sum.
"""

from __future__ import annotations

import numpy as np

from geoalign.baselines.correlation import correlation_surfaces, find_peaks, window_origins
from geoalign.baselines.features import image_edge_tensor, map_edge_tensor
from geoalign.rasterize import MAP_CHANNELS


class GlobalShiftPredictor:
    """A FieldPredictor returning one constant field (dx, dy) in pixels for the whole raster.

    Two uses: call :meth:`accumulate` on every tile then :meth:`finish` (what ``align`` does), after
    which :meth:`predict` returns that one offset everywhere; or call :meth:`predict` alone and the
    offset is estimated from the given arrays.
    """

    name = "global"
    channels: tuple[str, ...] = MAP_CHANNELS  # reads the fill channel only

    def __init__(self, *, gsd_m: float | None = None, search_px: int = 40, window_px: int = 256,
                 sigma_px: float = 1.0,
                 min_confidence: float = 6.0) -> None:
        self.gsd_m = gsd_m  # None: works on the image's own grid
        self.search_px = int(search_px)
        # Below this peak height (in standard deviations of the surface) the evidence is noise
        # (seen with 1-2 small buildings): no shift is safer than a random one.
        self.min_confidence = float(min_confidence)
        self.window_px = int(window_px)
        self.sigma_px = float(sigma_px)
        self.context_px = self.search_px  # the image must extend R beyond each map window
        self._sum: np.ndarray | None = None
        self.offset_xy: np.ndarray | None = None  # (dx, dy) pixels, set by finish()

    # --- raster-wide estimation --------------------------------------------------------------
    def reset(self) -> None:
        self._sum, self.offset_xy = None, None

    def surface(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray, margin_px: int = 0) -> np.ndarray:
        """Summed correlation surface (2R+1, 2R+1) of the map inside ``margin_px`` of the borders."""
        img_t = image_edge_tensor(image, valid, sigma_px=self.sigma_px)
        map_t = map_edge_tensor(map_, valid, sigma_px=self.sigma_px)
        if margin_px > 0:
            core = np.zeros(map_t.shape[-2:], bool)
            core[margin_px:-margin_px or None, margin_px:-margin_px or None] = True
            map_t[:, ~core] = 0.0
        rows, cols = window_origins(map_t.shape[-2:], self.window_px, self.window_px)
        origins = np.stack(np.meshgrid(rows, cols, indexing="ij"), -1).reshape(-1, 2)
        surfaces, energy = correlation_surfaces(img_t, map_t, origins, self.window_px, self.search_px)
        return surfaces[energy > 0].sum(axis=0) if (energy > 0).any() else np.zeros(surfaces.shape[1:], np.float32)

    def accumulate(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray, margin_px: int = 0) -> None:
        """Add one tile's evidence (``margin_px`` of context around its core is not counted twice)."""
        s = self.surface(image, valid, map_, margin_px)
        self._sum = s.astype(np.float64) if self._sum is None else self._sum + s

    def finish(self) -> np.ndarray:
        """Fix the offset from the accumulated evidence; (dx, dy) pixels, zero without evidence."""
        if self._sum is None or not np.any(self._sum):
            self.offset_xy = np.zeros(2)
        else:
            self.offset_xy = self._offset(self._sum)
        return self.offset_xy

    def _offset(self, surface: np.ndarray) -> np.ndarray:
        peak = find_peaks(surface[None].astype(np.float32), np.ones(1))
        if peak.confidence[0] < self.min_confidence or peak.at_border[0]:
            return np.zeros(2)
        return peak.offset_yx[0, ::-1].copy()

    # --- FieldPredictor ----------------------------------------------------------------------
    def predict(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray) -> np.ndarray:
        offset = self.offset_xy
        if offset is None:
            s = self.surface(image, valid, map_)
            offset = self._offset(s) if np.any(s) else np.zeros(2)
        field = np.empty((2, *image.shape[-2:]), np.float32)
        field[0], field[1] = offset[0], offset[1]
        return field
