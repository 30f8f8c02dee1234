"""Tile-parallel alignment on a Dask cluster (optional extra ``geoalign[dask]``).

:func:`align_distributed` writes the same output set as :func:`geoalign.align.run.align_raster`,
with the tiles computed by Dask workers (:class:`DaskTiler`), finished windows recorded in the
output folder (:class:`TileStore`) and several rasters read as one VRT mosaic (:mod:`.mosaic`).
"""

from geoalign.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(("align_distributed", "align_rasters", "mosaic_path"), "geoalign.distributed.run"),
    "TileStore": "geoalign.distributed.store", "DaskTiler": "geoalign.distributed.tiler",
    "PredictorSpec": "geoalign.distributed.worker",
})

__all__ = ["DaskTiler", "PredictorSpec", "TileStore", "align_distributed", "align_rasters", "mosaic_path"]
