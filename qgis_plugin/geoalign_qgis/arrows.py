"""Displacement arrows: a decimated point layer made from ``displacement.tif``.

A 1000×1000 field is a million vectors; the map needs a few hundred. The field is read once at
a coarse grid with GDAL's averaging (QGIS's own GDAL, no extra dependency), and each cell becomes
a point with the mean move ``dx``/``dy`` (band 1 east, band 2 north, in the raster CRS's units),
its ``length`` and ``azimuth_deg`` (clockwise from north, the direction buildings moved). The
style draws each arrow ``draw_scale`` times its true length so that the largest moves (95th
percentile) span about one cell; the layer name states the factor.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from osgeo import gdal
from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransformContext, QgsFeature, QgsField,
                       QgsFields, QgsGeometry, QgsPointXY, QgsProcessingException, QgsVectorFileWriter,
                       QgsWkbTypes)
from qgis.PyQt.QtCore import QVariant

#: Arrows along the longer side of the raster.
ARROWS_PER_SIDE = 20
LAYER_NAME = "arrows"


def _nice(value: float) -> float:
    """1, 2 or 5 times a power of ten, at most ``value`` (a readable exaggeration factor)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return max(m * power for m in (1, 2, 5) if m * power <= value)


def read_decimated(field_tif: str | Path, per_side: int = ARROWS_PER_SIDE):
    """Means of (dx, dy) over square cells of ``step`` px (at most ``per_side`` per side), and the
    cell centres; cells are whole (GDAL's average over an integer factor is the plain block mean),
    so a strip narrower than one cell at the right and bottom edges has no arrow."""
    ds = gdal.Open(str(field_tif))
    if ds is None or ds.RasterCount < 2:
        raise QgsProcessingException(f"{field_tif}: not a 2-band displacement raster.")
    width, height = ds.RasterXSize, ds.RasterYSize
    step = max(1, math.ceil(max(width, height) / per_side))
    nx, ny = max(1, width // step), max(1, height // step)
    win_x, win_y = min(width, nx * step), min(height, ny * step)
    bands = []
    for b in (1, 2):
        band = ds.GetRasterBand(b)
        values = band.ReadAsArray(0, 0, win_x, win_y, buf_xsize=nx, buf_ysize=ny,
                                  resample_alg=gdal.GRIORA_Average).astype(np.float64)
        nodata = band.GetNoDataValue()
        if nodata is not None:
            values[values == nodata] = np.nan
        bands.append(values)
    gt = ds.GetGeoTransform()
    cols = (np.arange(nx) + 0.5) * win_x / nx
    rows = (np.arange(ny) + 0.5) * win_y / ny
    cc, rr = np.meshgrid(cols, rows)
    x = gt[0] + cc * gt[1] + rr * gt[2]
    y = gt[3] + cc * gt[4] + rr * gt[5]
    cell = max(abs(gt[1]) * win_x / nx, abs(gt[5]) * win_y / ny)
    wkt = ds.GetProjection()
    ds = None
    return bands[0], bands[1], x, y, cell, wkt


def write_arrows(field_tif: str | Path, out_gpkg: str | Path, per_side: int = ARROWS_PER_SIDE) -> tuple[int, float]:
    """Write the arrow points to ``out_gpkg`` (layer ``arrows``); returns (count, draw_scale).

    Written beside and renamed into place, so a reader never sees half a layer.
    """
    dx, dy, x, y, cell, wkt = read_decimated(field_tif, per_side)
    length = np.hypot(dx, dy)
    valid = np.isfinite(length)
    p95 = float(np.percentile(length[valid], 95)) if valid.any() else 0.0
    draw_scale = _nice(cell / p95) if p95 > 0 else 1.0
    fields = QgsFields()
    for name in ("dx", "dy", "length", "azimuth_deg", "draw_scale"):
        fields.append(QgsField(name, QVariant.Double))
    out_gpkg = Path(out_gpkg)
    tmp = out_gpkg.with_name(f".{out_gpkg.stem}.part.gpkg")
    if tmp.exists():
        tmp.unlink()
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = LAYER_NAME
    writer = QgsVectorFileWriter.create(str(tmp), fields, QgsWkbTypes.Point,
                                        QgsCoordinateReferenceSystem.fromWkt(wkt),
                                        QgsCoordinateTransformContext(), options)
    if writer.hasError() != QgsVectorFileWriter.NoError:
        raise QgsProcessingException(f"{out_gpkg}: cannot write the arrows ({writer.errorMessage()}).")
    count = 0
    for i, j in zip(*np.nonzero(valid)):
        f = QgsFeature(fields)
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(float(x[i, j]), float(y[i, j]))))
        azimuth = math.degrees(math.atan2(dx[i, j], dy[i, j])) % 360.0
        f.setAttributes([float(dx[i, j]), float(dy[i, j]), float(length[i, j]), azimuth, draw_scale])
        writer.addFeature(f)
        count += 1
    del writer  # closes the file
    os.replace(tmp, out_gpkg)
    return count, draw_scale
