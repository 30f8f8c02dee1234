"""Tiled, blended, streamed inference of a field over a raster of any size.

Layout along each axis (working-grid pixels): tile k owns the core ``[kS, (k+1)S)`` (S =
``tile_px``); its *footprint* extends ``blend_px`` (b) beyond both inner borders, and its *input*
window another ``context_px`` beyond that. Inside the 2b-wide overlap of two neighbours the weights
are ``cos²`` and ``sin²`` of the same ramp, so they sum to exactly 1 (a partition of unity: a
smooth predictor gives the same field tiled or not, with no seams). Raster borders get no ramp.
Input windows past the raster are filled by reflecting the image (``valid`` stays False there); the
map is rasterized there from the real buildings.

Rows are streamed: after each row of tiles, the rows no later tile touches are handed to a sink,
so memory holds one strip of ``S + 2b`` rows, whatever the raster's height.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import shapely
from affine import Affine
from rasterio.windows import Window

from geoalign.io.raster import RasterReader
from geoalign.progress import progress
from geoalign.rasterize import MAP_CHANNELS, rasterize_map, translate_geoms


@dataclass(frozen=True)
class WorkGrid:
    """The grid a predictor works on: the image grid with pixels ``scale`` times larger."""

    width: int
    height: int
    scale: float  # working pixel size / image pixel size

    @classmethod
    def for_predictor(cls, reader: RasterReader, gsd_m: float | None, *, tolerance: float = 0.02) -> "WorkGrid":
        scale = 1.0
        if gsd_m:
            scale = float(gsd_m) / reader.gsd_m
            if abs(scale - 1.0) < tolerance:
                scale = 1.0
        return cls(max(1, math.ceil(reader.width / scale)), max(1, math.ceil(reader.height / scale)), scale)


def _ramp(lo: int, hi: int, k: int, S: int, b: int, last: bool) -> np.ndarray:
    """Weights of tile k over its footprint [lo, hi): cos² ramps 2b wide around the inner borders.

    The rise of tile k over [kS − b, kS + b) and the fall of tile k − 1 over the same pixels are
    sin² and cos² of the same angle: they sum to 1.
    """
    t = np.arange(lo, hi, dtype=np.float64) + 0.5
    w = np.ones(hi - lo, np.float64)
    if b > 0 and k > 0:
        u = np.clip((t - (k * S - b)) / (2 * b), 0.0, 1.0)
        w *= np.sin(0.5 * np.pi * u) ** 2
    if b > 0 and not last:
        u = np.clip((t - ((k + 1) * S - b)) / (2 * b), 0.0, 1.0)
        w *= np.cos(0.5 * np.pi * u) ** 2
    return w.astype(np.float32)


@dataclass(frozen=True)
class Tile:
    row: int
    col: int
    foot: tuple[int, int, int, int]  # footprint r0, r1, c0, c1 (working px, clipped to the grid)
    inp: tuple[int, int, int, int]  # input window r0, r1, c0, c1 (may extend past the grid)
    weight_rows: np.ndarray
    weight_cols: np.ndarray


def layout(grid: WorkGrid, tile_px: int, blend_px: int, context_px: int) -> list[list[Tile]]:
    """Tiles by rows (see module docstring)."""
    S, b = int(tile_px), int(blend_px)
    nr, nc = max(1, math.ceil(grid.height / S)), max(1, math.ceil(grid.width / S))

    def span(k: int, n: int, size: int) -> tuple[int, int]:
        lo = 0 if k == 0 else k * S - b
        hi = size if k == n - 1 else min(size, (k + 1) * S + b)
        return lo, hi

    rows = []
    for i in range(nr):
        r0, r1 = span(i, nr, grid.height)
        wr = _ramp(r0, r1, i, S, b, i == nr - 1)
        row = []
        for j in range(nc):
            c0, c1 = span(j, nc, grid.width)
            wc = _ramp(c0, c1, j, S, b, j == nc - 1)
            ctx = int(context_px)  # the footprint already holds the blend ramps
            row.append(Tile(i, j, (r0, r1, c0, c1), (r0 - ctx, r1 + ctx, c0 - ctx, c1 + ctx), wr, wc))
        rows.append(row)
    return rows


class TileSource:
    """Reads a tile's image (reflect-padded) and rasterizes its map on the working grid."""

    def __init__(self, reader: RasterReader, grid: WorkGrid, geoms_work_px: np.ndarray,
                 channels: tuple[str, ...] = MAP_CHANNELS) -> None:
        self.reader, self.grid, self.channels = reader, grid, tuple(channels)
        self.geoms = np.asarray(geoms_work_px, dtype=object)
        self.tree = shapely.STRtree(self.geoms)

    def map_for(self, inp: tuple[int, int, int, int]) -> np.ndarray:
        r0, r1, c0, c1 = inp
        hits = self.tree.query(shapely.box(c0, r0, c1, r1))
        if len(hits) == 0:
            return np.zeros((len(self.channels), r1 - r0, c1 - c0), np.float32)
        local = translate_geoms(self.geoms[np.sort(hits)], -c0, -r0)
        return rasterize_map(local, (r1 - r0, c1 - c0), channels=self.channels)

    def image_for(self, inp: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        r0, r1, c0, c1 = inp
        g, s = self.grid, self.grid.scale
        ir0, ir1, ic0, ic1 = max(0, r0), min(g.height, r1), max(0, c0), min(g.width, c1)
        h, w = ir1 - ir0, ic1 - ic0
        if s == 1.0:
            win = Window(ic0, ir0, w, h)
        else:  # working pixels map to image pixels by the scale (clipped to the raster)
            x0, y0 = ic0 * s, ir0 * s
            win = Window(x0, y0, min(self.reader.width, ic1 * s) - x0, min(self.reader.height, ir1 * s) - y0)
        image, valid = self.reader.read(win, out_shape=(h, w))
        pads = ((ir0 - r0, r1 - ir1), (ic0 - c0, c1 - ic1))
        if any(p for pair in pads for p in pair):
            mode = "reflect" if min(h, w) > max(p for pair in pads for p in pair) else "symmetric"
            if min(h, w) <= max(p for pair in pads for p in pair) // 2:
                mode = "edge"
            image = np.pad(image, ((0, 0), *pads), mode=mode)
            valid = np.pad(valid, pads, constant_values=False)
        return image, valid


def predict_tiled(
    source: TileSource, predictor, *, tile_px: int = 1024, blend_px: int = 64,
    sink: Callable[[int, np.ndarray], None], show_progress: bool = True,
) -> dict:
    """Run ``predictor`` tile by tile; hand finished row strips ``(row_off, (2, h, W))`` to ``sink``.

    Tiles whose input window holds no building get a zero field without reading the image.
    Raster-wide predictors (with ``accumulate``/``finish``, e.g. the global shift) first get a pass
    over all tiles. Returns counts for the summary.
    """
    grid = source.grid
    context = int(getattr(predictor, "context_px", 0) or 0)
    blend = min(int(blend_px), max(1, tile_px // 4))
    rows = layout(grid, tile_px, blend, context)
    n_tiles = sum(len(r) for r in rows)
    stats = {"tiles": n_tiles, "tiles_with_buildings": 0, "tiles_with_valid_pixels": 0}
    if hasattr(predictor, "accumulate") and hasattr(predictor, "finish"):
        predictor.reset()
        for tile in progress((t for r in rows for t in r), total=n_tiles, desc="global pass", unit="tile",
                             enabled=show_progress):
            map_ = source.map_for(tile.inp)
            if np.any(map_[0]):
                image, valid = source.image_for(tile.inp)
                predictor.accumulate(image, valid, map_, margin_px=context)  # the footprint's evidence
        predictor.finish()
    pending: np.ndarray | None = None  # accumulated rows not yet final
    pending_off = 0
    bar = progress(total=n_tiles, desc="align", unit="tile", enabled=show_progress)
    for i, row in enumerate(rows):
        r0 = row[0].foot[0]
        r1 = row[0].foot[1]
        acc = np.zeros((2, r1 - r0, grid.width), np.float32)
        if pending is not None:
            acc[:, pending_off - r0: pending_off - r0 + pending.shape[1]] += pending
        for tile in row:
            map_ = source.map_for(tile.inp)
            if np.any(map_[0]):
                stats["tiles_with_buildings"] += 1
                image, valid = source.image_for(tile.inp)
                stats["tiles_with_valid_pixels"] += int(bool(valid.any()))
                field = np.asarray(predictor.predict(image, valid, map_), np.float32)
                fr0, fr1, fc0, fc1 = tile.foot
                ctx_r, ctx_c = fr0 - tile.inp[0], fc0 - tile.inp[2]
                crop = field[:, ctx_r:ctx_r + fr1 - fr0, ctx_c:ctx_c + fc1 - fc0]
                acc[:, :, fc0:fc1] += crop * tile.weight_rows[None, :, None] * tile.weight_cols[None, None, :]
            bar.update(1)
        if i < len(rows) - 1:
            done = rows[i + 1][0].foot[0]  # the next row's footprint starts here
            sink(r0, acc[:, : done - r0])
            pending, pending_off = acc[:, done - r0:].copy(), done
        else:
            sink(r0, acc)
    bar.close()
    return stats


def iter_blocks(height: int, width: int, block_px: int) -> Iterator[Window]:
    """Windows of at most ``block_px`` square covering a raster, row-major."""
    for r in range(0, height, block_px):
        for c in range(0, width, block_px):
            yield Window(c, r, min(block_px, width - c), min(block_px, height - r))


def work_transform(image_transform: Affine, scale: float) -> Affine:
    """Geotransform of the working grid."""
    return image_transform * Affine.scale(scale)
