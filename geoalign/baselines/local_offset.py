"""Baseline (b): a local constant offset per window, coarse to fine, smoothly interpolated.

The strong classical competitor. Default levels: 128-px windows at ¼ resolution searching the whole
range, then 64-px windows at ½ resolution searching ±8 px around it (a third, full-resolution
level is slower and no more accurate on the Austin sample, whose labels sit ~0.7 px off the
roofs). At each level (a downsampling factor, a window size and a search range, all in
full-resolution pixels):

1. the edge tensors of image and map are block-averaged to the level (structure tensors average
   naturally, so one full-resolution computation serves every level);
2. every window holding map edges gets an FFT correlation surface around the offset found so far
   (:mod:`geoalign.baselines.correlation`); at the first level each surface is summed with its
   neighbours' (3×3, weights 1, ½, ¼), so a window with one small building borrows evidence;
3. the sub-pixel peak gives an offset; its weight is the window's map-edge evidence times how far
   the peak stands out of the surface (0 when the peak sits on the border of the search range);
4. residual offsets that disagree with their neighbours' median by more than
   ``outlier_px`` are nearly ignored;
5. at the first level, a window that sees only a fraction v of its buildings' map edges (buildings
   cut by the raster's edge or by nodata: :func:`visible_fraction`) moves by at most v² of the
   search range (a building 70 % past the edge, v ≈ 0.4: about 7 px of 42);
6. residuals are interpolated by normalized convolution (Gaussian, one window spacing) on the
   window grid, then bilinearly to every pixel. Far from any building the residual decays to 0, so
   an area without buildings gets the coarser levels' value, and a tile without buildings a
   zero field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from geoalign.baselines.correlation import correlation_surfaces, find_peaks, window_origins, window_sums
from geoalign.baselines.features import downsample_mean, image_edge_tensor, map_edge_tensor
from geoalign.rasterize import MAP_CHANNELS


@dataclass(frozen=True)
class Level:
    """One level: downsampling ``factor``, ``window_px`` and ``search_px`` in full-resolution pixels."""

    factor: int
    window_px: int
    search_px: int
    stride_fraction: float = 0.5  # window spacing as a fraction of the window


def _interp_matrix(centres: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Dense (len(targets), len(centres)) linear interpolation weights, constant beyond the ends."""
    m = np.zeros((len(targets), len(centres)), np.float32)
    if len(centres) == 1:
        m[:, 0] = 1.0
        return m
    t = np.clip(targets, centres[0], centres[-1])
    hi = np.clip(np.searchsorted(centres, t, side="right"), 1, len(centres) - 1)
    lo = hi - 1
    frac = (t - centres[lo]) / (centres[hi] - centres[lo])
    rows = np.arange(len(targets))
    m[rows, lo] = 1.0 - frac
    m[rows, hi] += frac
    return m


@dataclass(frozen=True)
class LevelWindows:
    """The evidence of every window of one level of the last ``predict`` (arrays (ny, nx) on the
    window grid; centres ``cy`` (ny,), ``cx`` (nx,) in pixels of the image it was given), what the
    trust report (:mod:`geoalign.report.evidence`) reads as the classical stage's reliability."""

    cy: np.ndarray
    cx: np.ndarray
    confidence: np.ndarray  # peak height in standard deviations of its surface
    second_peak_ratio: np.ndarray  # (peak − mean) / (second peak − mean)
    evidence: np.ndarray  # map-edge energy of the window / the level's largest
    at_border: np.ndarray  # bool: the peak sits on the border of the search range
    weight: np.ndarray  # the window's weight before outlier rejection (0: unused)
    kept_weight: np.ndarray  # after it
    residual: np.ndarray  # (2, ny, nx) the window's offset less the coarser levels' (dx, dy)
    search_px: int  # the level's search range (full-resolution px)

    def shifted(self, dy_px: float, dx_px: float) -> "LevelWindows":
        """The same windows with centres in a frame whose origin lies (-dy_px, -dx_px) from this one."""
        from dataclasses import replace

        return replace(self, cy=self.cy + dy_px, cx=self.cx + dx_px)


@dataclass
class _GridField:
    """A field given on a (ny, nx) grid of window centres (full-res pixel-corner coordinates)."""

    cy: np.ndarray
    cx: np.ndarray
    values: np.ndarray  # (2, ny, nx): dx, dy

    def at(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """Values at separable coordinates: (2, len(ys), len(xs))."""
        my, mx = _interp_matrix(self.cy, ys), _interp_matrix(self.cx, xs)
        return np.stack([my @ v @ mx.T for v in self.values])

    def at_points(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """Values at scattered points: (2, n)."""
        my, mx = _interp_matrix(self.cy, ys), _interp_matrix(self.cx, xs)
        return np.stack([np.einsum("ni,ij,nj->n", my, v, mx) for v in self.values])


class LocalOffsetPredictor:
    """A FieldPredictor: windowed constant-offset search, coarse to fine, smooth interpolation."""

    name = "local"
    channels: tuple[str, ...] = MAP_CHANNELS  # reads the fill channel only

    def __init__(
        self, *, gsd_m: float | None = None, search_px: int = 40,
        levels: tuple[Level, ...] | None = None,
        outlier_px: float = 3.0, min_confidence: float = 3.0, first_level_extra: float = 1.0,
        sigma_px: float = 1.0,
    ) -> None:
        self.gsd_m = gsd_m  # None: works on the image's own grid
        self.search_px = int(search_px)
        coarse = 4 if search_px > 8 else 1
        self.levels = levels or (
            Level(coarse, 128, self.search_px + 2),
            Level(2, 64, 8),
        )
        self.outlier_px = float(outlier_px)
        self.min_confidence = float(min_confidence)
        self.first_level_extra = float(first_level_extra)
        self.sigma_px = float(sigma_px)
        # Context: the search range plus a quarter coarse window keeps tile borders consistent.
        self.context_px = self.search_px + self.levels[0].window_px // 4
        self.last_windows: list[LevelWindows] = []  # per level, the windows of the last predict

    def predict(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray) -> np.ndarray:
        H, W = image.shape[-2:]
        self.last_windows = []
        if not np.any(map_[0]):
            return np.zeros((2, H, W), np.float32)
        img_full = image_edge_tensor(image, valid, sigma_px=self.sigma_px)
        map_full = map_edge_tensor(map_, valid, sigma_px=self.sigma_px)
        visibility = visible_fraction(map_, valid, sigma_px=self.sigma_px)
        stages: list[_GridField] = []
        for i, level in enumerate(self.levels):
            stages.append(self._level(img_full, map_full, level, stages, aggregate=(i == 0),
                                      visibility=visibility if i == 0 else None))
        # Sum every level on the finest grid, then one dense bilinear interpolation (fields are
        # smooth on the coarse grids' scale, so this equals interpolating each level to within noise).
        last = stages[-1]
        total = sum(s.at(last.cy, last.cx) for s in stages)
        ys, xs = np.arange(H) + 0.5, np.arange(W) + 0.5
        field = _GridField(last.cy, last.cx, total).at(ys, xs)
        # The levels' ranges add up past --search-px; an offset beyond what was asked for is
        # not evidence the search can stand behind, so the field is bounded by it.
        magnitude = np.hypot(field[0], field[1])
        too_far = magnitude > self.search_px
        if too_far.any():
            field[:, too_far] *= self.search_px / magnitude[too_far]
        return field.astype(np.float32)

    # --- one level ---------------------------------------------------------------------------
    def _level(self, img_full: np.ndarray, map_full: np.ndarray, level: Level,
               previous: list[_GridField], aggregate: bool,
               visibility: np.ndarray | None = None) -> _GridField:
        """``visibility``: per pixel, the visible fraction of its building (:func:`visible_fraction`);
        given, each window's move is bounded by it."""
        f = level.factor
        img_t = downsample_mean(img_full, f)
        map_t = downsample_mean(map_full, f)
        win = max(8, level.window_px // f)
        R = max(1, int(np.ceil(level.search_px / f)))
        rows, cols = window_origins(map_t.shape[-2:], win, max(1, int(round(win * level.stride_fraction))))
        wh, ww = min(win, map_t.shape[1]), min(win, map_t.shape[2])
        cy = (rows + wh / 2.0) * f  # full-res pixel-corner coordinates of the window centres
        cx = (cols + ww / 2.0) * f
        ny, nx = len(rows), len(cols)
        gy, gx = np.meshgrid(rows, cols, indexing="ij")
        origins = np.column_stack([gy.ravel(), gx.ravel()])
        py, px = np.meshgrid(cy, cx, indexing="ij")
        prior_full = np.zeros((2, ny * nx))
        for s in previous:
            prior_full += s.at_points(py.ravel(), px.ravel())
        prior_lvl = np.rint(prior_full[::-1].T / f).astype(np.int64)  # (N, 2) (dy, dx) at level
        surfaces, energy = correlation_surfaces(img_t, map_t, origins, win, R, prior_lvl)
        seen = None  # the window's map edge energy weighted by its buildings' visible fraction
        if visibility is not None:
            seen = window_sums((map_t[0] + map_t[2]) * downsample_mean(visibility, f), origins, wh, ww)
        if aggregate and ny * nx > 1:
            kernel = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]], np.float32)
            grid = surfaces.reshape(ny, nx, *surfaces.shape[1:])
            surfaces = ndimage.convolve(grid, kernel[:, :, None, None], mode="constant").reshape(surfaces.shape)
            energy = ndimage.convolve(energy.reshape(ny, nx), kernel.astype(np.float64), mode="constant").ravel()
            if seen is not None:
                seen = ndimage.convolve(seen.reshape(ny, nx), kernel.astype(np.float64), mode="constant").ravel()
        peak = find_peaks(surfaces, energy, prior_lvl)
        second = _second_peak_ratio(surfaces)
        offset_full = peak.offset_yx[:, ::-1].T * f  # (2, N) dx, dy full-res px
        residual = (offset_full - prior_full).reshape(2, ny, nx)
        if seen is not None:
            # A window that sees only a fraction v of its buildings' edges (the rest lies past the
            # raster or on nodata) moves by at most v² of the search range: a fragment (one wall,
            # one corner) matches parallel edges and shadows as well as its own, no neighbour past
            # the edge can outvote it, and the 3×3 sum spreads its peak to the windows around it.
            seen_fraction = np.clip(np.where(energy > 0, seen / np.maximum(energy, 1e-12), 1.0), 0.0, 1.0)
            bound_px = seen_fraction.reshape(ny, nx) ** 2 * level.search_px
            magnitude = np.hypot(residual[0], residual[1])
            residual *= np.where(magnitude > bound_px, bound_px / np.maximum(magnitude, 1e-12), 1.0)[None]
        evidence = energy / energy.max() if energy.max() > 0 else energy
        threshold = self.min_confidence + (self.first_level_extra if aggregate else 0.0)
        weight = np.sqrt(evidence) * np.clip(peak.confidence - threshold, 0.0, None)
        weight[peak.at_border | (energy <= 0)] = 0.0
        weight = weight.reshape(ny, nx)
        kept = self._reject_outliers(residual, weight)
        self.last_windows.append(LevelWindows(
            cy, cx, peak.confidence.reshape(ny, nx), second.reshape(ny, nx), evidence.reshape(ny, nx),
            peak.at_border.reshape(ny, nx), weight, kept, residual, int(level.search_px)))
        return _GridField(cy, cx, self._interpolate(residual, kept))

    def _reject_outliers(self, residual: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Down-weight offsets far from the median of their weighted 3×3 neighbours."""
        ny, nx = weight.shape
        if ny * nx < 3 or not np.any(weight > 0):
            return weight
        pad_r = np.pad(residual, ((0, 0), (1, 1), (1, 1)), constant_values=np.nan)
        pad_w = np.pad(weight, 1)
        neigh = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy == 0 and dx == 0:
                    continue
                r = pad_r[:, 1 + dy:1 + dy + ny, 1 + dx:1 + dx + nx].copy()
                w = pad_w[1 + dy:1 + dy + ny, 1 + dx:1 + dx + nx]
                r[:, w <= 0] = np.nan
                neigh.append(r)
        stack = np.stack(neigh)  # (8, 2, ny, nx)
        have = np.isfinite(stack[:, 0]).sum(axis=0) >= 2
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(stack, axis=0)
        dist = np.hypot(*(residual - np.nan_to_num(med)))
        out = weight.copy()
        out[have & (dist > self.outlier_px)] *= 0.05
        return out

    @staticmethod
    def _interpolate(residual: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Normalized convolution on the window grid; decays to 0 far from evidence."""
        if not np.any(weight > 0):
            return np.zeros_like(residual)
        sigma = 1.0
        wsum = ndimage.gaussian_filter(weight, sigma, mode="constant")
        eps = 0.02 * float(weight[weight > 0].mean())
        return np.stack([ndimage.gaussian_filter(residual[c] * weight, sigma, mode="constant")
                         for c in range(2)]) / (wsum + eps)[None]


def visible_fraction(map_: np.ndarray, valid: np.ndarray | None, *, sigma_px: float = 1.0) -> np.ndarray | None:
    """Per pixel, the fraction of its building's map edge energy that lies on valid pixels: 1 for
    a building wholly inside the raster, less for one cut by the raster's edge or by nodata, 1
    away from buildings. None when no building is cut (every window sees all of its buildings).

    Buildings are the connected parts of the map's fill, grown by 2 px to hold their edges
    (buildings that touch count as one)."""
    if valid is None or valid.all():
        return None
    fill = map_[0] > 0.5
    if not np.any(fill & ~valid):
        return None
    labels, n = ndimage.label(fill)
    labels = ndimage.grey_dilation(labels, size=(5, 5))
    tensor = map_edge_tensor(map_, sigma_px=sigma_px)  # every edge, on valid pixels or not
    energy = (tensor[0] + tensor[2]).astype(np.float64)
    total = np.bincount(labels.ravel(), weights=energy.ravel(), minlength=n + 1)
    inside = np.bincount(labels.ravel(), weights=(energy * valid).ravel(), minlength=n + 1)
    fraction = np.where(total > 0, inside / np.maximum(total, 1e-12), 1.0)
    fraction[0] = 1.0
    return fraction[labels].astype(np.float32)


def _second_peak_ratio(surfaces: np.ndarray, exclude_px: int = 2) -> np.ndarray:
    """(peak − mean) / (second peak − mean) per surface, the second peak taken outside
    ±``exclude_px`` lags of the first: ≫ 1 for one clear match, ≈ 1 for an ambiguous one
    (repeated structures, no structure)."""
    n, S, _ = surfaces.shape
    flat = surfaces.reshape(n, -1).astype(np.float64)
    mean = flat.mean(axis=1)
    iy, ix = np.divmod(flat.argmax(axis=1), S)
    yy, xx = np.mgrid[:S, :S]
    near = (np.abs(yy[None] - iy[:, None, None]) <= exclude_px) & (np.abs(xx[None] - ix[:, None, None]) <= exclude_px)
    rest = np.where(near.reshape(n, -1), -np.inf, flat).max(axis=1)
    top = flat.max(axis=1) - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isfinite(rest) & (rest - mean > 1e-12), top / np.maximum(rest - mean, 1e-12), 1.0)
    return np.where(top > 0, ratio, 1.0)
