"""geoalign for QGIS: a Processing provider that runs the ``geoalign`` command (never imports it)."""


def classFactory(iface):  # noqa: N802 - QGIS plugin API
    """QGIS calls this to create the plugin; ``iface`` is None in headless runs."""
    from .plugin import GeoalignPlugin

    return GeoalignPlugin(iface)
