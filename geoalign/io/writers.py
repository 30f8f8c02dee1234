"""One way to write each kind of output: JSON, an outline overlay PNG, an accuracy-curve PNG (atomically)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import shapely

from geoalign.io.atomic import atomic_path


def write_json(data: dict, path: str | Path) -> Path:
    """Indented JSON, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, default=_plain) + "\n")
    return path


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def draw_overlay(image: np.ndarray, layers: Sequence[tuple[np.ndarray, tuple[int, int, int]]],
                 path: str | Path, *, width_px: int = 1) -> Path:
    """Draw outlines on an image (3, H, W) in [0, 1]; each layer is (pixel geometries, RGB colour).

    Geometries are in the image's pixel coordinates (already scaled to this image's size).
    """
    from PIL import Image, ImageDraw

    rgb = (np.clip(np.moveaxis(image, 0, -1), 0, 1) * 255).astype(np.uint8)
    canvas = Image.fromarray(rgb)
    draw = ImageDraw.Draw(canvas)
    for geoms, colour in layers:
        for g in np.asarray(geoms, dtype=object).ravel():
            if g is None or g.is_empty:
                continue
            for ring in _rings(g):
                xy = shapely.get_coordinates(ring)
                if len(xy) >= 2:
                    draw.line([tuple(p) for p in xy], fill=colour, width=width_px)
    path = Path(path)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG", compress_level=1)
    return path


def _rings(geom):
    if geom.geom_type == "Polygon":
        return [geom.exterior, *geom.interiors]
    if geom.geom_type in ("MultiPolygon", "GeometryCollection"):
        return [r for part in geom.geoms for r in _rings(part)]
    if geom.geom_type in ("LineString", "LinearRing"):
        return [geom]
    if geom.geom_type == "MultiLineString":
        return list(geom.geoms)
    return []


def plot_accuracy_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, *,
                         title: str = "", xlabel: str = "error threshold τ (px)") -> Path:
    """Fraction of vertices with error ≤ τ against τ, one line per named curve."""
    from matplotlib.figure import Figure  # drawn without pyplot: no global backend is chosen

    fig = Figure(figsize=(6, 4), dpi=110)
    ax = fig.subplots()
    for name, (tau, frac) in curves.items():
        ax.plot(tau, frac, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of vertices with error ≤ τ")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
