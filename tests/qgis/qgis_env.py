"""Fixtures: Debian's QGIS headless, the plugin installed from its zip, the real geoalign executable.

* ``qgis_app``: one QgsApplication for the session, with a throw-away profile folder (the plugin
  setting and QGIS's own settings never reach the user's profile) and Processing initialized;
* ``provider``: the plugin unpacked from the zip that ``make qgis-plugin`` builds, loaded through
  ``qgis.utils`` like QGIS's plugin manager does, pointed at ``$GEOALIGN_EXECUTABLE``;
* ``project``: QgsProject.instance(), emptied before and after each test;
* ``RecordingFeedback``: a QgsProcessingFeedback that keeps what the algorithm told it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
GEOALIGN = os.environ.get("GEOALIGN_EXECUTABLE") or str(REPO / ".venv" / "bin" / "geoalign")
AUSTIN_TIF = REPO / "sample_data" / "austin_inria" / "austin1_crop_nw_rgb.tif"
AUSTIN_BUILDINGS = REPO / "sample_data" / "austin_inria" / "austin1_crop_nw_buildings.geojson"
KAMPALA_TIF = REPO / "sample_data" / "kampala_oam_osm" / "kampala_z21_suburb_rgb.tif"
KAMPALA_BUILDINGS = REPO / "sample_data" / "kampala_oam_osm" / "labels_osm.geojson"
QGIS_PLUGINS = "/usr/share/qgis/python/plugins"
SIZE_PX = 640  # rendered maps are SIZE_PX × SIZE_PX

_profile = Path(tempfile.mkdtemp(prefix="geoalign-qgis-profile-"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["GDAL_PAM_ENABLED"] = "NO"  # rendering the sample rasters writes no .aux.xml beside them
if not os.environ.get("XDG_RUNTIME_DIR"):
    (_profile / "xdg").mkdir(mode=0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(_profile / "xdg")

from qgis.core import (QgsApplication, QgsMapRendererParallelJob, QgsMapSettings,  # noqa: E402
                       QgsProcessingFeedback, QgsProject)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402

_app = QgsApplication([], False, str(_profile))
_app.initQgis()
if QGIS_PLUGINS not in sys.path:
    sys.path.append(QGIS_PLUGINS)


@pytest.fixture(scope="session")
def qgis_app():
    from processing.core.Processing import Processing

    Processing.initialize()
    yield _app
    QgsProject.instance().clear()


@pytest.fixture(scope="session")
def plugin_dir(qgis_app, tmp_path_factory) -> Path:
    """The plugin as a user installs it: the built zip unpacked into the profile's plugin folder."""
    sys.path.insert(0, str(REPO / "qgis_plugin"))
    from build_zip import build

    archive = build(tmp_path_factory.mktemp("dist"))
    plugins = _profile / "python" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        assert {n.split("/")[0] for n in zf.namelist()} == {"geoalign_qgis"}  # one top-level folder
        zf.extractall(plugins)
    import qgis.utils

    qgis.utils.plugin_paths.insert(0, str(plugins))
    sys.path.insert(0, str(plugins))
    qgis.utils.updateAvailablePlugins()
    return plugins / "geoalign_qgis"


def start_plugin() -> None:
    import qgis.utils

    assert qgis.utils.loadPlugin("geoalign_qgis")
    assert qgis.utils.startProcessingPlugin("geoalign_qgis")


@pytest.fixture
def provider(plugin_dir):
    """The geoalign provider, registered through qgis.utils, using the .venv's geoalign."""
    from processing.core.ProcessingConfig import ProcessingConfig

    registry = QgsApplication.processingRegistry()
    if registry.providerById("geoalign") is None:
        start_plugin()
    ProcessingConfig.setSettingValue("GEOALIGN_EXECUTABLE", GEOALIGN)
    yield registry.providerById("geoalign")
    ProcessingConfig.setSettingValue("GEOALIGN_EXECUTABLE", GEOALIGN)


@pytest.fixture
def project(qgis_app):
    QgsProject.instance().clear()
    yield QgsProject.instance()
    QgsProject.instance().clear()


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps progress values, texts and messages; cancels itself at ``cancel_at_percent``."""

    def __init__(self, cancel_at_percent: float | None = None) -> None:
        super().__init__()
        self.percents: list[float] = []
        self.texts: list[str] = []
        self.infos: list[str] = []
        self.warnings: list[str] = []
        self.debug: list[str] = []
        self.commands: list[str] = []
        self.errors: list[tuple[str, bool]] = []  # (message, fatal)
        self.cancel_at_percent = cancel_at_percent
        self.cancelled_at: float | None = None  # time.monotonic() of the cancel request

    def setProgress(self, value: float) -> None:  # noqa: N802 - QGIS API
        self.percents.append(value)
        super().setProgress(value)
        if self.cancel_at_percent is not None and value >= self.cancel_at_percent and self.cancelled_at is None:
            self.cancelled_at = time.monotonic()
            self.cancel()

    def setProgressText(self, text: str) -> None:  # noqa: N802 - QGIS API
        self.texts.append(text)

    def pushInfo(self, info: str) -> None:  # noqa: N802 - QGIS API
        self.infos.append(info)

    def pushWarning(self, warning: str) -> None:  # noqa: N802 - QGIS API
        self.warnings.append(warning)

    def pushDebugInfo(self, info: str) -> None:  # noqa: N802 - QGIS API
        self.debug.append(info)

    def pushCommandInfo(self, info: str) -> None:  # noqa: N802 - QGIS API
        self.commands.append(info)

    def pushConsoleInfo(self, info: str) -> None:  # noqa: N802 - QGIS API
        self.infos.append(info)

    def reportError(self, error: str, fatalError: bool = False) -> None:  # noqa: N802,N803 - QGIS API
        self.errors.append((error, fatalError))

    @property
    def pid(self) -> int:
        return next(int(d.split()[-1]) for d in self.debug if d.startswith("geoalign pid "))


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The geoalign executable run directly (what the plugin's results are compared with)."""
    return subprocess.run([GEOALIGN, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="session")
def misaligned_austin(tmp_path_factory) -> Path:
    """Austin's buildings moved by a smooth field of up to 16 px (4.8 m): what align must undo."""
    out = tmp_path_factory.mktemp("misaligned") / "austin_misaligned.gpkg"
    done = cli("-q", "misalign", str(AUSTIN_TIF), str(AUSTIN_BUILDINGS), "-o", str(out),
               "--max-disp", "16", "--seed", "3")
    assert done.returncode == 0, done.stderr
    return out


def render(layers, extent, crs, path) -> tuple[np.ndarray, QgsMapSettings]:
    """Render ``layers`` (top first) to a PNG at ``path``: the image as (h, w, 3) uint8, and the
    map settings (their mapToPixel places map coordinates on it)."""
    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(crs)
    settings.setExtent(extent)
    settings.setOutputSize(QSize(SIZE_PX, SIZE_PX))
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    assert image.save(str(path), "PNG")
    image = image.convertToFormat(image.Format_RGB888)
    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    rows = np.frombuffer(ptr, np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy(), settings
