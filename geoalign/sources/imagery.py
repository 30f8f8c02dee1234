"""``--source`` strings for imagery → the module that fetches them.

* ``xyz:<xyzservices provider name or URL template>`` → :mod:`geoalign.sources.xyz`
* ``wms:<GetMap base URL>`` (with a layer) → :mod:`geoalign.sources.wms`
* ``file:<path>`` → :mod:`geoalign.sources.local`
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from geoalign.io.guard import refuse_output_over_input
from geoalign.sources import SourceError
from geoalign.sources.output import ImageryResult

IMAGERY_SOURCES = ("xyz:", "wms:", "file:")


def fetch_imagery(
    source: str,
    bbox: tuple[float, float, float, float],
    out_path: str | Path,
    *,
    bbox_crs="EPSG:4326",
    zoom: int | None = None,
    resolution_m: float | None = None,
    layer: str | None = None,
    dst_crs=None,
    progress: bool = False,
    timeout_s: float | None = None,
    retries: int | None = None,
    deadline_s: float | None = None,
) -> ImageryResult:
    """Fetch the imagery of ``bbox`` from ``source`` into a GeoTIFF at ``out_path``.

    ``timeout_s``, ``retries``, ``deadline_s``: see :func:`geoalign.sources.http.limits`
    (default: :mod:`geoalign.sources.settings`)."""
    from geoalign.sources.http import limits

    with limits(timeout_s=timeout_s, retries=retries, deadline_s=deadline_s), \
            no_folder_left_on_failure(out_path):
        return _fetch_imagery(source, bbox, out_path, bbox_crs=bbox_crs, zoom=zoom,
                              resolution_m=resolution_m, layer=layer, dst_crs=dst_crs,
                              progress=progress)


@contextlib.contextmanager
def no_folder_left_on_failure(out_path: str | Path) -> Iterator[None]:
    """Folders created for ``out_path`` (``-o new/dir/x.tif``) are removed again when the fetch
    fails, as long as they are empty: a failed fetch leaves nothing behind."""
    missing = [p for p in Path(out_path).absolute().parents if not p.exists()]
    try:
        yield
    except BaseException:
        for folder in missing:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()  # only an empty folder: never removes anything else
        raise


def _fetch_imagery(source, bbox, out_path, *, bbox_crs, zoom, resolution_m, layer, dst_crs,
                   progress) -> ImageryResult:
    if zoom is not None and resolution_m is not None:
        raise SourceError("give either --zoom or --resolution, not both.")
    kind, _, target = source.partition(":")
    if not target or f"{kind}:" not in IMAGERY_SOURCES:
        raise SourceError(
            f"--source {source!r} is not understood; use xyz:<provider or URL template>, "
            "wms:<GetMap URL> (with --layer) or file:<raster path>."
        )
    if kind == "file":
        refuse_output_over_input([out_path], [target])
    common = dict(bbox_crs=bbox_crs, zoom=zoom, resolution_m=resolution_m, dst_crs=dst_crs,
                  progress=progress)
    if kind == "xyz":
        from geoalign.sources.xyz import fetch_xyz

        return fetch_xyz(target, bbox, out_path, **common)
    if kind == "wms":
        from geoalign.sources.wms import fetch_wms

        return fetch_wms(target, bbox, out_path, layer=layer,
                         **{**common, "dst_crs": dst_crs or "EPSG:3857"})
    from geoalign.sources.local import fetch_local

    return fetch_local(target, bbox, out_path, **common)
