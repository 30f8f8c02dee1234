"""The plugin object QGIS loads: it only registers the Processing provider."""

from __future__ import annotations

from qgis.core import QgsApplication

from .provider import GeoalignProvider


class GeoalignPlugin:
    """Processing-only plugin: the algorithms appear in the toolbox under "geoalign"."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: GeoalignProvider | None = None

    def initProcessing(self) -> None:  # noqa: N802 - QGIS plugin API
        if self.provider is None:
            self.provider = GeoalignProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802 - QGIS plugin API
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
