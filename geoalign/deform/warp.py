"""Apply a displacement field to rasters (warp) and to vertices (bilinear sampling).

See :mod:`geoalign.deform` for the convention. Vertices use pixel-corner coordinates
(:mod:`geoalign.grid`): the field value of pixel (i, j) sits at (x, y) = (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import numpy as np
import shapely
from scipy import ndimage


def sample_field(field: np.ndarray, points_xy: np.ndarray) -> np.ndarray:
    """Bilinearly sample a ``(2, H, W)`` field at ``(n, 2)`` pixel positions → ``(n, 2)``.

    Outside the grid the nearest edge value is used (fields are smooth).
    """
    points_xy = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    if points_xy.shape[0] == 0:
        return np.zeros((0, 2), dtype=np.float64)
    coords = [points_xy[:, 1] - 0.5, points_xy[:, 0] - 0.5]
    return np.column_stack(
        [ndimage.map_coordinates(field[c].astype(np.float64), coords, order=1, mode="nearest")
         for c in range(2)]
    )


def warp_raster(raster: np.ndarray, field: np.ndarray, *, order: int = 1, cval: float = 0.0) -> np.ndarray:
    """Misalign a ``(C, H, W)`` raster: ``out(q) = raster(q + field(q))`` (exact backward warp)."""
    raster = np.asarray(raster)
    squeeze = raster.ndim == 2
    if squeeze:
        raster = raster[None]
    h, w = raster.shape[-2:]
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    coords = [rows + field[1], cols + field[0]]
    out = np.stack(
        [ndimage.map_coordinates(b, coords, order=order, mode="constant", cval=cval) for b in raster]
    ).astype(raster.dtype if np.issubdtype(raster.dtype, np.floating) else np.float32)
    return out[0] if squeeze else out


def correct_points(points_xy: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Move misaligned vertices to where they belong: ``q + field(q)``."""
    points_xy = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    return points_xy + sample_field(field, points_xy)


def deform_points(
    points_xy: np.ndarray, field: np.ndarray, *, tol_px: float = 1e-4, max_iter: int = 100
) -> np.ndarray:
    """Misalign true vertices v: solve ``v' + field(v') = v`` by fixed-point iteration.

    Converges when the field's Jacobian norm is below 1 (true of smooth fields whose amplitude
    is smaller than their correlation length).
    """
    v = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    moved = v - sample_field(field, v)
    for _ in range(max_iter):
        nxt = v - sample_field(field, moved)
        delta = np.abs(nxt - moved).max() if len(v) else 0.0
        moved = nxt
        if delta < tol_px:
            break
    return moved


def correct_geometries(geoms_px, field: np.ndarray):
    """Apply :func:`correct_points` to every vertex; vertex count and order unchanged."""
    return shapely.transform(np.asarray(geoms_px, dtype=object), lambda xy: correct_points(xy, field))


def deform_geometries(geoms_px, field: np.ndarray):
    """Apply :func:`deform_points` to every vertex; vertex count and order unchanged."""
    return shapely.transform(np.asarray(geoms_px, dtype=object), lambda xy: deform_points(xy, field))


def invert_field(field: np.ndarray, *, iterations: int = 20) -> np.ndarray:
    """The field ``psi`` on the *aligned* grid with ``psi(q + field(q)) = -field(q)``.

    ``warp_raster(M_mis, invert_field(phi))`` is the misaligned map moved where it belongs.
    Solved per pixel by fixed-point iteration (smooth fields converge in a few steps).
    """
    h, w = field.shape[-2:]
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    pts = np.column_stack([cols.ravel() + 0.5, rows.ravel() + 0.5])  # pixel centres r
    q = pts - sample_field(field, pts)
    for _ in range(iterations):
        q = pts - sample_field(field, q)
    psi = (q - pts).T.reshape(2, h, w)
    return psi.astype(np.float32)


def compose_fields(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """One field doing ``first`` then ``second`` (``second`` lives on the grid ``first`` aligns to).

    total(q) = first(q) + second(q + first(q)): how a coarse-to-fine chain accumulates.
    """
    h, w = first.shape[-2:]
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    pts = np.column_stack([cols.ravel() + 0.5, rows.ravel() + 0.5])
    moved = correct_points(pts, first)
    total = first.reshape(2, -1).T + sample_field(second, moved)
    return total.T.reshape(2, h, w).astype(np.float32)
