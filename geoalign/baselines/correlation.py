"""Constant-offset search by FFT cross-correlation of edge tensors, many windows at once.

For a map window M at origin o and the image edge tensor I, the correlation surface is
``C(s) = Σ_x <M(x), I(x + s)>`` for integer lags ``s ∈ [-R, R]²`` (pixels, (dy, dx)). Where the
map shows a building at x that truly sits at x + t, C peaks at s = t, which is exactly the
displacement field's value there (geoalign.deform convention: what the map shows at q belongs at
q + phi(q)). Windows are processed as one batched real FFT of size ≥ window + 2R; memory is
bounded by processing ``batch`` windows at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft


@dataclass(frozen=True)
class Peak:
    """Per-window result: sub-pixel offset (dy, dx) in pixels and a confidence weight ≥ 0."""

    offset_yx: np.ndarray  # (N, 2) float64
    confidence: np.ndarray  # (N,) float64: peak height above the surface mean in its std units
    map_energy: np.ndarray  # (N,) float64: how much map edge the window holds (evidence)
    at_border: np.ndarray  # (N,) bool: the peak sits on the edge of the search range


def window_origins(shape: tuple[int, int], window_px: int, stride_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Origins (rows, cols) of a regular grid of windows covering ``shape`` (last ones flush)."""
    def axis(n: int) -> np.ndarray:
        if n <= window_px:
            return np.array([0])
        starts = list(range(0, n - window_px + 1, stride_px))
        if starts[-1] != n - window_px:
            starts.append(n - window_px)
        return np.array(starts)
    return axis(shape[0]), axis(shape[1])


def window_sums(values: np.ndarray, origins_yx: np.ndarray, wh: int, ww: int) -> np.ndarray:
    """Sum of a 2-D array over each ``wh × ww`` window at ``origins_yx`` (N, 2), by integral image
    (O(1) per window)."""
    h, w = values.shape
    integral = np.zeros((h + 1, w + 1), np.float64)
    integral[1:, 1:] = values.cumsum(axis=0, dtype=np.float64).cumsum(axis=1)
    y0, x0 = origins_yx[:, 0], origins_yx[:, 1]
    return integral[y0 + wh, x0 + ww] - integral[y0, x0 + ww] - integral[y0 + wh, x0] + integral[y0, x0]


def correlation_surfaces(
    image_t: np.ndarray, map_t: np.ndarray, origins_yx: np.ndarray, window_px: int, search_px: int,
    prior_yx: np.ndarray | None = None, *, batch: int = 128,
) -> tuple[np.ndarray, np.ndarray]:
    """Surfaces ``(N, 2R+1, 2R+1)`` of windows at ``origins_yx`` (N, 2), searched around ``prior_yx``.

    ``prior_yx`` (N, 2) integer lags: the search range is ``prior ± search_px``; the returned
    surface index (R, R) is lag ``prior``. Also returns each window's map edge energy (N,).
    """
    C, H, W = image_t.shape
    origins_yx = np.asarray(origins_yx, dtype=np.int64).reshape(-1, 2)
    n = len(origins_yx)
    R = int(search_px)
    wh, ww = min(window_px, H), min(window_px, W)
    prior = np.zeros((n, 2), np.int64) if prior_yx is None else np.asarray(prior_yx, np.int64).reshape(-1, 2)
    pad = R + (int(np.abs(prior).max()) if n else 0)
    img = np.pad(image_t, ((0, 0), (pad, pad), (pad, pad)))
    Lh, Lw = wh + 2 * R, ww + 2 * R
    fh, fw = fft.next_fast_len(Lh, real=True), fft.next_fast_len(Lw, real=True)
    iy = np.arange(-R, R + 1) % fh
    ix = np.arange(-R, R + 1) % fw
    surfaces = np.empty((n, 2 * R + 1, 2 * R + 1), np.float32)
    energy = np.empty(n, np.float64)
    weights = np.array([1.0, 2.0, 1.0], np.float32)[None, :, None, None]  # Jxx, 2·Jxy, Jyy
    energy[:] = window_sums(map_t[0] + map_t[2], origins_yx, wh, ww)  # map edge energy per window
    energy[energy < 1e-9 * max(1.0, float(energy.max(initial=0.0)))] = 0.0
    surfaces[energy <= 0] = 0.0
    todo = np.flatnonzero(energy > 0)  # windows without any map edge cost nothing
    for start in range(0, len(todo), batch):
        idx = todo[start:start + batch]
        regions = np.zeros((len(idx), C, fh, fw), np.float32)
        maps = np.zeros_like(regions)
        for k, ((y0, x0), (py, px)) in enumerate(zip(origins_yx[idx], prior[idx])):
            ry, rx = y0 + py - R + pad, x0 + px - R + pad
            regions[k, :, :Lh, :Lw] = img[:, ry:ry + Lh, rx:rx + Lw]
            maps[k, :, R:R + wh, R:R + ww] = map_t[:, y0:y0 + wh, x0:x0 + ww]
        spec = fft.rfft2(regions, workers=1) * np.conj(fft.rfft2(maps * weights, workers=1))
        corr = fft.irfft2(spec.sum(axis=1), s=(fh, fw), workers=1)
        surfaces[idx] = corr[:, iy][:, :, ix]
    return surfaces, energy


def find_peaks(surfaces: np.ndarray, energy: np.ndarray, prior_yx: np.ndarray | None = None) -> Peak:
    """Sub-pixel peaks (parabola through the 3 samples on each axis) and their confidence."""
    n, S, _ = surfaces.shape
    R = (S - 1) // 2
    flat = surfaces.reshape(n, -1)
    arg = flat.argmax(axis=1)
    iy, ix = np.divmod(arg, S)
    rows = np.arange(n)

    def refine(c_minus: np.ndarray, c0: np.ndarray, c_plus: np.ndarray) -> np.ndarray:
        denom = c_minus - 2 * c0 + c_plus
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(denom < 0, 0.5 * (c_minus - c_plus) / denom, 0.0)
        return np.clip(np.nan_to_num(d), -0.5, 0.5)

    cy, cx = np.clip(iy, 1, S - 2), np.clip(ix, 1, S - 2)
    dy = np.where((iy > 0) & (iy < S - 1),
                  refine(surfaces[rows, cy - 1, ix], surfaces[rows, iy, ix], surfaces[rows, cy + 1, ix]), 0.0)
    dx = np.where((ix > 0) & (ix < S - 1),
                  refine(surfaces[rows, iy, cx - 1], surfaces[rows, iy, ix], surfaces[rows, iy, cx + 1]), 0.0)
    offset = np.column_stack([iy - R + dy, ix - R + dx]).astype(np.float64)
    if prior_yx is not None:
        offset += np.asarray(prior_yx, np.float64).reshape(-1, 2)
    peak = flat.max(axis=1).astype(np.float64)
    mean = flat.mean(axis=1, dtype=np.float64)
    std = flat.std(axis=1, dtype=np.float64)
    confidence = np.where(std > 0, (peak - mean) / np.maximum(std, 1e-12), 0.0)
    at_border = (iy == 0) | (iy == S - 1) | (ix == 0) | (ix == S - 1)
    return Peak(offset, confidence, energy, at_border)
