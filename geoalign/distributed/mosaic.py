"""Several rasters as one: a list file, a glob or a comma-separated list of GeoTIFF tiles becomes
a GDAL VRT mosaic (one virtual raster the aligner reads like any other); a single raster or VRT is
used as it is. The tiles must share CRS, pixel size, band count and data type."""

from __future__ import annotations

import glob
import math
from pathlib import Path
from xml.sax.saxutils import escape

import rasterio

from geoalign.errors import InputFileError
from geoalign.io.atomic import atomic_path

_GLOB_CHARS = set("*?[")


def raster_list(spec: str) -> list[Path]:
    """The rasters ``spec`` names: a ``.txt`` file (one path a line, relative to the file), a glob
    pattern, or paths separated by commas."""
    text_file = Path(spec)
    if text_file.suffix.lower() == ".txt" and text_file.is_file():
        lines = [ln.strip() for ln in text_file.read_text().splitlines()]
        paths = [(text_file.parent / ln) for ln in lines if ln and not ln.startswith("#")]
    elif _GLOB_CHARS & set(spec):
        paths = [Path(p) for p in sorted(glob.glob(spec))]
    else:
        paths = [Path(p) for p in spec.split(",") if p]
    if not paths:
        raise InputFileError(f"--rasters {spec}: names no raster.")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise InputFileError(f"--rasters: {missing[0]} does not exist ({len(missing)} missing).")
    return paths


def write_vrt(paths: list[Path], vrt_path: Path) -> Path:
    """A VRT mosaic of ``paths`` (same CRS, pixel size, bands and type) at ``vrt_path``."""
    infos = []
    for p in paths:
        try:
            with rasterio.open(p) as src:
                infos.append((p, src.crs, src.transform, src.width, src.height, src.count, src.dtypes[0],
                              src.colorinterp))
        except rasterio.errors.RasterioIOError as err:
            raise InputFileError(f"{p}: not a readable raster ({err}).") from None
    _, crs, t0, _, _, count, dtype, colorinterp = infos[0]
    for p, crs_i, t, _, _, count_i, dtype_i, _ in infos[1:]:
        if crs_i != crs or not math.isclose(t.a, t0.a, rel_tol=1e-9) or not math.isclose(t.e, t0.e, rel_tol=1e-9) \
                or count_i != count or dtype_i != dtype or t.b or t.d:
            raise InputFileError(f"{p}: CRS, pixel size, bands or type differ from {infos[0][0]}; "
                                 "a mosaic needs them equal (gdalwarp them to one grid first).")
    xmin = min(t.c for _, _, t, *_ in infos)
    ymax = max(t.f for _, _, t, *_ in infos)
    xmax = max(t.c + w * t.a for _, _, t, w, *_ in infos)
    ymin = min(t.f + h * t.e for _, _, t, _, h, *_ in infos)
    width = int(round((xmax - xmin) / t0.a))
    height = int(round((ymin - ymax) / t0.e))
    gdal_type = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32", "int32": "Int32",
                 "float32": "Float32", "float64": "Float64"}[dtype]
    lines = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
             f"  <SRS>{escape(crs.to_wkt())}</SRS>",
             f"  <GeoTransform>{xmin!r}, {t0.a!r}, 0.0, {ymax!r}, 0.0, {t0.e!r}</GeoTransform>"]
    for b in range(1, count + 1):
        lines.append(f'  <VRTRasterBand dataType="{gdal_type}" band="{b}">')
        lines.append(f"    <ColorInterp>{colorinterp[b - 1].name.capitalize()}</ColorInterp>")
        for p, _, t, w, h, *_ in infos:
            xoff = int(round((t.c - xmin) / t0.a))
            yoff = int(round((t.f - ymax) / t0.e))
            lines += ["    <SimpleSource>",
                      f'      <SourceFilename relativeToVRT="0">{escape(str(Path(p).resolve()))}</SourceFilename>',
                      f"      <SourceBand>{b}</SourceBand>",
                      f'      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>',
                      f'      <DstRect xOff="{xoff}" yOff="{yoff}" xSize="{w}" ySize="{h}"/>',
                      "    </SimpleSource>"]
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    with atomic_path(vrt_path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return vrt_path
