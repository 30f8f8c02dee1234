"""``file:`` imagery: crop (and optionally resample or reproject) a local raster to a bbox.

Without ``resolution_m``, ``zoom`` or ``dst_crs`` the output is an exact crop: the bbox snapped
outward to whole source pixels and intersected with the raster, pixel values and data type
untouched. Otherwise it is warped onto a new grid. Either way it is done block by block.
"""

from __future__ import annotations

from pathlib import Path

from pyproj import CRS

from geoalign.errors import CRSError
from geoalign.grid import pixel_size_m, transform_bbox
from geoalign.io.raster import open_dataset
from geoalign.sources import SourceError
from geoalign.sources.output import (
    ImageryResult,
    crs_label,
    pixel_size_for_resolution,
    require_overlap,
    snapped_grid,
    write_from_dataset,
)
from geoalign.sources.xyz import ground_resolution_m


def fetch_local(
    path: str | Path,
    bbox: tuple[float, float, float, float],
    out_path: str | Path,
    *,
    bbox_crs="EPSG:4326",
    resolution_m: float | None = None,
    zoom: int | None = None,
    dst_crs=None,
    progress: bool = False,
) -> ImageryResult:
    """Write the part of the raster at ``path`` inside ``bbox`` to ``out_path``."""
    out_path = Path(out_path)
    if resolution_m is not None and resolution_m <= 0:
        raise SourceError(f"--resolution must be positive (got {resolution_m} m).")
    with open_dataset(path) as src:
        if src.crs is None:
            raise CRSError(
                f"{path}: the raster has no CRS (coordinate reference system); georeference it "
                "first, e.g. `gdal_edit.py -a_srs EPSG:xxxx`."
            )
        src_crs = CRS.from_user_input(src.crs)
        raster_bounds = tuple(src.bounds)
        inside = require_overlap(transform_bbox(bbox, bbox_crs, src_crs), raster_bounds,
                                 what=f"the raster {path}", crs=src_crs)
        lat_deg = _centre_lat(inside, src_crs)
        if resolution_m is None and zoom is None and dst_crs is None:
            px, py = abs(src.transform.a), abs(src.transform.e)
            grid = snapped_grid(inside, src_crs, (px, py),
                                origin=(src.transform.c, src.transform.f))
            out_res_m = pixel_size_m(src_crs, src.transform, raster_bounds)
        else:
            crs = CRS.from_user_input(dst_crs) if dst_crs is not None else src_crs
            if resolution_m is not None:
                out_res_m = resolution_m
            elif zoom is not None:
                out_res_m = ground_resolution_m(zoom, lat_deg)
            else:
                out_res_m = pixel_size_m(src_crs, src.transform, raster_bounds)
            size = pixel_size_for_resolution(crs, out_res_m, lat_deg)
            # straight from the user's box (a box through two CRSs grows at each step)
            bounds = require_overlap(transform_bbox(bbox, bbox_crs, crs),
                                     transform_bbox(raster_bounds, src_crs, crs),
                                     what=f"the raster {path}", crs=crs)
            grid = snapped_grid(bounds, crs, size)
        write_from_dataset(src, grid, out_path, progress=progress, desc="writing")
    return ImageryResult(path=out_path, source=f"file:{path}", crs=crs_label(grid.crs),
                         width=grid.width, height=grid.height, resolution_m=out_res_m,
                         zoom=zoom if resolution_m is None else None)


def _centre_lat(bounds, crs: CRS) -> float:
    w, s, e, n = transform_bbox(bounds, crs, "EPSG:4326")
    return (s + n) / 2.0
