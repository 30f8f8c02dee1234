"""One stage, several proposals, chosen building by building by the image's edges.

Behind the classical local-offset search, the chain's scale 1 alone trims the residual best at
8 and 16 px of misalignment, while its scales 3, 2 and 1 together correct more of a large residual
(32 px) but add their own prediction noise where the classical stage was already right
(docs/model.md). Neither is better everywhere, and which one is better shows in the image: the
proposal that puts a building's outline on stronger image edges.

:class:`EdgePickedPredictor` runs both proposals on the stage's input and, per building (a
connected component of the map raster it is given), moves the building's edge pixels by each
field, reads the image's gradient magnitude where they land (Sobel on the luminance, normalized
by the tile's mean) and keeps the proposal with the higher mean. Each pixel takes the
pick of the buildings around it (a normalized Gaussian of ``blend_sigma_px`` over the buildings'
pixels), so neighbours that pick differently meet without a seam; away from any building the
field is the first proposal's.

:class:`PassesPickedPredictor` takes its proposals from one stage run several passes: the
totals after pass 1, 2, …, picked the same way (:func:`picked_field` blends any number).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from geoalign.inference.compose import ComposedPredictor, within_own_context
from geoalign.inference.protocol import FieldPredictor

MIN_EDGE_PIXELS = 8  # a building with fewer edge pixels keeps the first proposal
EDGE_BAND_ROWS = 256  # the magnitude is computed in bands of rows: memory bounded by a band


def edge_magnitude(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Luminance gradient magnitude (Sobel, :func:`geoalign.model.scale_net.image_gradients`) over
    its mean on valid pixels; 0 off them. Computed band by band, each with a row of its
    neighbours' on either side, so the values are those of the whole image at once."""
    import torch

    from geoalign.model.scale_net import image_gradients

    h = image.shape[-2]
    mag = np.empty(image.shape[-2:], np.float32)
    with torch.inference_mode():
        for r0 in range(0, h, EDGE_BAND_ROWS):
            r1 = min(h, r0 + EDGE_BAND_ROWS)
            a, b = max(0, r0 - 1), min(h, r1 + 1)
            band = torch.from_numpy(np.ascontiguousarray(image[:, a:b], np.float32))[None]
            mag[r0:r1] = image_gradients(band)[0, 2, r0 - a:r1 - a].numpy()
    mag *= valid
    mean = float(mag[valid].mean()) if valid.any() else 0.0
    return mag / (mean + 1e-6)


def building_scores(field: np.ndarray, rows: np.ndarray, cols: np.ndarray, labels: np.ndarray,
                    n_buildings: int, magnitude: np.ndarray) -> np.ndarray:
    """Per building (label 1..n, index 0 unused): the mean edge magnitude at its edge pixels
    (``rows``, ``cols``, labelled ``labels``) moved by ``field`` (q → q + field(q))."""
    r = rows + field[1, rows, cols]
    c = cols + field[0, rows, cols]
    values = ndimage.map_coordinates(magnitude, [r, c], order=1, mode="constant", cval=0.0)
    sums = np.bincount(labels, weights=values, minlength=n_buildings + 1)
    counts = np.bincount(labels, minlength=n_buildings + 1)
    return sums / np.maximum(counts, 1)


def pick_weights(image: np.ndarray, valid: np.ndarray, map_: np.ndarray, proposals: Sequence[np.ndarray],
                 channels: tuple[str, ...], blend_sigma_px: float) -> tuple[np.ndarray, np.ndarray]:
    """(weights (K-1, H, W) in [0, 1] of proposals 2..K, share of the buildings that pick each of
    proposals 1..K). A building picks the proposal with the highest edge score, the earliest one
    on a tie; one with fewer than ``MIN_EDGE_PIXELS`` edge pixels keeps the first."""
    import torch

    from geoalign.model.warp import gaussian_blur_torch

    k = len(proposals)
    shape = map_.shape[-2:]
    valid = np.asarray(valid, bool)
    fill = (map_[channels.index("fill")] > 0.5) & valid  # buildings over invalid pixels are left out
    edges = ((map_[channels.index("edges")] > 0.5) & valid) if "edges" in channels else (
        fill & ~ndimage.binary_erosion(fill))
    labels, n = ndimage.label(fill | edges, structure=np.ones((3, 3), bool))
    none = np.zeros((k - 1, *shape), np.float32)
    if n == 0:
        return none, np.eye(k)[0]
    rows, cols = np.nonzero(edges)
    own = labels[rows, cols]
    magnitude = edge_magnitude(image, valid)
    scores = np.stack([building_scores(f, rows, cols, own, n, magnitude) for f in proposals])
    counts = np.bincount(own, minlength=n + 1)
    picks = np.where(counts >= MIN_EDGE_PIXELS, np.argmax(scores, axis=0), 0)[1:]
    shares = np.bincount(picks, minlength=k) / n
    if not picks.any():
        return none, shares
    chosen = np.concatenate([[0], picks]).astype(np.uint8 if k < 256 else np.int64)[labels]
    planes = np.stack([*(chosen == i for i in range(1, k)), labels > 0]).astype(np.float32)
    with torch.inference_mode():
        blurred = gaussian_blur_torch(torch.from_numpy(planes)[None], blend_sigma_px)[0].numpy()
    around = blurred[-1]
    weights = np.where(around > 1e-3, blurred[:-1] / np.maximum(around, 1e-3), 0.0).astype(np.float32)
    return np.clip(weights, 0.0, 1.0), shares


def picked_field(image: np.ndarray, valid: np.ndarray, map_: np.ndarray, proposals: Sequence[np.ndarray],
                 channels: tuple[str, ...], blend_sigma_px: float) -> tuple[np.ndarray, np.ndarray]:
    """(the proposals blended by their buildings' picks (:func:`pick_weights`) over the first,
    share of the buildings that pick each)."""
    first = np.asarray(proposals[0], np.float32)
    weights, shares = pick_weights(image, valid, map_, proposals, channels, blend_sigma_px)
    field = first.copy()
    for weight, other in zip(weights, proposals[1:]):
        change = np.subtract(other, first, dtype=np.float32)
        change *= weight[None]
        field += change
    return field, shares


class EdgePickedPredictor:
    """A FieldPredictor: ``first`` and ``second`` on the same input, picked per building (module
    docstring). Each proposal runs on the tile less the other's extra context, the window it gets
    when it runs alone. ``last_second_share``: the share of buildings of the last ``predict`` that
    picked ``second``."""

    def __init__(self, first: FieldPredictor, second: FieldPredictor, *, name: str = "learned",
                 blend_sigma_px: float = 4.0) -> None:
        if first.gsd_m != second.gsd_m or tuple(first.channels) != tuple(second.channels):
            raise ValueError("the two proposals must share one GSD and one set of map channels")
        self.first, self.second = first, second
        self.name = name
        self.gsd_m = first.gsd_m
        self.channels = tuple(first.channels)
        self.context_px = max(int(first.context_px), int(second.context_px))
        self.blend_sigma_px = float(blend_sigma_px)
        self.last_second_share = float("nan")

    def predict(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray) -> np.ndarray:
        a, b = (within_own_context(stage, image, valid, map_, self.context_px - int(stage.context_px))[0]
                for stage in (self.first, self.second))
        field, shares = picked_field(image, valid, map_, [a, b], self.channels, self.blend_sigma_px)
        self.last_second_share = float(shares[1])
        return field


class PassesPickedPredictor:
    """A FieldPredictor: ``stage`` run ``passes`` times, each pass on the map the passes before it
    moved (:class:`~geoalign.inference.compose.ComposedPredictor`); each building keeps the total
    after the pass whose outline lands on the strongest image edges (:func:`picked_field`), the
    first pass's on a tie. A second pass reaches what is beyond one pass's range (the chain's
    scale 1 corrects at most 5 px) and adds its own noise where the first was right; the edges
    tell the two apart. ``last_shares``: the share of buildings of the last ``predict`` that kept
    each pass."""

    def __init__(self, stage: FieldPredictor, passes: int, *, name: str = "learned",
                 blend_sigma_px: float = 4.0) -> None:
        if passes < 2:
            raise ValueError(f"a pick among passes needs at least 2 passes, got {passes}")
        self.chain = ComposedPredictor([stage] * int(passes), name=name)
        self.name = name
        self.gsd_m = self.chain.gsd_m
        self.channels = self.chain.channels
        self.context_px = self.chain.context_px
        self.blend_sigma_px = float(blend_sigma_px)
        self.last_shares = np.full(len(self.chain.stages), np.nan)

    def predict(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray) -> np.ndarray:
        totals = self.chain.predict_totals(image, valid, map_)
        field, self.last_shares = picked_field(image, valid, map_, totals, self.channels, self.blend_sigma_px)
        return field
