"""The Processing provider "geoalign": its algorithms and the executable-path setting."""

from __future__ import annotations

from qgis.core import QgsApplication, QgsProcessingProvider

from .algorithms.align import AlignAlgorithm
from .algorithms.fetch import FetchBuildingsAlgorithm, FetchImageryAlgorithm
from .runner import EXECUTABLE_SETTING


class GeoalignProvider(QgsProcessingProvider):
    """Algorithms that run the ``geoalign`` command; its path is a provider setting."""

    def id(self) -> str:
        return "geoalign"

    def name(self) -> str:
        return "geoalign"

    def longName(self) -> str:  # noqa: N802 - QGIS API
        return "geoalign: align buildings to imagery"

    def icon(self):
        return QgsApplication.getThemeIcon("/processingAlgorithm.svg")

    def load(self) -> bool:
        """Registers the setting shown in Settings ▸ Options ▸ Processing ▸ Providers ▸ geoalign."""
        try:
            from processing.core.ProcessingConfig import ProcessingConfig, Setting
        except ImportError:  # Processing plugin disabled: the setting is still read from QgsSettings
            pass
        else:
            ProcessingConfig.addSetting(Setting(
                self.name(), EXECUTABLE_SETTING,
                "geoalign executable (empty: `geoalign` found on PATH)", "", valuetype=Setting.FILE))
            ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        try:
            from processing.core.ProcessingConfig import ProcessingConfig
        except ImportError:
            return
        if EXECUTABLE_SETTING in ProcessingConfig.settings:
            ProcessingConfig.removeSetting(EXECUTABLE_SETTING)

    def loadAlgorithms(self) -> None:  # noqa: N802 - QGIS API
        for alg in (AlignAlgorithm(), FetchBuildingsAlgorithm(), FetchImageryAlgorithm()):
            self.addAlgorithm(alg)

    def supportedOutputVectorLayerExtensions(self) -> list[str]:  # noqa: N802 - QGIS API
        return ["gpkg", "geojson"]

    def supportedOutputRasterLayerExtensions(self) -> list[str]:  # noqa: N802 - QGIS API
        return ["tif"]
