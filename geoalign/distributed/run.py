"""``geoalign align`` on a Dask cluster: the single-process output set, tiles computed by workers.

The output set (:func:`geoalign.align.run.align_raster`) is the same as one process writes: the
same blended field, the same moved vertices. Finished windows are kept in the output folder
(:class:`~geoalign.distributed.store.TileStore`) until the set is complete, so a killed job rerun
with the same arguments computes only the windows it had not finished.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from geoalign.align.run import AlignResult, align_raster
from geoalign.distributed.cluster import dask_client
from geoalign.distributed.mosaic import raster_list, write_vrt
from geoalign.distributed.store import PROGRESS_DIR, TileStore, job_key
from geoalign.distributed.tiler import DaskTiler
from geoalign.distributed.worker import PredictorSpec, warm_up


def mosaic_path(rasters: str, out_dir: str | Path) -> tuple[Path, list[Path]]:
    """(the raster to align, the files it reads) for ``--rasters``: one file as it is, several as a
    VRT mosaic in the output folder's progress folder (readable by every worker that sees it)."""
    paths = raster_list(rasters)
    if len(paths) == 1:
        return paths[0], paths
    key = job_key(paths, paths[0], PredictorSpec())[:8]
    return write_vrt(paths, Path(out_dir) / PROGRESS_DIR / f"mosaic-{key}.vrt"), paths


def align_rasters(
    rasters: str, buildings_path: str | Path, out_dir: str | Path, spec: PredictorSpec, *,
    workers: int | None = None, scheduler: str | None = None, tile_px: int = 2048, layer: str | None = None,
    show_progress: bool = True, report=None,
) -> AlignResult:
    """``--rasters``: align the buildings to the mosaic of several rasters, on a Dask cluster when
    ``workers`` or ``scheduler`` is given, else in this process (the VRT then lives in a
    temporary folder)."""
    if workers or scheduler:
        image, read_paths = mosaic_path(rasters, out_dir)
        return align_distributed(image, buildings_path, out_dir, spec, workers=workers, scheduler=scheduler,
                                 tile_px=tile_px, layer=layer, show_progress=show_progress, read_paths=read_paths,
                                 report=report)
    paths = raster_list(rasters)
    predictor, name, note = spec.resolve()
    with tempfile.TemporaryDirectory(prefix="geoalign-mosaic-") as tdir:
        image = paths[0] if len(paths) == 1 else write_vrt(paths, Path(tdir) / "mosaic.vrt")
        return align_raster(image, buildings_path, out_dir, predictor, method=name, note=note, tile_px=tile_px,
                            layer=layer, show_progress=show_progress, inputs=paths, report=report)


def align_distributed(
    image_path: str | Path, buildings_path: str | Path, out_dir: str | Path, spec: PredictorSpec, *,
    workers: int | None = None, scheduler: str | None = None, tile_px: int = 2048, blend_px: int = 64,
    layer: str | None = None, show_progress: bool = True, read_paths: list[Path] | None = None, report=None,
) -> AlignResult:
    """Align on a ``LocalCluster`` of ``workers`` processes or the cluster at ``scheduler``;
    ``read_paths``: the rasters behind a mosaic (they key the finished windows); ``report``: a
    :class:`geoalign.report.attach.ReportRequest` (the trust report's tiles are computed by the
    workers too, and the report is the single-process one)."""
    key = job_key(read_paths or [image_path], buildings_path, spec, tile_px=tile_px, blend_px=blend_px,
                  layer=layer, image=str(image_path), report=repr(report))
    store = TileStore(out_dir, key)
    with dask_client(workers, scheduler) as client:
        # every worker loads the model while the client loads its own and reads the buildings
        warm = [client.submit(warm_up, spec, str(image_path), workers=[w], allow_other_workers=False, pure=False)
                for w in client.scheduler_info()["workers"]]
        predictor, name, note = spec.resolve()
        store.open()
        tiler = DaskTiler(client, spec, store)
        n_workers = len(client.scheduler_info()["workers"])
        result = align_raster(image_path, buildings_path, out_dir, predictor, method=name, note=note,
                              tile_px=tile_px, blend_px=blend_px, layer=layer, show_progress=show_progress,
                              predict=tiler, inputs=read_paths, report=report)
        client.cancel(warm)  # done by now, or pinned to a worker that died
    store.remove()
    where = f"{n_workers} Dask workers" if not scheduler else f"Dask scheduler {scheduler}, {n_workers} workers"
    result.note = "; ".join(x for x in (result.note, f"{where}: {tiler.computed} tiles computed, "
                                        f"{tiler.reused} reused") if x)
    return result
