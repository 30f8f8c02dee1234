"""What every geoalign algorithm shares: finding the executable and running it."""

from __future__ import annotations

from typing import Iterable

from qgis.core import (QgsCoordinateReferenceSystem, QgsProcessingAlgorithm, QgsProcessingException,
                       QgsProcessingFeedback, QgsRectangle)

from ..runner import CliInfo, cli_info, find_executable, run_geoalign


class GeoalignAlgorithm(QgsProcessingAlgorithm):
    """Base of the provider's algorithms; subclasses build the command line."""

    def createInstance(self):  # noqa: N802 - QGIS API
        return type(self)()

    def helpUrl(self) -> str:  # noqa: N802 - QGIS API
        return "https://github.com/geoalign/geoalign/tree/main/qgis_plugin"

    def geoalign(self) -> CliInfo:
        """The executable this run uses, checked (exists, runs, recent enough)."""
        return cli_info(find_executable())

    def run_cli(self, info: CliInfo, args: Iterable[str], feedback: QgsProcessingFeedback) -> None:
        run_geoalign(info.path, [str(a) for a in args], feedback)


def bbox_args(extent: QgsRectangle, crs: QgsCoordinateReferenceSystem) -> list[str]:
    """``--bbox W S E N --bbox-crs CRS`` of a Processing extent (canvas, layer or typed)."""
    if extent.isNull() or extent.isEmpty():
        raise QgsProcessingException("The extent is empty: draw it on the canvas or take a layer's extent.")
    if not crs.isValid():
        raise QgsProcessingException("The extent has no CRS: take it from the canvas or a layer.")
    crs_text = crs.authid() or crs.toWkt(QgsCoordinateReferenceSystem.WKT2_2019)
    values = (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum())
    return ["--bbox", *(repr(float(v)) for v in values), "--bbox-crs", crs_text]
