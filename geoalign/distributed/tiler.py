"""The tiles of :func:`~geoalign.inference.tiling.predict_tiled`, computed on a Dask cluster.

Each tile is one task: the worker reads the tile's window plus halo from the raster by path, runs
the predictor and saves the weighted footprint field into the job's :class:`TileStore` (the output
folder); the client blends the saved parts with
:func:`~geoalign.inference.tiling.blend_tiles` in row-major order, exactly as one process does,
so the field (and every moved vertex) is the same whatever the worker count and the order tasks
finish in. A raster-wide predictor's pass is a map of per-tile evidence and one reduce task that
sums it in row-major order (:func:`~geoalign.inference.tiling.sum_evidence`).

Tasks are submitted at most ``ahead`` tiles past the first tile not yet blended (earlier tiles
first), so the client holds a bounded number of futures on rasters of any size; a task whose
worker dies is rerun by the scheduler on another worker.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Iterator

import numpy as np
import shapely

from geoalign.distributed.store import TileStore
from geoalign.distributed.worker import (PredictorSpec, RasterJob, evidence_task, field_task, load_hook_part,
                                         load_part)
from geoalign.errors import OptionError
from geoalign.inference.protocol import FieldPredictor, RasterWidePredictor, RemoteTileHook
from geoalign.inference.tiling import (Tile, TileInputs, TilePart, blend_tiles, fix_raster_wide, plan_tiles,
                                       sum_evidence)
from geoalign.progress import progress


def _reduce_evidence(*parts: np.ndarray | None) -> np.ndarray | None:
    return sum_evidence(parts)


class DaskTiler:
    """A ``predict`` for :func:`geoalign.inference.layer.align_layer` that runs the tiles on
    ``client``'s cluster; ``spec`` rebuilds the predictor in the workers. Counts what it computed
    (``computed``) and what it took from the store (``reused``)."""

    def __init__(self, client, spec: PredictorSpec, store: TileStore, *, ahead: int | None = None) -> None:
        self.client, self.spec, self.store = client, spec, store
        n_workers = max(1, sum(client.nthreads().values()))
        self.ahead = int(ahead or max(16, 4 * n_workers))
        self.computed = 0
        self.reused = 0

    def _job(self, inputs: TileInputs) -> RasterJob:
        return RasterJob(str(inputs.reader.path), inputs.grid, tuple(inputs.channels), self.spec)

    @staticmethod
    def _geoms_for(inputs: TileInputs, tile: Tile) -> np.ndarray:
        """The buildings under the tile's input window, in input order (the same map raster)."""
        r0, r1, c0, c1 = tile.inp
        return inputs.geoms[np.sort(inputs.tree.query(shapely.box(c0, r0, c1, r1)))]

    def _evidence(self, inputs: TileInputs, predictor: RasterWidePredictor, tiles: list[Tile],
                  job: RasterJob, show_progress: bool):
        """Map-reduce of the raster-wide evidence; fixes ``predictor`` in the client too."""
        recorded, total = self.store.load_evidence()
        if not recorded:
            parts = [self.client.submit(evidence_task, job, t, self._geoms_for(inputs, t), pure=False)
                     for t in tiles]
            if show_progress:
                from distributed import as_completed

                for _ in progress(as_completed(parts), total=len(parts), desc="global pass", unit="tile"):
                    pass
            total = self.client.submit(_reduce_evidence, *parts, pure=False).result()
            self.store.save_evidence(total)
        fix_raster_wide(predictor, total)
        return total

    def __call__(self, inputs: TileInputs, predictor: FieldPredictor, *, tile_px: int, blend_px: int,
                 sink: Callable[[int, np.ndarray], None], show_progress: bool = True,
                 on_tile=None) -> dict:
        if on_tile is not None and not isinstance(on_tile, RemoteTileHook):
            raise OptionError("this per-tile hook runs in one process only: leave out --workers/--scheduler.")
        hook_setup = self.client.scatter(on_tile.setup(), broadcast=True) if on_tile is not None else None
        rows = plan_tiles(inputs.grid, predictor, tile_px=tile_px, blend_px=blend_px)
        tiles = [t for row in rows for t in row]
        job = self._job(inputs)
        evidence = None
        if isinstance(predictor, RasterWidePredictor):
            evidence = self._evidence(inputs, predictor, tiles, job, show_progress)
        bar = progress(total=len(tiles), desc="align", unit="tile", enabled=show_progress)
        evidence_future = self.client.scatter(evidence, broadcast=True) if evidence is not None else None

        def parts() -> Iterator[TilePart]:
            in_flight: deque = deque()
            upcoming = iter(tiles)
            for tile in tiles:
                while len(in_flight) < self.ahead:
                    nxt = next(upcoming, None)
                    if nxt is None:
                        break
                    if self.store.finished(nxt):
                        in_flight.append((nxt, None))
                        continue
                    hook = (None if hook_setup is None
                            else (self.store.dir.name, hook_setup, str(self.store.hook_path(nxt))))
                    fut = self.client.submit(field_task, job, nxt, self._geoms_for(inputs, nxt), evidence_future,
                                             str(self.store.path(nxt)), hook, pure=False, retries=2)
                    in_flight.append((nxt, fut))
                done_tile, fut = in_flight.popleft()
                if fut is None:
                    self.reused += 1
                else:
                    fut.result()
                    self.computed += 1
                weighted, valid_any = load_part(self.store.path(done_tile))
                if on_tile is not None:
                    on_tile.merge(load_hook_part(self.store.hook_path(done_tile)))
                bar.update(1)
                yield TilePart(done_tile, weighted, valid_any)

        stats = blend_tiles(inputs.grid, rows, parts(), sink)
        bar.close()
        return stats
