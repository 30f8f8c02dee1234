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

One tile's field is a pure function of the inputs, the predictor and the tile
(:func:`predict_tile`; the tiles are :func:`plan_tiles`), so tiles can be computed in any order or
in parallel; only a :class:`~geoalign.inference.protocol.RasterWidePredictor` needs
:func:`raster_wide_pass` over all tiles first (a map of :func:`tile_evidence`, a reduce by
:func:`sum_evidence`). :func:`blend_tiles` adds the weighted tile fields in row-major order, so
tiles computed elsewhere (:mod:`geoalign.distributed`) blend to the same field bit for bit. :func:`predict_tiled` calls ``on_tile(TileField)``
once per tile, in row-major order, with what the predictor saw and returned there (see
:class:`TileField`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import shapely
from affine import Affine
from rasterio.windows import Window

from geoalign.inference.protocol import FieldPredictor, RasterWidePredictor, StageEvidence, StagedPredictor
from geoalign.io.raster import RasterReader
from geoalign.progress import progress
from geoalign.rasterize import MAP_CHANNELS, rasterize_map, translate_geoms


@dataclass(frozen=True)
class WorkGrid:
    """The grid a predictor works on: the image grid with pixels ``px_ratio`` times larger."""

    width: int
    height: int
    px_ratio: float  # working pixel size / image pixel size (1.0: the image's own grid)

    @classmethod
    def for_predictor(cls, reader: RasterReader, gsd_m: float | None, *, tolerance: float = 0.02) -> "WorkGrid":
        """The grid at ``gsd_m`` over ``reader``'s extent; within ``tolerance`` of the image's GSD
        (or ``gsd_m`` None) the image grid itself."""
        ratio = 1.0
        if gsd_m:
            ratio = float(gsd_m) / reader.gsd_m
            if abs(ratio - 1.0) < tolerance:
                ratio = 1.0
        return cls(max(1, math.ceil(reader.width / ratio)), max(1, math.ceil(reader.height / ratio)), ratio)


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
    """One tile's place in the layout (working-grid pixels, row-major index ``row``, ``col``)."""

    row: int
    col: int
    foot: tuple[int, int, int, int]  # footprint r0, r1, c0, c1 (working px, clipped to the grid)
    inp: tuple[int, int, int, int]  # input window r0, r1, c0, c1 (may extend past the grid)
    weight_rows: np.ndarray  # blend weights along the footprint's rows (fr1 - fr0,)
    weight_cols: np.ndarray  # and columns (fc1 - fc0,)
    # where this tile is the first in row-major order whose footprint holds a point: the claims
    # partition the grid (a per-tile hook assigns each of its own cells to one tile this way)
    claim: tuple[int, int, int, int] = (0, 0, 0, 0)

    def footprint_in_input(self) -> tuple[slice, slice]:
        """Where the footprint lies inside the input window (row and column slices)."""
        fr0, fr1, fc0, fc1 = self.foot
        r, c = fr0 - self.inp[0], fc0 - self.inp[2]
        return slice(r, r + fr1 - fr0), slice(c, c + fc1 - fc0)


def layout(grid: WorkGrid, tile_px: int, blend_px: int, context_px: int) -> list[list[Tile]]:
    """Tiles by rows (see module docstring)."""
    S, b = int(tile_px), int(blend_px)
    nr, nc = max(1, math.ceil(grid.height / S)), max(1, math.ceil(grid.width / S))

    def span(k: int, n: int, size: int) -> tuple[int, int]:
        lo = 0 if k == 0 else k * S - b
        hi = size if k == n - 1 else min(size, (k + 1) * S + b)
        return lo, hi

    def claim(k: int, n: int, size: int) -> tuple[int, int]:
        lo = 0 if k == 0 else min(size, k * S + b)
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
            row.append(Tile(i, j, (r0, r1, c0, c1), (r0 - ctx, r1 + ctx, c0 - ctx, c1 + ctx), wr, wc,
                            (*claim(i, nr, grid.height), *claim(j, nc, grid.width))))
        rows.append(row)
    return rows


def plan_tiles(grid: WorkGrid, predictor: FieldPredictor, *, tile_px: int, blend_px: int) -> list[list[Tile]]:
    """The tiles :func:`predict_tiled` runs, by rows: cores of ``tile_px``, blend ramps of
    ``blend_px`` (at most a quarter of the core), inputs widened by the predictor's context."""
    blend = min(int(blend_px), max(1, int(tile_px) // 4))
    return layout(grid, int(tile_px), blend, int(predictor.context_px))


class TileInputs:
    """What a tile's predictor reads: the image window (reflect-padded past the raster) and the
    map rasterized from the buildings (``geoms_work_px``: pixel coordinates of the working grid)."""

    def __init__(self, reader: RasterReader, grid: WorkGrid, geoms_work_px: np.ndarray,
                 channels: tuple[str, ...] = MAP_CHANNELS) -> None:
        self.reader, self.grid, self.channels = reader, grid, tuple(channels)
        self.geoms = np.asarray(geoms_work_px, dtype=object)
        self.tree = shapely.STRtree(self.geoms)
        self.transform = work_transform(reader.transform, grid.px_ratio)  # working grid → CRS

    def transform_for(self, inp: tuple[int, int, int, int]) -> Affine:
        """Geotransform of a window ``(r0, r1, c0, c1)`` of the working grid."""
        return self.transform * Affine.translation(inp[2], inp[0])

    def map_for(self, inp: tuple[int, int, int, int]) -> np.ndarray:
        r0, r1, c0, c1 = inp
        hits = self.tree.query(shapely.box(c0, r0, c1, r1))
        if len(hits) == 0:
            return np.zeros((len(self.channels), r1 - r0, c1 - c0), np.float32)
        local = translate_geoms(self.geoms[np.sort(hits)], -c0, -r0)
        return rasterize_map(local, (r1 - r0, c1 - c0), channels=self.channels)

    def image_for(self, inp: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        r0, r1, c0, c1 = inp
        g, s = self.grid, self.grid.px_ratio
        ir0, ir1, ic0, ic1 = max(0, r0), min(g.height, r1), max(0, c0), min(g.width, c1)
        h, w = ir1 - ir0, ic1 - ic0
        if s == 1.0:
            win = Window(ic0, ir0, w, h)
        else:  # working pixels map to image pixels by the ratio (clipped to the raster)
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


@dataclass(frozen=True)
class TileField:
    """One tile as the tiler saw it: the argument of ``predict_tiled``'s ``on_tile`` hook.

    All arrays are on the working grid (:class:`WorkGrid`, pixels of the predictor's GSD); fields
    are in working pixels (dx east, dy south), not yet blended with the neighbours.
    """

    tile: Tile  # footprint and input windows (working px) and blend weights
    transform: Affine  # geotransform of the input window: (col, row) of the window → CRS
    map_: np.ndarray  # (C, h, w) float32 map raster of the input window (``TileInputs.channels``)
    image: np.ndarray | None  # (3, h, w) float32 [0, 1]; None where no building lies (not read)
    valid: np.ndarray | None  # (h, w) bool; None where no building lies
    field: np.ndarray  # (2, fh, fw) float32: the predictor's field on the footprint (zero: no building)
    stage_fields: tuple[np.ndarray, ...] = ()  # each stage's own footprint field (StagedPredictor)
    evidence: StageEvidence | None = None  # what the stages saw over the input window (StagedPredictor)

    @property
    def has_buildings(self) -> bool:
        return self.image is not None

    @property
    def footprint_transform(self) -> Affine:
        """Geotransform of the footprint (the window ``field`` covers)."""
        r, c = self.tile.foot[0] - self.tile.inp[0], self.tile.foot[2] - self.tile.inp[2]
        return self.transform * Affine.translation(c, r)


def predict_tile(inputs: TileInputs, predictor: FieldPredictor, tile: Tile, *,
                 with_stages: bool = False) -> TileField:
    """One tile's footprint field: read its inputs, run ``predictor`` on the input window, crop.

    Pure in the tile: the same (inputs, predictor, tile) give the same field whatever other tiles
    run, before or in parallel (a :class:`RasterWidePredictor` needs :func:`raster_wide_pass`
    first). A window with no building gets a zero field without reading the image.
    ``with_stages``: also each stage's field and what it saw, where ``predictor`` is a
    :class:`StagedPredictor`.
    """
    fr0, fr1, fc0, fc1 = tile.foot
    map_ = inputs.map_for(tile.inp)
    transform = inputs.transform_for(tile.inp)
    if not np.any(map_[0]):
        zero = np.zeros((2, fr1 - fr0, fc1 - fc0), np.float32)
        return TileField(tile, transform, map_, None, None, zero)
    image, valid = inputs.image_for(tile.inp)
    rows, cols = tile.footprint_in_input()
    evidence = None
    if with_stages and isinstance(predictor, StagedPredictor):
        field, own, evidence = predictor.predict_stages(image, valid, map_)
        stages = tuple(np.asarray(f, np.float32)[:, rows, cols] for f in own)
    else:
        field, stages = predictor.predict(image, valid, map_), ()
    return TileField(tile, transform, map_, image, valid, np.asarray(field, np.float32)[:, rows, cols], stages,
                     evidence)


def tile_evidence(inputs: TileInputs, predictor: RasterWidePredictor, tile: Tile) -> np.ndarray | None:
    """One tile's evidence for a raster-wide predictor (its footprint only: the margin is its
    context, counted by the neighbours); None where no building lies (the image is not read)."""
    map_ = inputs.map_for(tile.inp)
    if not np.any(map_[0]):
        return None
    image, valid = inputs.image_for(tile.inp)
    return predictor.evidence(image, valid, map_, margin_px=int(predictor.context_px))


def sum_evidence(parts: Iterable[np.ndarray | None]) -> np.ndarray | None:
    """The tiles' evidence summed in float64 in the order given (row-major: the same sum, bit for
    bit, whichever process computed each part); None without any."""
    total = None
    for part in parts:
        if part is not None:
            total = part.astype(np.float64) if total is None else total + part
    return total


def fix_raster_wide(predictor: RasterWidePredictor, total: np.ndarray | None) -> None:
    """Give a raster-wide predictor the summed evidence and fix its estimate."""
    predictor.reset()
    if total is not None:
        predictor.add_evidence(total)
    predictor.finish()


def raster_wide_pass(inputs: TileInputs, predictor: RasterWidePredictor, tiles: Iterable[Tile], *,
                     n_tiles: int | None = None, show_progress: bool = True) -> None:
    """Feed every tile's evidence to a raster-wide predictor and fix its estimate (a map of
    :func:`tile_evidence`, a reduce by :func:`sum_evidence`)."""
    bar = progress(tiles, total=n_tiles, desc="global pass", unit="tile", enabled=show_progress)
    fix_raster_wide(predictor, sum_evidence(tile_evidence(inputs, predictor, t) for t in bar))


@dataclass(frozen=True)
class TilePart:
    """One tile's share of the blended field: what :func:`blend_tiles` adds up."""

    tile: Tile
    weighted: np.ndarray | None  # (2, fh, fw) float32 footprint field × blend weights; None: no building
    valid_any: bool = False  # some pixel under the window is valid


def weighted_field(tile: Tile, field: np.ndarray) -> np.ndarray:
    """A tile's footprint field times its blend weights (the partition of unity)."""
    return field * tile.weight_rows[None, :, None] * tile.weight_cols[None, None, :]


def blend_tiles(grid: WorkGrid, rows: list[list[Tile]], parts: Iterable[TilePart],
                sink: Callable[[int, np.ndarray], None]) -> dict:
    """Sum the tiles' weighted fields row by row and hand finished strips ``(row_off, (2, h, W))``
    to ``sink``; ``parts`` come one per tile in row-major order. The additions happen in that order
    whoever computed the parts, so the blended field is the same bit for bit. Returns counts."""
    n_tiles = sum(len(r) for r in rows)
    stats = {"tiles": n_tiles, "tiles_with_buildings": 0, "tiles_with_valid_pixels": 0}
    pending: np.ndarray | None = None  # accumulated rows not yet final
    pending_off = 0
    parts = iter(parts)
    for i, row in enumerate(rows):
        r0, r1 = row[0].foot[0], row[0].foot[1]
        acc = np.zeros((2, r1 - r0, grid.width), np.float32)
        if pending is not None:
            acc[:, pending_off - r0: pending_off - r0 + pending.shape[1]] += pending
        for tile in row:
            part = next(parts)
            if part.tile.foot != tile.foot:
                raise RuntimeError(f"tile parts out of order: {part.tile.row, part.tile.col} for {tile.row, tile.col}")
            if part.weighted is not None:
                stats["tiles_with_buildings"] += 1
                stats["tiles_with_valid_pixels"] += int(part.valid_any)
                fc0, fc1 = tile.foot[2:]
                acc[:, :, fc0:fc1] += part.weighted
        if i < len(rows) - 1:
            done = rows[i + 1][0].foot[0]  # the next row's footprint starts here
            sink(r0, acc[:, : done - r0])
            pending, pending_off = acc[:, done - r0:].copy(), done
        else:
            sink(r0, acc)
    return stats


def predict_tiled(
    inputs: TileInputs, predictor: FieldPredictor, *, tile_px: int = 1024, blend_px: int = 64,
    sink: Callable[[int, np.ndarray], None], show_progress: bool = True,
    on_tile: Callable[[TileField], None] | None = None,
) -> dict:
    """Run ``predictor`` tile by tile; hand finished row strips ``(row_off, (2, h, W))`` to ``sink``.

    ``on_tile``, when given, is called once per tile (row-major, tiles without buildings too) with
    its :class:`TileField`: windows, geotransform, image, validity, map and unweighted footprint
    field, plus each stage's field and what it saw for a :class:`StagedPredictor` (computed
    anyway: no extra cost).
    A :class:`RasterWidePredictor` (the global shift) first gets a pass over all tiles.
    Returns counts for the summary.
    """
    rows = plan_tiles(inputs.grid, predictor, tile_px=tile_px, blend_px=blend_px)
    n_tiles = sum(len(r) for r in rows)
    if isinstance(predictor, RasterWidePredictor):
        raster_wide_pass(inputs, predictor, (t for r in rows for t in r), n_tiles=n_tiles,
                         show_progress=show_progress)
    bar = progress(total=n_tiles, desc="align", unit="tile", enabled=show_progress)

    def parts() -> Iterable[TilePart]:
        for row in rows:
            for tile in row:
                result = predict_tile(inputs, predictor, tile, with_stages=on_tile is not None)
                if on_tile is not None:
                    on_tile(result)
                bar.update(1)
                part = (TilePart(tile, weighted_field(tile, result.field), bool(result.valid.any()))
                        if result.has_buildings else TilePart(tile, None))
                del result  # the tile's inputs go before the next tile's are read
                yield part

    stats = blend_tiles(inputs.grid, rows, parts(), sink)
    bar.close()
    return stats


def work_transform(image_transform: Affine, px_ratio: float) -> Affine:
    """Geotransform of the working grid whose pixels are ``px_ratio`` image pixels."""
    return image_transform * Affine.scale(px_ratio)
