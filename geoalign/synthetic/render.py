"""Procedural cities for pre-training (domain randomization): an RGB image and its building polygons.

Each render draws a random ground (soil, grass, pavement, with low-frequency colour noise), roads,
tree blobs, then buildings (rotated rectangles and L shapes, a random roof colour, a gabled or
flat shading gradient, a cast shadow in a random sun direction), then blur, sensor noise and a
random gamma. Building sizes are drawn for a random ground sampling distance, so the network sees
buildings 4–60 px wide. Polygons are in pixel coordinates of the render (:mod:`geoalign.grid`), so
:func:`geoalign.dataset.pairs.make_pair` turns a render into a training pair like any real source.
"""

from __future__ import annotations

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from scipy import ndimage
from shapely import affinity

_ROOFS = np.array([[0.62, 0.25, 0.18], [0.55, 0.55, 0.55], [0.85, 0.85, 0.82], [0.45, 0.33, 0.25],
                   [0.35, 0.40, 0.50], [0.70, 0.60, 0.45], [0.25, 0.25, 0.27], [0.75, 0.45, 0.30]])
_GROUNDS = np.array([[0.45, 0.42, 0.33], [0.33, 0.42, 0.25], [0.55, 0.53, 0.50], [0.60, 0.50, 0.38]])


def _mask(geoms, shape) -> np.ndarray:
    geoms = [g for g in geoms if not g.is_empty]
    if not geoms:
        return np.zeros(shape, dtype=bool)
    return features.rasterize(((g, 1) for g in geoms), out_shape=shape, transform=Affine.identity(),
                              fill=0, dtype="uint8").astype(bool)


def _smooth_noise(shape, sigma: float, rng: np.random.Generator) -> np.ndarray:
    n = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return n / (n.std() + 1e-9)


def _building(rng: np.random.Generator, cx: float, cy: float, size_px: float) -> shapely.Polygon:
    w = size_px * rng.uniform(0.6, 1.4)
    h = size_px * rng.uniform(0.5, 1.2)
    poly = shapely.box(-w / 2, -h / 2, w / 2, h / 2)
    if rng.random() < 0.3:  # L shape
        poly = poly.union(shapely.box(-w / 2, h / 2 - 1, -w / 2 + w * rng.uniform(0.3, 0.6), h / 2 + h * rng.uniform(0.3, 0.8)))
    poly = affinity.rotate(poly, rng.uniform(0, 180), origin=(0, 0))
    return affinity.translate(poly, cx, cy)


def render_city(shape: tuple[int, int], rng: np.random.Generator, *, building_px: float | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """→ (image (3,H,W) float32 in [0,1], valid (H,W) bool, buildings: array of pixel-coordinate polygons)."""
    h, w = shape
    size = building_px if building_px is not None else float(np.exp(rng.uniform(np.log(5), np.log(45))))
    ground = _GROUNDS[rng.integers(len(_GROUNDS))] + rng.normal(0, 0.05, 3)
    img = ground[:, None, None] * (1 + 0.15 * _smooth_noise((h, w), rng.uniform(4, 20), rng))[None]
    # roads
    for _ in range(rng.integers(0, 4)):
        p0 = rng.uniform(0, [w, h]); ang = rng.uniform(0, np.pi)
        d = np.array([np.cos(ang), np.sin(ang)]) * (h + w)
        road = shapely.LineString([p0 - d, p0 + d]).buffer(size * rng.uniform(0.3, 0.8))
        m = _mask([road], shape)
        img[:, m] = (rng.uniform(0.25, 0.6) + rng.normal(0, 0.02, 3))[:, None]
    # buildings on a jittered grid, no overlaps
    spacing = size * rng.uniform(1.4, 2.5)
    geoms: list[shapely.Polygon] = []
    for cy in np.arange(-spacing / 2, h + spacing, spacing):
        for cx in np.arange(-spacing / 2, w + spacing, spacing):
            if rng.random() < rng.uniform(0.2, 0.5):
                continue
            b = _building(rng, cx + rng.normal(0, spacing * 0.15), cy + rng.normal(0, spacing * 0.15), size)
            if all(not b.intersects(g) for g in geoms[-40:]):
                geoms.append(b)
    sun = rng.uniform(0, 2 * np.pi)
    shadow_len = size * rng.uniform(0.0, 0.4)
    sdx, sdy = np.cos(sun) * shadow_len, np.sin(sun) * shadow_len
    shadows = _mask([affinity.translate(g, sdx, sdy) for g in geoms], shape)
    img[:, shadows] *= rng.uniform(0.35, 0.7)
    if geoms:  # one labelled rasterization, then per-building roof colour and gable shading
        labels = features.rasterize(((g, i + 1) for i, g in enumerate(geoms)), out_shape=shape,
                                    transform=Affine.identity(), fill=0, dtype="int32")
        n = len(geoms)
        roofs = np.clip(_ROOFS[rng.integers(len(_ROOFS), size=n)] + rng.normal(0, 0.07, (n, 3)), 0.05, 1.0)
        cent = shapely.get_coordinates(shapely.centroid(np.array(geoms, dtype=object)))
        ang = rng.uniform(0, np.pi, n)
        dark = np.where(rng.random(n) < 0.6, rng.uniform(0.6, 0.9, n), 1.0)
        m = labels > 0
        k = labels[m] - 1
        yy, xx = np.nonzero(m)
        side = (xx + 0.5 - cent[k, 0]) * np.cos(ang[k]) + (yy + 0.5 - cent[k, 1]) * np.sin(ang[k]) > 0
        shade = np.where(side, 1.0, dark[k])
        img[:, m] = (roofs[k] * shade[:, None]).T * (1 + 0.05 * rng.standard_normal(m.sum()))[None]
    # trees (may cover building edges, as in real imagery)
    n_trees = rng.integers(0, int(h * w / (size * size * 4)) + 2)
    trees = [shapely.Point(rng.uniform(0, [w, h])).buffer(size * rng.uniform(0.2, 0.6), quad_segs=4)
             for _ in range(n_trees)]
    tree = _mask(trees, shape)
    if tree.any():
        img[:, tree] = (np.array([0.15, 0.3, 0.12]) * rng.uniform(0.7, 1.3))[:, None] * (1 + 0.2 * rng.standard_normal(tree.sum()))[None]
    img = ndimage.gaussian_filter(img, (0, rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.2)))
    img = img + rng.normal(0, rng.uniform(0.005, 0.04), img.shape)
    img = np.clip(img, 0, 1) ** rng.uniform(0.7, 1.4)
    return img.astype(np.float32), np.ones(shape, dtype=bool), np.array(geoms, dtype=object)
