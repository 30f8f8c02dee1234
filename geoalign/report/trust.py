"""Per-tile and per-building trust, computed from the tiles of one alignment pass.

:class:`TrustReport` is a tile consumer: ``align``'s tiler hands it each alignment tile once
(:meth:`TrustReport.on_tile`: the tile's input window and core on the working grid, its image,
validity, misaligned map raster and the pipeline's total field there), and
:meth:`TrustReport.finish` returns the records. No second read of the imagery.

Report tiles are a regular grid of ``tile_px`` working pixels (default: the learned stage's
training patch, 96 px of scale 1 = 192 px = 57.6 m at 0.3 m) anchored at the raster's
top-left corner; each belongs to the alignment tile whose core holds its centre, and each
building to the report tile holding its centroid.

Per report tile (:data:`TILE_FIELDS`): the paper's quantities for the learned stage's view of
the tile (``density`` N_S against the training set, ``density_quantile`` its place among the
training patches' densities, ``low_density`` below ``low_density_quantile``, ``uncertainty``,
``denoising_factor``, the shift ŷ − E_k[ŷ] as ``shift_px``/``shift_m``/``shift_azimuth_deg``),
``mean_displacement_px`` (mean move of its buildings' vertices), ``n_buildings`` and
``expected_error_px`` (median of its buildings' calibrated expected errors,
:mod:`geoalign.report.calibration`). Pixels (``_px``) are working-grid pixels (the model's GSD).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field as dc_field
from pathlib import Path

import numpy as np
import shapely
from affine import Affine

from geoalign.baselines.local_offset import LevelWindows, LocalOffsetPredictor
from geoalign.deform import sample_field
from geoalign.inference.tiling import TileField
from geoalign.report.calibration import FEATURES, Calibration, confidence, load_calibration
from geoalign.report.evidence import LearnedScorer, classical_levels, edge_strength
from geoalign.report.stats import TrainingStats, _thumbs

TILE_FIELDS = ("tile_id", "row", "col", "density", "density_quantile", "low_density", "uncertainty",
               "denoising_factor", "shift_px", "shift_m", "shift_azimuth_deg", "mean_displacement_px",
               "n_buildings", "expected_error_px", "neighbour_error_px", "classical_confidence")
PREVIEW_PX = 1200  # longest side of the image kept for the expected-error map
BOUND_FRACTION = 0.9  # a vertex moved ≥ this × search_px is at the search bound


@dataclass(frozen=True)
class ClassicalStage:
    """What the pipeline's classical stage (local offsets) found on one alignment tile, over its
    input window: its field (2, h, w) working px, its windows per level
    (:class:`~geoalign.baselines.local_offset.LevelWindows`, centres in the window's pixels)
    and the map raster it handed the learned stage (C, h, w)."""

    field: np.ndarray
    windows: tuple[LevelWindows, ...]
    learned_map: np.ndarray


@dataclass(frozen=True)
class ReportWindow:
    """The part of one alignment tile the report reads (:meth:`TrustReport.report_window`):
    arrays over ``inp`` (r0, r1, c0, c1, working grid), the tile's ``claim`` and ``foot``, the
    total field over ``inp``, the classical stage's record (or the misaligned map ``map_`` for
    the report to search itself), and the input window's edge strength (cut to ``inp``) and its
    mean."""

    inp: tuple[int, int, int, int]
    claim: tuple[int, int, int, int]
    foot: tuple[int, int, int, int]
    image: np.ndarray
    valid: np.ndarray
    map_: np.ndarray | None
    field: np.ndarray
    classical: ClassicalStage | None
    edges: np.ndarray
    edge_mean: float


def mean_edge_strength(edges: np.ndarray, valid: np.ndarray) -> float:
    """Mean of :func:`~geoalign.report.evidence.edge_strength` on valid pixels (all, without any)."""
    return float(edges[valid].mean()) if valid.any() else float(edges.mean())


AUTO_GATE = "auto"  # --trust-gate auto: a building stays where its move is within its expected error


def gate_value(gate: float | str | None) -> float | str | None:
    """``--trust-gate``'s value: None (no gate), ``"auto"`` (any case), or a finite threshold in
    px (≥ 0, a number or its text); anything else raises ``ValueError``."""
    if gate is None:
        return None
    if isinstance(gate, str) and gate.strip().lower() == AUTO_GATE:
        return AUTO_GATE
    try:
        value = float(gate)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"expected 'auto' or a number of pixels >= 0, got {gate!r}")
    return value


def gated_by(gate: float | str, expected_px: np.ndarray, low: np.ndarray, move_px: np.ndarray) -> np.ndarray:
    """The buildings a trust gate leaves in place (before the "scored" mask): expected error above
    the gate (``"auto"``: a move no larger than the expected error) or a low-density tile."""
    with np.errstate(invalid="ignore"):
        over = (move_px <= expected_px) if gate == AUTO_GATE else (expected_px > gate)
    return over | low


@dataclass
class TrustResult:
    """What :meth:`TrustReport.finish` returns."""

    tiles: list[dict]  # one dict per report tile (TILE_FIELDS, + "bounds_px" (c0, r0, c1, r1) working px)
    expected_error_px: np.ndarray  # per building (NaN: not on the raster)
    confidence: np.ndarray
    gated: np.ndarray  # bool: left in place by --trust-gate
    tile_of_building: np.ndarray  # index into ``tiles`` (-1: none)
    features: np.ndarray  # (n_buildings, len(FEATURES)) what the calibration saw
    thresholds: dict
    seconds: float
    nearest: dict = dc_field(default_factory=dict)  # tile index -> (exemplar indices, similarities)
    thumbs: dict = dc_field(default_factory=dict)  # tile index -> (4, 32, 32) uint8 patch
    calibration: dict = dc_field(default_factory=dict)

    def add_truth(self, vertex_error_px: list) -> None:
        """``error_px`` per tile: median actual vertex error of its buildings (``vertex_error_px``:
        per building an array of vertex errors, or None when the building has no truth)."""
        for n, t in enumerate(self.tiles):
            parts = [np.asarray(vertex_error_px[b]) for b in np.flatnonzero(self.tile_of_building == n)
                     if vertex_error_px[b] is not None and len(vertex_error_px[b])]
            t["error_px"] = float(np.median(np.concatenate(parts))) if parts else np.nan


def _stage_scale(model_dir, stats: TrainingStats) -> int:
    """The learned scale whose view of a tile is scored: the first of the card's
    ``combination.learned_scales`` (align's default pipeline) with statistics, else the finest."""
    from geoalign.model.card import read_card

    wanted = read_card(model_dir).get("combination", {}).get("learned_scales") or []
    for s in wanted:
        if int(s) in stats.scales:
            return int(s)
    return min(stats.scales)


def _sample_near(field: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """:func:`sample_field` at points ``xy`` reading only the field's cells around them (the
    whole tile's field copied per building cost seconds per tile)."""
    h, w = field.shape[-2:]
    x0, y0 = (max(0, int(np.floor(v)) - 2) for v in xy.min(0))
    x1, y1 = int(np.ceil(xy[:, 0].max())) + 2, int(np.ceil(xy[:, 1].max())) + 2
    x0, y0 = min(x0, w - 1), min(y0, h - 1)
    x1, y1 = max(x0 + 1, min(w, x1)), max(y0 + 1, min(h, y1))
    return sample_field(field[:, y0:y1, x0:x1], xy - np.array([x0, y0]))


def _log1p(x):
    return np.log1p(np.clip(np.asarray(x, np.float64), 0, None))


_RECORD_SCALARS = ("density", "density_quantile", "uncertainty", "denoising_factor", "neighbour_error_px",
                   "n_buildings")


@dataclass(frozen=True)
class ReportSetup:
    """The arguments of a :class:`TrustReport`, picklable: another process (a Dask worker)
    rebuilds the same report with :meth:`build` and computes tile parts for the client's."""

    buildings_px: np.ndarray
    grid_shape: tuple[int, int]
    work_transform: tuple[float, ...]  # the Affine's 6 coefficients
    model_dir: str | None
    tile_m: float | None
    low_density_quantile: float
    trust_gate_px: float | str | None
    search_px: int

    def build(self) -> "TrustReport":
        return TrustReport(buildings_px=self.buildings_px, grid_shape=self.grid_shape,
                           work_transform=Affine(*self.work_transform), model_dir=self.model_dir,
                           tile_m=self.tile_m, low_density_quantile=self.low_density_quantile,
                           trust_gate_px=self.trust_gate_px, search_px=self.search_px)


class TrustReport:
    """Consumes alignment tiles, returns per-tile and per-building trust (module docstring).

    ``buildings_px``: the buildings' geometries in working-grid pixels (the map the tiler
    rasterizes), in the order their results are wanted. ``work_transform``: the working grid's
    geotransform (for metres and azimuths). ``trust_gate_px``: buildings whose expected error
    exceeds it, or that lie in low-density tiles, are marked ``gated``; ``"auto"``: buildings
    whose move is no larger than their expected error, or that lie in low-density tiles.
    """

    def __init__(self, *, buildings_px, grid_shape: tuple[int, int], work_transform: Affine,
                 model_dir: str | Path | None = None, tile_m: float | None = None,
                 low_density_quantile: float = 0.05, trust_gate_px: float | str | None = None,
                 search_px: int = 40, calibration: Calibration | None | bool = None) -> None:
        from geoalign.model.checkpoint import load_model
        from geoalign.model.predictor import DEFAULT_MODEL_DIR

        t0 = time.perf_counter()
        self.setup = ReportSetup(np.asarray(buildings_px, dtype=object), (int(grid_shape[0]), int(grid_shape[1])),
                                 tuple(work_transform)[:6], None if model_dir is None else str(model_dir),
                                 tile_m, float(low_density_quantile), trust_gate_px, int(search_px))
        model_dir = Path(DEFAULT_MODEL_DIR if model_dir is None else model_dir)
        chain, config = load_model(model_dir)
        self.stats = TrainingStats.load(model_dir)
        self.scale = _stage_scale(model_dir, self.stats)
        self.scorer = LearnedScorer(chain.eval(), self.stats.scales[self.scale])
        self.model_dir = model_dir
        self.calibration = calibration  # None: the model card's (loaded by finish); False: none
        self.gsd_m = float(config.get("gsd_m") or abs(work_transform.a))
        self.transform = work_transform
        self.height, self.width = int(grid_shape[0]), int(grid_shape[1])
        self.tile_px = (self.scorer.footprint_px if tile_m is None
                        else max(8, int(round(float(tile_m) / self.gsd_m))))
        if not 0.0 <= float(low_density_quantile) <= 1.0:
            raise ValueError(f"the low-density quantile must lie in [0, 1], got {low_density_quantile}")
        self.low_density_quantile = float(low_density_quantile)
        self.trust_gate_px = gate_value(trust_gate_px)
        self.search_px = int(search_px)
        self.local = LocalOffsetPredictor(search_px=search_px)
        geoms = np.asarray(buildings_px, dtype=object)
        present = np.array([g is not None and not shapely.is_empty(g) for g in geoms], bool)
        self.geoms = geoms
        self.n = len(geoms)
        cent = np.full((self.n, 2), np.nan)
        if present.any():
            cent[present] = shapely.get_coordinates(shapely.centroid(geoms[present]))
        # on the raster: touching it (a building across the edge belongs to the edge's tile)
        on = present.copy()
        if present.any():
            on[present] = shapely.intersects(geoms[present], shapely.box(0, 0, self.width, self.height))
        cent[on] = np.clip(cent[on], 0, np.array([self.width, self.height]) - 1e-6)
        self.centroids = cent
        self.tile_rc = np.full((self.n, 2), -1, np.int64)
        self.tile_rc[on] = np.floor(cent[on][:, ::-1] / self.tile_px).astype(np.int64)
        self.n_rows, self.n_cols = math.ceil(self.height / self.tile_px), math.ceil(self.width / self.tile_px)
        self.features = np.full((self.n, len(FEATURES)), np.nan)
        self.move_px = np.full(self.n, np.nan)
        self.tiles: dict[tuple[int, int], dict] = {}
        self.thumbs: dict[tuple[int, int], np.ndarray] = {}
        self.preview_step = max(1, math.ceil(max(self.height, self.width) / PREVIEW_PX))
        self.preview = np.zeros((3, math.ceil(self.height / self.preview_step),
                                 math.ceil(self.width / self.preview_step)), np.uint8)
        self.nearest: dict[tuple[int, int], tuple[list[int], list[float]]] = {}
        self.seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------ one alignment tile
    def on_tile(self, *, inp: tuple[int, int, int, int], core: tuple[int, int, int, int], image: np.ndarray,
                valid: np.ndarray, map_: np.ndarray | None, field: np.ndarray,
                classical: ClassicalStage | None = None,
                preview_window: tuple[int, int, int, int] | None = None, edges: np.ndarray | None = None,
                edge_mean: float | None = None) -> None:
        """One alignment tile (called once per tile, in any order).

        ``inp`` (r0, r1, c0, c1): the window of the arrays on the working grid (may reach past
        it); ``core`` (r0, r1, c0, c1): the part of the grid this tile answers for (the cores of
        all tiles partition the grid); ``image`` (3, h, w) [0, 1], ``valid`` (h, w), ``map_``
        (C, h, w) the misaligned map raster (read only without ``classical``), ``field`` (2, h, w)
        the pipeline's total field (working px), all over ``inp``. ``classical``: what the
        pipeline's classical stage found there (its field, windows and the map it handed the
        learned stage); None: the report runs the classical stage on the tile itself. Tiles
        without buildings may be skipped by the caller. ``preview_window``: the part of the
        image preview this tile fills (default ``core``). ``edges``, ``edge_mean``: the image's
        :func:`~geoalign.report.evidence.edge_strength` over ``inp`` and its mean on valid pixels,
        the buildings' edge normalization (default: computed from these arrays;
        :class:`ReportWindow` carries the whole input window's).
        """
        t0 = time.perf_counter()
        r0, _, c0, _ = inp
        tiles = [t for t in self._claimed(core) if t not in self.tiles]
        self._keep_preview(image, core if preview_window is None else preview_window, r0, c0)
        if not tiles:
            return
        from geoalign.inference.compose import move_map

        if classical is None:
            local_field = np.asarray(self.local.predict(image, valid, map_), np.float32)
            classical = ClassicalStage(local_field, tuple(self.local.last_windows), move_map(map_, local_field))
        local_field, learned_input = classical.field, classical.learned_map
        levels = classical_levels(classical.windows)
        # learned stage: patches of each report tile holding buildings
        k = max(1, math.ceil(self.tile_px / self.scorer.footprint_px))
        centres, owner = [], []
        for (i, j) in tiles:
            ya, yb = i * self.tile_px, min(self.height, (i + 1) * self.tile_px)
            xa, xb = j * self.tile_px, min(self.width, (j + 1) * self.tile_px)
            for a in range(k):
                for b in range(k):
                    cy = ya + (a + 0.5) * (yb - ya) / k - r0
                    cx = xa + (b + 0.5) * (xb - xa) / k - c0
                    centres.append((cy, cx))
                    owner.append((i, j))
        patches = self.scorer.patches(image, learned_input, np.array(centres))
        has = patches[:, 3].flatten(1).sum(1).numpy() > 0 if len(patches) else np.zeros(0, bool)
        scores = self.scorer.score(patches[has]) if has.any() else {}
        owners = [o for o, h in zip(owner, has) if h]
        first = {o: n for n, o in reversed(list(enumerate(owners))) if o not in self.thumbs}
        if first:
            small = _thumbs(patches[has][list(first.values())])
            self.thumbs.update(zip(first, small))
        if edges is None:
            edges = edge_strength(image)
        if edge_mean is None:
            edge_mean = mean_edge_strength(edges, valid)
        for t in tiles:
            sel = [n for n, o in enumerate(owners) if o == t]
            rec = self._learned_record(scores, sel)
            members = np.flatnonzero((self.tile_rc[:, 0] == t[0]) & (self.tile_rc[:, 1] == t[1]))
            self._building_features(members, rec, levels, field, local_field, valid, edges, edge_mean, r0, c0)
            rec["n_buildings"] = int(len(members))
            if "nearest_exemplars" in scores and sel:
                best = int(np.argmax(scores["nearest_similarity"][sel, 0]))
                self.nearest[t] = (scores["nearest_exemplars"][sel[best]].tolist(),
                                   scores["nearest_similarity"][sel[best]].tolist())
            self.tiles[t] = rec
        self.seconds += time.perf_counter() - t0

    def _claimed(self, core: tuple[int, int, int, int]) -> list[tuple[int, int]]:
        """The report tiles whose centre lies in ``core`` (r0, r1, c0, c1)."""
        return [(i, j) for i in range(self.n_rows) for j in range(self.n_cols)
                if core[0] <= self._mid(i, self.height) < core[1] and core[2] <= self._mid(j, self.width) < core[3]]

    def reading_window(self, tile) -> tuple[int, int, int, int]:
        """The part of ``tile``'s input window (a :class:`~geoalign.inference.tiling.Tile`)
        the report reads, on the working grid: its footprint (the preview), the report tiles it
        claims widened by the scorer's patch reach, and their buildings' boxes widened by the
        few pixels their samples read; its origin on the scorer's pooling grid of the input
        window, so every value the report computes is the one the whole window gives."""
        r0, r1, c0, c1 = tile.foot
        claimed = self._claimed(tile.claim)
        if claimed:
            f = self.scorer.factor
            reach = self.scorer.footprint_px // 2 + 2 * f
            rows, cols = np.array([t[0] for t in claimed]), np.array([t[1] for t in claimed])
            r0, c0 = min(r0, rows.min() * self.tile_px - reach), min(c0, cols.min() * self.tile_px - reach)
            r1, c1 = max(r1, (rows.max() + 1) * self.tile_px + reach), max(c1, (cols.max() + 1) * self.tile_px + reach)
            key = self.tile_rc[:, 0] * (self.n_cols + 1) + self.tile_rc[:, 1]
            members = np.flatnonzero(np.isin(key, rows * (self.n_cols + 1) + cols))
            if len(members):
                x0, y0, x1, y1 = shapely.total_bounds(self.geoms[members])
                margin = 4  # sampling reads 2 px around a vertex, the edge image 1 px around a box
                r0, c0 = min(r0, int(math.floor(y0)) - margin), min(c0, int(math.floor(x0)) - margin)
                r1, c1 = max(r1, int(math.ceil(y1)) + margin), max(c1, int(math.ceil(x1)) + margin)
            ir0, ic0 = tile.inp[0], tile.inp[2]
            r0, c0 = ir0 + max(0, r0 - ir0) // f * f, ic0 + max(0, c0 - ic0) // f * f
        return (max(r0, tile.inp[0]), min(r1, tile.inp[1]), max(c0, tile.inp[2]), min(c1, tile.inp[3]))

    def report_window(self, tf: TileField) -> "ReportWindow | None":
        """What the report reads of one :class:`~geoalign.inference.tiling.TileField`: its
        arrays cut to :meth:`reading_window` (copies: the tile's own arrays can be released
        while the report scores it), the edge normalization of the whole input window, and for
        the ``local+learned`` pipeline the classical stage's field, windows and the map it handed
        the learned stage (read, not searched again); None for a tile without buildings."""
        if not tf.has_buildings:
            return None
        inp, foot = tf.tile.inp, tf.tile.foot
        win = self.reading_window(tf.tile)
        rows, cols = slice(win[0] - inp[0], win[1] - inp[0]), slice(win[2] - inp[2], win[3] - inp[2])
        pads = ((0, 0), (foot[0] - win[0], win[1] - foot[1]), (foot[2] - win[2], win[3] - foot[3]))

        def over_window(f: np.ndarray) -> np.ndarray:
            return np.pad(np.asarray(f, np.float32), pads, mode="edge")

        def cut(a: np.ndarray) -> np.ndarray:
            return np.array(a[..., rows, cols], copy=True)

        classical, map_ = None, None
        ev = tf.evidence
        if ev is not None and len(tf.stage_fields) == 2 and len(ev.stage_maps) == 2:
            windows = tuple(w.shifted(inp[0] - win[0], inp[2] - win[2]) for w in ev.windows)
            classical = ClassicalStage(over_window(tf.stage_fields[0]), windows, cut(ev.stage_maps[1]))
        else:
            map_ = cut(tf.map_)
        edges = edge_strength(tf.image)  # once, over the whole window: its mean and the cut's values
        return ReportWindow(win, tf.tile.claim, foot, cut(tf.image), cut(tf.valid), map_, over_window(tf.field),
                            classical, cut(edges), mean_edge_strength(edges, tf.valid))

    def on_report_window(self, w: "ReportWindow | None") -> None:
        """Score one :meth:`report_window` (nothing for a tile without buildings)."""
        if w is not None:
            self.on_tile(inp=w.inp, core=w.claim, image=w.image, valid=w.valid, map_=w.map_, field=w.field,
                         classical=w.classical, preview_window=w.foot, edges=w.edges, edge_mean=w.edge_mean)

    def on_tile_field(self, tf: TileField) -> None:
        """The tiler's hook (``predict_tiled(on_tile=report.on_tile_field)``): one
        :class:`~geoalign.inference.tiling.TileField` (``tile.inp``/``tile.foot`` windows,
        ``image``/``valid``/``map_`` over the input window, ``field`` over the footprint; for the
        ``local+learned`` pipeline each stage's field and what it saw). Report tiles go to the
        first alignment tile whose footprint holds their centre (``tile.claim``); tiles without
        buildings are skipped."""
        self.on_report_window(self.report_window(tf))

    def _preview_rows_cols(self, core) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of the preview that the alignment tile of footprint ``core`` fills."""
        step = self.preview_step
        return (np.arange(-(-core[0] // step), -(-min(core[1], self.height) // step)),
                np.arange(-(-core[2] // step), -(-min(core[3], self.width) // step)))

    def _keep_preview(self, image: np.ndarray, core, r0: int, c0: int) -> None:
        step = self.preview_step
        pr, pc = self._preview_rows_cols(core)
        if len(pr) and len(pc):
            block = image[:, pr[:, None] * step - r0, pc[None, :] * step - c0]
            self.preview[:, pr[0]:pr[-1] + 1, pc[0]:pc[-1] + 1] = np.round(np.clip(block, 0, 1) * 255)

    # ------------------------------------------------------------------ tiles computed elsewhere
    def tile_part(self, tf: TileField) -> dict[str, np.ndarray]:
        """What :meth:`on_tile_field` adds for one alignment tile, as plain arrays (saved with
        ``np.savez``, read without pickle): a worker of the Dask path computes it, the client's
        report takes it with :meth:`merge_part`. Report tiles and buildings belong to one
        alignment tile each, so parts merged in any order give the single-process report."""
        self.tiles, self.thumbs, self.nearest = {}, {}, {}  # this tile's only (a rerun task too)
        self.on_tile_field(tf)
        new = sorted(self.tiles)
        keys = np.array(new, np.int64).reshape(-1, 2)
        rows = np.flatnonzero(np.isin(self.tile_rc[:, 0] * (self.n_cols + 1) + self.tile_rc[:, 1],
                                      keys[:, 0] * (self.n_cols + 1) + keys[:, 1])) if len(new) else np.zeros(0, np.int64)
        part: dict[str, np.ndarray] = {"tile_keys": keys, "building_rows": rows.astype(np.int64),
                                       "features": self.features[rows], "move_px": self.move_px[rows]}
        for name in _RECORD_SCALARS:
            part[f"rec_{name}"] = np.array([self.tiles[t][name] for t in new], np.float64)
        part["rec_shift_vec_px"] = np.array([self.tiles[t]["shift_vec_px"] for t in new], np.float64).reshape(-1, 2)
        thumbs = [t for t in new if t in self.thumbs]
        part["thumb_keys"] = np.array(thumbs, np.int64).reshape(-1, 2)
        if thumbs:
            part["thumbs"] = np.stack([self.thumbs[t] for t in thumbs])
        near = [t for t in new if t in self.nearest]
        part["nearest_keys"] = np.array(near, np.int64).reshape(-1, 2)
        if near:
            part["nearest_exemplars"] = np.array([self.nearest[t][0] for t in near], np.int64)
            part["nearest_similarity"] = np.array([self.nearest[t][1] for t in near], np.float64)
        if tf.has_buildings:
            pr, pc = self._preview_rows_cols(tf.tile.foot)
            if len(pr) and len(pc):
                part["preview_box"] = np.array([pr[0], pr[-1] + 1, pc[0], pc[-1] + 1], np.int64)
                part["preview"] = self.preview[:, pr[0]:pr[-1] + 1, pc[0]:pc[-1] + 1].copy()
        return part

    def merge_part(self, part: dict[str, np.ndarray], seconds: float = 0.0) -> None:
        """Take one alignment tile's :meth:`tile_part` (computed in another process)."""
        rows = part["building_rows"]
        self.features[rows] = part["features"]
        self.move_px[rows] = part["move_px"]
        for n, (i, j) in enumerate(part["tile_keys"].tolist()):
            rec = {name: float(part[f"rec_{name}"][n]) for name in _RECORD_SCALARS}
            rec["n_buildings"] = int(rec["n_buildings"])
            rec["shift_vec_px"] = part["rec_shift_vec_px"][n].copy()
            self.tiles[(i, j)] = rec
        for n, (i, j) in enumerate(part["thumb_keys"].tolist()):
            self.thumbs[(i, j)] = part["thumbs"][n]
        for n, (i, j) in enumerate(part["nearest_keys"].tolist()):
            self.nearest[(i, j)] = (part["nearest_exemplars"][n].tolist(), part["nearest_similarity"][n].tolist())
        if "preview_box" in part:
            a, b, c, d = part["preview_box"].tolist()
            self.preview[:, a:b, c:d] = part["preview"]
        self.seconds += seconds

    def _mid(self, k: int, size: int) -> float:
        """Centre of the k-th report tile along an axis of ``size`` pixels, clipped to the grid."""
        return 0.5 * (k * self.tile_px + min(size, (k + 1) * self.tile_px))

    @staticmethod
    def _learned_record(scores: dict, sel: list[int]) -> dict:
        if not sel:
            return {"density": np.nan, "density_quantile": np.nan, "uncertainty": np.nan,
                    "denoising_factor": np.nan, "shift_vec_px": np.array([np.nan, np.nan]),
                    "neighbour_error_px": np.nan}
        return {"density": float(np.mean(scores["density"][sel])),
                "density_quantile": float(np.mean(scores["density_quantile"][sel])),
                "uncertainty": float(np.median(scores["uncertainty"][sel])),
                "denoising_factor": float(np.mean(scores["denoising_factor"][sel])),
                "shift_vec_px": scores["shift_px"][sel].mean(0),
                "neighbour_error_px": float(np.mean(scores["neighbour_error_px"][sel]))}

    def _building_features(self, members, rec, levels, field, local_field, valid, edges, edge_mean, r0, c0):
        if len(members) == 0:
            return
        h, w = valid.shape
        learned = [rec["density_quantile"], math.log(rec["uncertainty"]) if rec["uncertainty"] > 0 else np.nan,
                   rec["denoising_factor"], float(_log1p(np.hypot(*rec["shift_vec_px"]))),
                   float(_log1p(rec["neighbour_error_px"]))]
        ys = self.centroids[members, 1] - r0
        xs = self.centroids[members, 0] - c0
        cl = []
        for lv in range(2):
            if lv < len(levels):
                vals = levels[lv].at(ys, xs)
                cl.append(np.column_stack([vals[k] for k in ("log_confidence", "log_second_peak_ratio",
                                                             "sqrt_evidence", "unused", "at_border",
                                                             "log_disagreement")]))
            else:
                cl.append(np.full((len(members), 6), np.nan))
        for n, b in enumerate(members):
            xy = shapely.get_coordinates(self.geoms[b]) - np.array([c0, r0])
            tot, loc = _sample_near(field, xy), _sample_near(local_field, xy)
            move = np.hypot(*tot.T)
            self.move_px[b] = float(move.mean())
            x0, y0 = np.clip(np.floor(xy.min(0)).astype(int), 0, [w - 1, h - 1])
            x1, y1 = np.clip(np.ceil(xy.max(0)).astype(int) + 1, [x0 + 1, y0 + 1], [w, h])
            box_edges = edges[y0:y1, x0:x1]
            box_valid = valid[y0:y1, x0:x1]
            self.features[b] = [
                *cl[0][n], *cl[1][n],
                float((move >= BOUND_FRACTION * self.search_px).mean()),
                float(_log1p(np.hypot(*(tot - loc).T).mean())),
                float(_log1p(move.mean())),
                math.log(max(1.0, float(shapely.area(self.geoms[b])))),
                float(box_edges.mean() / (edge_mean + 1e-6)) if box_edges.size else np.nan,
                float(box_valid.mean()) if box_valid.size else 0.0,
                *learned,
            ]

    # ------------------------------------------------------------------ results
    def finish(self) -> TrustResult:
        """Calibrated expected errors, confidences, the gate and the tile records."""
        t0 = time.perf_counter()
        have = np.isfinite(self.features).any(axis=1)
        expected = np.full(self.n, np.nan)
        if self.calibration is None:
            self.calibration = load_calibration(self.model_dir)
        if have.any() and self.calibration is not False:
            expected[have] = self.calibration.predict_px(self.features[have])
        q = self.low_density_quantile
        order = sorted(self.tiles)
        index = {t: n for n, t in enumerate(order)}
        tile_of = np.array([index.get((int(r), int(c)), -1) for r, c in self.tile_rc], np.int64)
        tiles = []
        for t in order:
            rec = self.tiles[t]
            members = np.flatnonzero(tile_of == index[t])
            errs = expected[members][np.isfinite(expected[members])]
            dq = rec["density_quantile"]
            sv = rec["shift_vec_px"]
            east, north = self._crs_vector(sv)
            lv = self.features[members, FEATURES.index("l0_log_confidence")] if len(members) else np.array([])
            lv = lv[np.isfinite(lv)]
            tiles.append({
                "tile_id": f"r{t[0]}_c{t[1]}", "row": t[0], "col": t[1],
                "bounds_px": (t[1] * self.tile_px, t[0] * self.tile_px,
                              min(self.width, (t[1] + 1) * self.tile_px), min(self.height, (t[0] + 1) * self.tile_px)),
                "density": rec["density"], "density_quantile": dq,
                "low_density": bool(np.isfinite(dq) and dq < q),
                "uncertainty": rec["uncertainty"], "denoising_factor": rec["denoising_factor"],
                "shift_px": float(np.hypot(*sv)), "shift_m": float(np.hypot(*sv)) * self.gsd_m,
                "shift_azimuth_deg": float(math.degrees(math.atan2(east, north)) % 360.0)
                if np.all(np.isfinite(sv)) else np.nan,
                "mean_displacement_px": float(np.nanmean(self.move_px[members])) if len(members) else 0.0,
                "n_buildings": int(len(members)),
                "expected_error_px": float(np.median(errs)) if len(errs) else np.nan,
                "neighbour_error_px": rec["neighbour_error_px"],
                "classical_confidence": float(np.expm1(np.median(lv))) if len(lv) else np.nan,
            })
        low = np.array([tiles[i]["low_density"] if i >= 0 else False for i in tile_of], bool)
        conf = confidence(expected, low)
        conf[~np.isfinite(expected)] = np.nan
        gated = np.zeros(self.n, bool)
        if self.trust_gate_px is not None:
            gated = have & gated_by(self.trust_gate_px, expected, low, self.move_px)
        self.seconds += time.perf_counter() - t0
        thresholds = {"low_density_quantile": q,
                      "low_density_below_N_S": float(np.quantile(self.scorer.stats.densities, q)),
                      "trust_gate_px": self.trust_gate_px, "tile_px": self.tile_px,
                      "tile_m": self.tile_px * self.gsd_m, "confidence_tolerance_px": 2.0}
        cal = self.calibration.to_json() if self.calibration is not False else {}
        return TrustResult(tiles, expected, conf, gated, tile_of, self.features.copy(), thresholds,
                           self.seconds, {index[t]: v for t, v in self.nearest.items()},
                           {index[t]: v for t, v in self.thumbs.items()},
                           {k: cal[k] for k in ("data", "n_buildings", "n_stale", "spearman_in_sample", "target",
                                                "confidence", "command") if k in cal})

    def write(self, stage: Path, result: TrustResult, *, crs, model: str = "", timings: dict | None = None) -> tuple[str, ...]:
        """Write the report files (:mod:`geoalign.report.writers`) under ``stage``; returns their
        names relative to it (for the output set)."""
        from geoalign.report import writers as W

        t0 = time.perf_counter()
        out = Path(stage) / W.REPORT_DIR
        out.mkdir(parents=True, exist_ok=True)
        extra = {"error_px": [t.get("error_px", np.nan) for t in result.tiles]} if any(
            "error_px" in t for t in result.tiles) else None
        tiles = W.tiles_frame(result.tiles, self.transform, crs, extra=extra)
        low = tiles[tiles["low_density"]]
        review = W.to_review(tiles)
        W.write_geojson(tiles, out / "tiles.geojson")
        W.write_geojson(low, out / "low_density.geojson")
        W.write_geojson(review, out / "to_review.geojson")
        W.write_gpkg({"tiles": tiles, "low_density": low, "to_review": review}, out / "report.gpkg")
        st = self.scorer.stats
        W.plot_expected_error(self.preview, result.tiles, self.preview_step, out / "expected_error.png",
                              gate_px=self.trust_gate_px)
        W.plot_density_histogram(np.array([t["density"] for t in result.tiles], float), st.densities,
                                 result.thresholds["low_density_below_N_S"], self.low_density_quantile,
                                 out / "density_histogram.png")
        scored = [n for n, t in enumerate(result.tiles) if np.isfinite(t["density"]) and n in result.nearest]
        least = sorted(scored, key=lambda n: result.tiles[n]["density"])[:3]
        W.plot_nearest([(f"tile {result.tiles[n]['tile_id']}: N_S {result.tiles[n]['density']:.0f}",
                         result.thumbs[n], *result.nearest[n]) for n in least if n in result.thumbs],
                       st.exemplar_thumbs, out / "nearest_training.png")
        has = np.isfinite(result.expected_error_px)
        summary = {
            "tiles": len(result.tiles), "tiles_with_buildings": int(sum(t["n_buildings"] > 0 for t in result.tiles)),
            "low_density_tiles": int(len(low)), "buildings_scored": int(has.sum()),
            "buildings_gated": int(result.gated.sum()),
            "buildings_confidence_below_0p5": int((result.confidence[has] < 0.5).sum()),
            "median_expected_error_px": float(np.median(result.expected_error_px[has])) if has.any() else None,
            "thresholds": result.thresholds, "model": model,
            "training_statistics": {k: st_meta for k, st_meta in self.stats.meta.items()
                                    if k in ("dataset", "patches", "scales", "command")},
            "learned_scale": self.scale, "calibration": result.calibration,
            "units": {"_px": f"pixels of the working grid ({self.gsd_m:g} m)", "_m": "metres",
                      "shift_azimuth_deg": "clockwise from grid north"},
            "timings_s": {**(timings or {}), "trust": round(result.seconds, 2),
                          "report_files": round(time.perf_counter() - t0, 2)},
        }
        if extra:
            e = np.array([t.get("error_px", np.nan) for t in result.tiles], float)
            x = np.array([t["expected_error_px"] for t in result.tiles], float)
            ok = np.isfinite(e) & np.isfinite(x)
            if ok.sum() > 2:
                from scipy.stats import spearmanr
                summary["truth"] = {"tiles_with_truth": int(ok.sum()),
                                    "spearman_expected_vs_actual": float(spearmanr(x[ok], e[ok]).statistic)}
        W.write_json(summary, out / "report.json")
        return W.NAMES

    def _crs_vector(self, v_px) -> tuple[float, float]:
        """A working-pixel vector (dx, dy) as (east, north) in CRS units."""
        t = self.transform
        return t.a * v_px[0] + t.b * v_px[1], t.d * v_px[0] + t.e * v_px[1]
