"""Comparable edge features of an image and of a map, for classical registration.

Both sides become an *edge structure tensor* (Jxx, Jxy, Jyy) per pixel: the outer product of the
Gaussian gradient with itself. Its inner product between image and map,
``Jxx·Kxx + 2·Jxy·Kxy + Jyy·Kyy = (g_I · g_M)²``, is high where both have an edge with the same
orientation whatever the sign of the contrast (a roof may be brighter or darker than the ground),
and it ignores image edges that cross map edges at right angles.

The image tensor is divided by its local mean energy (Gaussian of ``norm_sigma_px``) so that a
few high-contrast edges (white roofs, shadows) do not outweigh everything else.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _tensor(band: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian-gradient outer products of one band → (3, H, W) float32: Jxx, Jxy, Jyy."""
    smooth = ndimage.gaussian_filter(band.astype(np.float32, copy=False), sigma_px, truncate=2.5)
    gy, gx = np.gradient(smooth)
    return np.stack([gx * gx, gx * gy, gy * gy])


def image_edge_tensor(
    image: np.ndarray, valid: np.ndarray | None = None, *, sigma_px: float = 1.0,
    norm_sigma_px: float = 8.0,
) -> np.ndarray:
    """Locally contrast-normalized edge tensor of a (3, H, W) image in [0, 1] → (3, H, W).

    Works on the grey level (channel mean): colour edges add little for roofs and cost 3×.
    The local energy is measured on a 4× block-averaged copy (cheap on big tiles).
    """
    grey = image.mean(axis=0, dtype=np.float32) if image.ndim == 3 else image.astype(np.float32)
    tensor = _tensor(grey, sigma_px)
    energy = tensor[0] + tensor[2]
    f = 4
    coarse = ndimage.gaussian_filter(downsample_mean(energy, f), norm_sigma_px / f, truncate=2.5)
    local = np.repeat(np.repeat(coarse, f, axis=0), f, axis=1)[: energy.shape[0], : energy.shape[1]]
    floor = 0.05 * float(energy.mean()) + 1e-8
    tensor /= (local + floor)[None]
    if valid is not None and not valid.all():
        # Edges of the nodata area are not building edges.
        tensor[:, ndimage.binary_erosion(valid, iterations=int(2 * sigma_px) + 1, border_value=1) == 0] = 0.0
    return tensor


def map_edge_tensor(map_: np.ndarray, valid: np.ndarray | None = None, *, sigma_px: float = 1.0) -> np.ndarray:
    """Edge tensor of the rasterized map (its ``fill`` channel, channel 0) → (3, H, W).

    Map edges where the image is not valid (nodata, or past the raster: reflected padding) are
    dropped: there is nothing real to match them with.
    """
    tensor = _tensor(map_[0], sigma_px)
    if valid is not None and not valid.all():
        tensor[:, ~valid] = 0.0
    return tensor


def edge_strength(tensor: np.ndarray) -> np.ndarray:
    """Scalar edge strength (trace of the tensor), e.g. for optical flow between edge rasters."""
    return tensor[0] + tensor[2]


def downsample_mean(array: np.ndarray, factor: int) -> np.ndarray:
    """Block-average the last two axes by an integer factor (pads the far edges by reflection).

    Powers of two are done as repeated 2×2 sums of strided views (several times faster than a
    reshaped mean).
    """
    if factor == 1:
        return array
    h, w = array.shape[-2:]
    ph, pw = (-h) % factor, (-w) % factor
    if ph or pw:
        pad = [(0, 0)] * (array.ndim - 2) + [(0, ph), (0, pw)]
        array = np.pad(array, pad, mode="reflect" if min(h, w) > max(ph, pw) else "edge")
    if factor & (factor - 1) == 0:
        out = array.astype(np.float32, copy=False)
        while factor > 1:
            out = 0.25 * (out[..., 0::2, 0::2] + out[..., 1::2, 0::2] + out[..., 0::2, 1::2] + out[..., 1::2, 1::2])
            factor //= 2
        return out
    H, W = array.shape[-2:]
    shaped = array.reshape(*array.shape[:-2], H // factor, factor, W // factor, factor)
    return shaped.mean(axis=(-3, -1), dtype=np.float32)
