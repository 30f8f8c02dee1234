"""The plugin as QGIS loads it: from its zip, through qgis.utils; the executable checks."""

from __future__ import annotations

import os
import stat

import pytest
from qgis.core import QgsApplication, QgsProcessingException

from qgis_env import GEOALIGN, start_plugin

ALGORITHMS = ["geoalign:align", "geoalign:fetch_buildings", "geoalign:fetch_imagery"]


def test_plugin_loads_registers_its_provider_and_unloads(plugin_dir):
    import qgis.utils

    registry = QgsApplication.processingRegistry()
    if registry.providerById("geoalign") is not None:
        assert qgis.utils.unloadPlugin("geoalign_qgis")
    assert registry.providerById("geoalign") is None
    assert "geoalign_qgis" in qgis.utils.available_plugins
    assert qgis.utils.pluginMetadata("geoalign_qgis", "hasProcessingProvider") == "yes"
    assert qgis.utils.pluginMetadata("geoalign_qgis", "qgisMinimumVersion") == "3.22"
    start_plugin()
    provider = registry.providerById("geoalign")
    assert provider is not None and provider.name() == "geoalign"
    assert sorted(a.id() for a in provider.algorithms()) == ALGORITHMS
    align = registry.algorithmById("geoalign:align")
    assert align.displayName() == "Align buildings to raster"
    names = [p.name() for p in align.parameterDefinitions()]
    assert {"INPUT", "BUILDINGS", "METHOD", "MODEL", "TRUST_REPORT", "TRUST_GATE", "TRUST_GATE_AUTO",
            "OUTPUT"} <= set(names)
    assert registry.algorithmById("geoalign:fetch_buildings").displayName() == "Fetch OSM buildings"
    assert registry.algorithmById("geoalign:fetch_imagery").displayName() == "Fetch imagery"
    from processing.core.ProcessingConfig import ProcessingConfig

    assert "GEOALIGN_EXECUTABLE" in ProcessingConfig.settings  # Settings > Processing > Providers
    assert qgis.utils.unloadPlugin("geoalign_qgis")
    assert registry.providerById("geoalign") is None
    assert "GEOALIGN_EXECUTABLE" not in ProcessingConfig.settings
    start_plugin()  # leave it loaded for the other tests
    assert registry.providerById("geoalign") is not None


def test_missing_executable_says_how_to_install(provider, monkeypatch, tmp_path):
    import processing
    from processing.core.ProcessingConfig import ProcessingConfig

    ProcessingConfig.setSettingValue("GEOALIGN_EXECUTABLE", "")
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing called geoalign there
    with pytest.raises(QgsProcessingException) as err:
        processing.run("geoalign:fetch_buildings", {"EXTENT": "0,1,0,1 [EPSG:4326]", "SOURCE": "osm",
                                                    "OUTPUT": str(tmp_path / "b.gpkg")})
    message = str(err.value)
    assert "geoalign executable not found on PATH" in message and "pip install geoalign" in message
    assert "\n" not in message
    # The executable found on PATH is used when the setting is empty.
    os.symlink(GEOALIGN, tmp_path / "geoalign")
    from geoalign_qgis.runner import find_executable

    assert find_executable() == str(tmp_path / "geoalign")


def test_too_old_executable_is_refused_in_one_line(provider, tmp_path):
    """An executable answering like geoalign 0.0.9 (an older release) is refused before any run."""
    import processing
    from processing.core.ProcessingConfig import ProcessingConfig

    old = tmp_path / "geoalign"
    old.write_text("#!/bin/sh\necho 'geoalign, version 0.0.9'\n")
    old.chmod(old.stat().st_mode | stat.S_IXUSR)
    ProcessingConfig.setSettingValue("GEOALIGN_EXECUTABLE", str(old))
    with pytest.raises(QgsProcessingException) as err:
        processing.run("geoalign:fetch_buildings", {"EXTENT": "0,1,0,1 [EPSG:4326]", "SOURCE": "osm",
                                                    "OUTPUT": str(tmp_path / "b.gpkg")})
    assert str(err.value) == (f"geoalign 0.0.9 at {old} is too old for this plugin (needs >= 0.1.0): "
                              "update it with `pip install -U geoalign`.")
    assert not (tmp_path / "b.gpkg").exists()


def test_child_environment_drops_qgis_proj_and_gdal_data(provider, monkeypatch):
    from geoalign_qgis.runner import child_environment

    for name in ("PROJ_LIB", "PROJ_DATA", "GDAL_DATA", "PYTHONHOME", "PYTHONPATH"):
        monkeypatch.setenv(name, "/opt/qgis-installer/share")
    env = child_environment()
    assert not {"PROJ_LIB", "PROJ_DATA", "GDAL_DATA", "PYTHONHOME", "PYTHONPATH"} & set(env)
    assert env["PATH"] == os.environ["PATH"] and env["PYTHONUNBUFFERED"] == "1"
