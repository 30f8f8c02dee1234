"""Tile-parallel alignment on a Dask cluster (optional extra ``geoalign[dask]``).

:func:`align_distributed` writes the same output set as :func:`geoalign.align.run.align_raster`,
with the tiles computed by Dask workers (:class:`DaskTiler`), finished windows recorded in the
output folder (:class:`TileStore`) and several rasters read as one VRT mosaic (:mod:`.mosaic`).
"""

from geoalign.distributed.run import align_distributed, align_rasters, mosaic_path
from geoalign.distributed.store import TileStore
from geoalign.distributed.tiler import DaskTiler
from geoalign.distributed.worker import PredictorSpec

__all__ = ["DaskTiler", "PredictorSpec", "TileStore", "align_distributed", "align_rasters", "mosaic_path"]
