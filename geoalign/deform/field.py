"""Random smooth displacement fields with a bounded amplitude.

Model: a stationary Gaussian random field. Each component is white Gaussian noise low-pass
filtered by a Gaussian kernel of standard deviation ``correlation_length_px`` (so the field's
autocorrelation is a squared exponential of length ≈ √2·L). It is computed on a grid coarsened by
≈ L/4 (the field has no detail finer than that) and upsampled with cubic splines, which keeps the
cost small for long correlation lengths. The vector field is then scaled so that the largest
displacement norm equals ``max_amplitude_px`` exactly: the bound holds by construction.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def random_smooth_field(
    shape: tuple[int, int],
    *,
    max_amplitude_px: float,
    correlation_length_px: float,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """A ``(2, H, W)`` float32 smooth field whose max ‖(dx, dy)‖ is ``max_amplitude_px``."""
    height, width = shape
    rng = np.random.default_rng(rng)
    if max_amplitude_px <= 0 or height == 0 or width == 0:
        return np.zeros((2, height, width), dtype=np.float32)
    if correlation_length_px <= 0:
        raise ValueError("correlation_length_px must be positive")
    step = max(1.0, correlation_length_px / 4.0)
    # Coarse grid with a margin of 3 correlation lengths so the filter has no edge effects.
    margin = int(np.ceil(3 * correlation_length_px / step)) + 2
    ch = int(np.ceil(height / step)) + 2 * margin + 1
    cw = int(np.ceil(width / step)) + 2 * margin + 1
    noise = rng.standard_normal((2, ch, cw))
    sigma = correlation_length_px / step
    smooth = np.stack([ndimage.gaussian_filter(n, sigma, mode="wrap") for n in noise])
    # Fine pixel centres in coarse-grid index units; separable cubic interpolation = two matmuls.
    w_rows = _cubic_weights(margin + (np.arange(height) + 0.5) / step, ch)
    w_cols = _cubic_weights(margin + (np.arange(width) + 0.5) / step, cw)
    field = np.stack([w_rows @ s @ w_cols.T for s in smooth])
    peak = float(np.sqrt((field**2).sum(axis=0)).max())
    if peak == 0:
        return np.zeros((2, height, width), dtype=np.float32)
    return (field * (max_amplitude_px / peak)).astype(np.float32)


def _cubic_weights(positions: np.ndarray, n: int) -> np.ndarray:
    """Dense ``(len(positions), n)`` matrix of Keys cubic-convolution weights (a = -0.5).

    Interpolates samples at integer indexes 0..n-1 at fractional ``positions`` (C¹-smooth).
    """
    base = np.floor(positions).astype(np.int64)
    weights = np.zeros((len(positions), n))
    rows = np.arange(len(positions))
    for k in (-1, 0, 1, 2):
        idx = base + k
        t = np.abs(positions - idx)
        w = np.where(t <= 1, 1.5 * t**3 - 2.5 * t**2 + 1,
                     np.where(t < 2, -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2, 0.0))
        np.add.at(weights, (rows, np.clip(idx, 0, n - 1)), w)
    return weights
