"""Cascade pairs: the map as the classical stage leaves it, and the field still left to find.

The learned stage of ``local+learned`` never sees a fresh random misalignment: it sees the map as
the classical local-offset search (:class:`~geoalign.baselines.LocalOffsetPredictor`) moved it, and
its job is the residual. A cascade pair is cut the way that stage works (as stacked optical-flow
refiners are trained):

1. a full-resolution region (the patch plus the classical stage's context) is read at the dataset's
   GSD; its true buildings are misaligned by a smooth field ``phi`` of the accuracy benchmark's kind
   (maximum amplitude drawn in [``min_amplitude_fraction``, 1] × ``cascade_max_disp_px``
   full-resolution pixels, correlation length ``cascade_correlation_px``);
2. the classical stage estimates ``L`` on the misaligned map; the map is moved by ``L`` exactly as
   the pipeline moves it (:func:`geoalign.inference.compose.move_map`);
3. the target is the residual on the moved grid, ``R(p) = (phi - L)(p + psi(p))`` with ``psi`` the
   inverse of ``L``, so that ``compose(L, R) = phi`` (where ``L`` is constant, ``R = phi - L``);
4. image, maps and residual are reduced to the pair's scale s as the chain reduces its inputs
   (image: 2^s block mean; map: :func:`geoalign.model.chain.downsample_map`; field: block mean / 2^s),
   and the patch is cut out of the region's centre.

Pairs where the classical stage failed beyond the learned stage's reach (median residual at the
moved map's edges above ``cascade_max_residual_px`` full-resolution pixels, :func:`residual_at_edges_px`)
can be left out: their target is an offset the network's bounded output cannot reach (on the
Atlanta SpaceNet chip the local search leaves 12-15 px at zero misalignment).

In a train window, pixels east of the held-out strip's boundary are marked invalid, so the region's
context never reads held-out imagery.
"""

from __future__ import annotations

import math

import numpy as np
from rasterio.windows import Window

from geoalign.dataset.pairs import BuildingIndex, Pair, geoms_in_patch_frame
from geoalign.deform import deform_geometries, invert_field, random_smooth_field, sample_field
from geoalign.inference.compose import move_map
from geoalign.inference.protocol import FieldPredictor
from geoalign.io.raster import RasterReader
from geoalign.rasterize import rasterize_map

CASCADE_METHODS = ("local",)


def cascade_margin_px(context_px: int, max_disp_px: float, scale: int) -> int:
    """Full-resolution pixels read around the patch: the classical stage's context plus the largest
    displacement, rounded up to a multiple of 2^scale so the patch falls on the scale's grid."""
    k = 2**scale
    return int(math.ceil((context_px + math.ceil(max_disp_px) + 2) / k)) * k


def residual_field(phi: np.ndarray, estimate: np.ndarray, *, iterations: int = 10) -> np.ndarray:
    """The field left after ``estimate``: on the grid ``estimate`` aligns to, ``R`` with
    ``compose(estimate, R) = phi``, i.e. ``R(p) = (phi - estimate)(p + psi(p))``, ``psi`` the
    inverse of ``estimate`` (:func:`geoalign.deform.invert_field`)."""
    h, w = estimate.shape[-2:]
    psi = invert_field(estimate, iterations=iterations)
    rows, cols = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    at = np.column_stack([(cols + psi[0]).ravel(), (rows + psi[1]).ravel()])
    return sample_field(phi - estimate, at).T.reshape(2, h, w).astype(np.float32)


def _blocks(a: np.ndarray, k: int) -> np.ndarray:
    """(..., H, W) → (..., H/k, W/k, k·k) blocks (H and W multiples of k)."""
    *lead, h, w = a.shape
    return a.reshape(*lead, h // k, k, w // k, k).swapaxes(-3, -2).reshape(*lead, h // k, w // k, k * k)


def reduce_to_scale(image: np.ndarray, valid: np.ndarray, map_moved: np.ndarray, map_true: np.ndarray,
                    field_px: np.ndarray, scale: int, channels: tuple[str, ...]):
    """Full-resolution arrays (sides multiples of 2^scale) → the pair's scale, as the chain reduces
    its inputs: image and field by 2^s block means (the field in pixels of the scale), the map's
    fill by block means and its edges and vertices by block maxima
    (:func:`geoalign.model.chain.downsample_map`, tested equal)."""
    k = 2**scale
    if k == 1:
        return image, valid, map_moved, map_true, field_px

    def reduce_map(m: np.ndarray) -> np.ndarray:
        b = _blocks(m, k)
        return np.stack([b[c].mean(-1) if name == "fill" else b[c].max(-1) for c, name in enumerate(channels)])

    return (_blocks(image, k).mean(-1), _blocks(valid.astype(np.float32), k).mean(-1) >= 0.5,
            reduce_map(map_moved), reduce_map(map_true), _blocks(field_px, k).mean(-1) / k)


def residual_at_edges_px(pair: Pair, scale: int) -> float:
    """Median residual (full-resolution pixels) at the moved map's edge pixels; 0 without edges."""
    edges = pair.map_misaligned[1] > 0.5 if pair.map_misaligned.shape[0] > 1 else pair.map_misaligned[0] > 0.5
    if not edges.any():
        return 0.0
    return float(np.median(np.hypot(pair.field[0], pair.field[1])[edges])) * 2**scale


def make_cascade_pair(
    reader: RasterReader, buildings: BuildingIndex, window: Window, *, scale: int, patch_px: int,
    classical: FieldPredictor, max_disp_px: float, min_amplitude_fraction: float,
    correlation_length_px: float, channels: tuple[str, ...], rng: np.random.Generator,
    max_col_src: float = math.inf,
) -> Pair:
    """One cascade pair of scale ``scale`` for the patch ``window`` (source pixels).

    ``max_disp_px`` and ``correlation_length_px`` are full-resolution pixels (the dataset's GSD);
    ``max_col_src``: source column where held-out imagery begins (invalid from there on)."""
    k = 2**scale
    full_px = patch_px * k
    src_per_full = window.width / full_px
    margin = cascade_margin_px(int(classical.context_px), max_disp_px, scale)
    ext = full_px + 2 * margin
    region = Window(window.col_off - margin * src_per_full, window.row_off - margin * src_per_full,
                    ext * src_per_full, ext * src_per_full)
    image, valid = reader.read(region, out_shape=(ext, ext))
    if math.isfinite(max_col_src):
        cols_src = region.col_off + (np.arange(ext) + 0.5) * src_per_full
        held = cols_src >= max_col_src
        valid = valid & ~held[None, :]
        image[:, :, held] = 0.0
    reach = (math.ceil(max_disp_px) + 2) * src_per_full
    geoms = geoms_in_patch_frame(buildings.in_window(region, reach), region, src_per_full, 0)
    amplitude = float(rng.uniform(min_amplitude_fraction, 1.0) * max_disp_px)
    phi = random_smooth_field((ext, ext), max_amplitude_px=amplitude,
                              correlation_length_px=correlation_length_px, rng=rng)
    map_true = rasterize_map(geoms, (ext, ext), channels=channels)
    map_mis = rasterize_map(deform_geometries(geoms, phi), (ext, ext), channels=channels) * valid[None]
    estimate = np.asarray(classical.predict(image, valid, map_mis), np.float32)
    moved = move_map(map_mis, estimate)  # the pipeline's own warp of the map
    residual = residual_field(phi, estimate)
    img_s, val_s, mov_s, tru_s, fld_s = reduce_to_scale(image, valid, moved, map_true, residual, scale, channels)
    inner = (slice(margin // k, margin // k + patch_px),) * 2
    return Pair(
        image=np.ascontiguousarray(img_s[(slice(None), *inner)]), valid=np.ascontiguousarray(val_s[inner]),
        map_misaligned=np.ascontiguousarray(mov_s[(slice(None), *inner)]),
        map_true=np.ascontiguousarray(tru_s[(slice(None), *inner)]),
        field=np.ascontiguousarray(fld_s[(slice(None), *inner)]), amplitude_px=amplitude,
    )
