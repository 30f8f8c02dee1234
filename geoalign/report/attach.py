"""What ``align --report`` adds around the tiler: the report's construction from align's own
objects, the per-building columns and the trust gate, and the actual errors with ``--truth``.

:class:`ReportRequest` is what :func:`geoalign.align.align_raster` takes (``report=``): it starts
the :class:`TrustReport` on the same working grid and map as the aligner, hands it each tile
through the tiler's hook, and finishes it into the output set.

Wiring (one pass over the imagery):

1. before the tiler runs: ``report = new_report(model_dir, map_geoms_work_px, work_grid_shape,
   work_transform, tile_m=..., low_density_quantile=..., trust_gate_px=..., search_px=...)``
   with the same working-pixel geometries the tiler rasterizes (the cleaned buildings);
2. the tiler calls ``report.on_tile(inp=..., core=..., image=..., valid=..., map_=..., field=...)``
   once per tile that holds buildings (arrays over the tile's input window, the total field);
3. after the tiler: ``result = report.finish()``; ``out = building_columns(out, result,
   positions, input_geoms)`` (gated buildings keep their input geometry, ``shift_m`` 0);
   with ``--truth``: ``result.add_truth(truth_errors(...))``; then
   ``report.write(stage, result, crs=raster_crs, model=..., timings=...)`` inside align's output
   set (its names are :data:`geoalign.report.writers.NAMES`).
"""

from __future__ import annotations

import importlib
import logging
import time
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from geoalign.inference.protocol import FieldPredictor, StagedPredictor
from geoalign.inference.tiling import TileField
from geoalign.model.threads import one_thread_worker
from geoalign.report.trust import ReportSetup, TrustReport, TrustResult


def new_report(model_dir, buildings_work_px, grid_shape: tuple[int, int], work_transform, *,
               tile_m: float | None = None, low_density_quantile: float = 0.05,
               trust_gate_px: float | str | None = None, search_px: int = 40) -> TrustReport:
    """A :class:`TrustReport` for one align run (``model_dir`` None: the shipped model)."""
    return TrustReport(buildings_px=buildings_work_px, grid_shape=grid_shape, work_transform=work_transform,
                       model_dir=model_dir, tile_m=tile_m, low_density_quantile=low_density_quantile,
                       trust_gate_px=trust_gate_px, search_px=search_px)


def building_columns(out: gpd.GeoDataFrame, result: TrustResult, positions: np.ndarray,
                     input_geoms: np.ndarray | None = None) -> gpd.GeoDataFrame:
    """Add ``expected_error_px``, ``confidence`` (NaN where not scored) and ``gated`` to ``out``
    (align's output features); ``positions[k]`` is the row of ``out`` of the report's building k.

    Gated buildings get back ``input_geoms`` (their input geometry, the CRS of ``out``) and
    ``shift_m`` = 0: the analyst decides."""
    n = len(out)
    expected = np.full(n, np.nan)
    conf = np.full(n, np.nan)
    gated = np.zeros(n, bool)
    positions = np.asarray(positions, np.int64)
    expected[positions] = result.expected_error_px
    conf[positions] = result.confidence
    gated[positions] = result.gated
    out = out.copy()
    out["expected_error_px"] = expected
    out["confidence"] = conf
    out["gated"] = gated
    if gated.any() and input_geoms is not None:
        geoms = np.asarray(out.geometry.values, dtype=object).copy()
        geoms[gated] = np.asarray(input_geoms, dtype=object)[gated]
        out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=out.crs))
        if "shift_m" in out.columns:
            out.loc[gated, "shift_m"] = 0.0
    return out


def truth_errors(aligned: gpd.GeoDataFrame, positions: np.ndarray, truth_path: str | Path, id_field: str,
                 grid, work_scale: float = 1.0) -> list[np.ndarray | None]:
    """Per report building: its vertices' distances (working px) to the truth feature with the
    same ``id_field`` (vertex-wise when the vertex counts agree, else to the truth's outline);
    None without a match."""
    from geoalign.evaluate.metrics import _index_by_id, _key
    from geoalign.grid import reproject_to
    from geoalign.io.vectors import read_vectors

    truth = read_vectors(truth_path)
    index = _index_by_id(truth, id_field, str(truth_path))
    _index_by_id(aligned, id_field, "the aligned buildings")
    truth = reproject_to(truth, grid.crs, source=str(truth_path))
    mine = reproject_to(aligned, grid.crs)
    t_geoms = grid.to_pixels(np.asarray(truth.geometry.values, dtype=object))
    a_geoms = grid.to_pixels(np.asarray(mine.geometry.values, dtype=object))
    out: list[np.ndarray | None] = []
    for pos in np.asarray(positions, np.int64):
        j = index.get(_key(aligned[id_field].iloc[pos]))
        a = a_geoms[pos]
        if j is None or a is None or a.is_empty or t_geoms[j] is None or t_geoms[j].is_empty:
            out.append(None)
            continue
        pa, pt = shapely.get_coordinates(a), shapely.get_coordinates(t_geoms[j])
        e = np.hypot(*(pa - pt).T) if len(pa) == len(pt) else shapely.distance(shapely.points(pa),
                                                                               t_geoms[j].boundary)
        out.append(np.asarray(e, np.float64) / work_scale)
    return out


@dataclass(frozen=True)
class ReportRequest:
    """``align --report`` options (see docs/trust-report.md)."""

    model_dir: str | Path | None = None  # statistics and calibration (None: the shipped model)
    tile_m: float | None = None  # report tile side (None: the learned stage's training patch)
    low_density_quantile: float = 0.05
    trust_gate_px: float | str | None = None  # px, or "auto"
    truth_path: str | Path | None = None
    id_field: str | None = None
    search_px: int = 40

    @property
    def names(self) -> tuple[str, ...]:
        from geoalign.report.writers import NAMES

        return NAMES

    def start(self, reader, buildings: gpd.GeoDataFrame, predictor: FieldPredictor) -> "RunningReport":
        """The report of one align run: the buildings on the aligner's working grid (the same
        cleaning, reprojection and scaling as :func:`geoalign.inference.layer.align_layer`)."""
        from geoalign.grid import PixelGrid, reproject_to
        from geoalign.inference.tiling import WorkGrid, work_transform
        from geoalign.io.vectors import clean_buildings

        if not isinstance(predictor, StagedPredictor) or predictor.name != "local+learned":
            from geoalign.errors import OptionError

            raise OptionError(f"--report is calibrated for the local+learned pipeline, not {predictor.name!r}; "
                              "run without --method (the default pipeline) or with --method local+learned.")
        grid = PixelGrid.of(reader)
        work = WorkGrid.for_predictor(reader, predictor.gsd_m)
        vlog = logging.getLogger("geoalign.io.vectors")
        level = vlog.level
        vlog.setLevel(logging.ERROR)  # the aligner reports the same repairs once
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cleaned = clean_buildings(buildings, non_areal="kept unchanged")
        finally:
            vlog.setLevel(level)
        geoms = grid.to_pixels(np.asarray(reproject_to(cleaned, grid.crs).geometry.values, dtype=object))
        if work.px_ratio != 1.0:
            geoms = shapely.transform(geoms, lambda xy: xy / work.px_ratio)
        report = new_report(self.model_dir, geoms, (work.height, work.width),
                            work_transform(reader.transform, work.px_ratio), tile_m=self.tile_m,
                            low_density_quantile=self.low_density_quantile, trust_gate_px=self.trust_gate_px,
                            search_px=self.search_px)
        return RunningReport(self, report, buildings.index.get_indexer(cleaned.index), grid, work.px_ratio,
                             reader.crs, time.perf_counter())


@dataclass
class RunningReport:
    request: ReportRequest
    report: TrustReport
    positions: np.ndarray  # row of align's output of each report building
    grid: object  # the image's PixelGrid
    px_ratio: float  # working pixel / image pixel
    crs: object
    t0: float
    pending: deque = field(default_factory=deque)  # the tiles handed to the background thread
    pool: ThreadPoolExecutor = field(default_factory=lambda: one_thread_worker("report", nice=10))

    # Tiles waiting for the report at once: the tiler computes the next tile while the report
    # scores this one, and memory holds at most this many tiles' arrays more than align's.
    max_pending = 1

    def __post_init__(self) -> None:
        # the report's plots import matplotlib (about 1 s): done while align computes its first tile
        self.pending.append(self.pool.submit(importlib.import_module, "matplotlib.backends.backend_agg"))

    def on_tile(self, tile_field: TileField) -> None:
        """Score the tile in the background (one thread, one torch thread, tiles in order, at a
        lower priority): align's tiles leave about a quarter of two cores idle (reads, blending,
        Python), which the report fills. The background thread gets copies of the part of the
        tile the report reads (:meth:`TrustReport.report_window`), so align releases the tile's
        arrays before it computes the next."""
        window = self.report.report_window(tile_field)
        while len(self.pending) >= self.max_pending:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(self.report.on_report_window, window))

    def wait(self) -> None:
        """Every task handed to the background thread done (re-raises what it raised)."""
        while self.pending:
            self.pending.popleft().result()

    def close(self) -> None:
        """:meth:`wait`, then the background thread ends (also when align failed)."""
        try:
            self.wait()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    # a RemoteTileHook (geoalign.inference.protocol): tiles computed by Dask workers
    __call__ = on_tile

    def setup(self) -> ReportSetup:
        return self.report.setup

    def merge(self, part: dict[str, np.ndarray]) -> None:
        self.report.merge_part(part)

    def finish(self, aligned: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, stage: Path) -> gpd.GeoDataFrame:
        """Columns and gate on ``aligned`` (returned); the report's files under ``stage``, written
        in the background while align writes its own (:meth:`close` waits for them)."""
        self.wait()
        result = self.report.finish()
        out = building_columns(aligned, result, self.positions, np.asarray(buildings.geometry.values, dtype=object))
        if self.request.truth_path is not None:
            result.add_truth(truth_errors(out, self.positions, self.request.truth_path, self.request.id_field,
                                          self.grid, self.px_ratio))
        model = str(self.request.model_dir) if self.request.model_dir else "shipped default model"
        self.pending.append(self.pool.submit(
            self.report.write, stage, result, crs=self.crs, model=model,
            timings={"align_with_report": round(time.perf_counter() - self.t0, 2)}))
        return out
