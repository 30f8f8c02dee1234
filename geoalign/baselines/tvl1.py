"""Baseline (c): classical dense registration, scikit-image TV-L1 optical flow.

Between two scalar rasters on the same grid: the reference is the map's edge strength (the
rasterized ``fill`` channel's edge tensor trace), the moving image the image's locally normalized
edge strength, both Gaussian-smoothed and scaled to [0, 1]. skimage returns the flow v with
``reference(x) ≈ moving(x + v)``: what the map shows at x is seen in the image at x + v, which is
exactly the displacement field (geoalign.deform convention). The flow is computed on a grid
downsampled by ``factor`` (TV-L1 is slow, and the field is smooth) and upsampled back.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.registration import optical_flow_tvl1

from geoalign.baselines.features import downsample_mean, edge_strength, image_edge_tensor, map_edge_tensor
from geoalign.rasterize import MAP_CHANNELS


def _unit(a: np.ndarray) -> np.ndarray:
    hi = float(np.percentile(a, 99.5)) if a.size else 0.0
    return np.clip(a / hi, 0.0, 1.0).astype(np.float32) if hi > 0 else np.zeros_like(a, np.float32)


class TVL1Predictor:
    """A FieldPredictor: TV-L1 optical flow from the map edge raster to the image edge raster."""

    name = "tvl1"
    channels: tuple[str, ...] = MAP_CHANNELS  # reads the fill channel only

    def __init__(self, *, gsd_m: float | None = None, factor: int = 4, attachment: float = 2.0, tightness: float = 0.3,
                 num_warp: int = 5, num_iter: int = 20, smooth_px: float = 2.0) -> None:
        self.gsd_m = gsd_m  # None: works on the image's own grid
        self.factor = int(factor)
        self.attachment, self.tightness = float(attachment), float(tightness)
        self.num_warp, self.num_iter = int(num_warp), int(num_iter)
        self.smooth_px = float(smooth_px)
        self.context_px = 64

    def predict(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray) -> np.ndarray:
        H, W = image.shape[-2:]
        if not np.any(map_[0]):
            return np.zeros((2, H, W), np.float32)
        f = self.factor
        ref = edge_strength(downsample_mean(map_edge_tensor(map_, valid), f))
        mov = edge_strength(downsample_mean(image_edge_tensor(image, valid), f))
        s = self.smooth_px / f
        ref = _unit(ndimage.gaussian_filter(ref, s))
        mov = _unit(ndimage.gaussian_filter(mov, s))
        flow = optical_flow_tvl1(ref, mov, attachment=self.attachment, tightness=self.tightness,
                                 num_warp=self.num_warp, num_iter=self.num_iter)
        v_row, v_col = flow
        field = np.stack([v_col, v_row]) * f
        if f > 1:
            # Coarse pixel k covers full pixels [kf, (k+1)f): centre (k + ½)f → full index kf + f/2 − ½.
            rows = (np.arange(H) + 0.5) / f - 0.5
            cols = (np.arange(W) + 0.5) / f - 0.5
            rr, cc = np.meshgrid(rows, cols, indexing="ij")
            field = np.stack([ndimage.map_coordinates(c, [rr, cc], order=1, mode="nearest") for c in field])
        return field.astype(np.float32)
