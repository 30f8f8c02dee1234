"""The layers of one ``geoalign align`` run, styled with the QML files in ``styles/``, in a group.

Top to bottom: tiles to review (labelled by rank), low-density tiles (hatched), per-building
confidence (graduated outline), aligned buildings (solid green), the input buildings (dashed
red), displacement arrows, tiles graduated by expected error, and the displacement raster (off).
Trust layers appear only when the run wrote them (``geoalign align --report``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qgis.core import (QgsLayerTreeGroup, QgsMapLayer, QgsProcessingException, QgsProject, QgsRasterLayer,
                       QgsVectorLayer)

STYLES = Path(__file__).resolve().parent / "styles"
ARROWS_FILE = "displacement_arrows.gpkg"
REPORT_LAYERS = (("to_review", "to review (rank)", "to_review.qml"),
                 ("low_density", "low-density tiles", "low_density.qml"))


@dataclass
class RunOutputs:
    """Paths of one run's files (``out_dir`` as ``geoalign align -o`` wrote it)."""

    out_dir: Path

    def path(self, *parts: str) -> Path:
        return self.out_dir.joinpath(*parts)

    @property
    def aligned_uri(self) -> str:
        return f"{self.path('aligned.gpkg')}|layername=aligned"

    def report_file(self, name: str) -> Path | None:
        path = self.path("report", f"{name}.geojson")
        return path if path.is_file() else None


def styled_vector(uri: str, name: str, style: str) -> QgsVectorLayer:
    """An OGR layer with one of the shipped styles; one-line error when either fails."""
    layer = QgsVectorLayer(uri, name, "ogr")
    if not layer.isValid():
        raise QgsProcessingException(f"{uri}: QGIS cannot open this layer.")
    message, ok = layer.loadNamedStyle(str(STYLES / style))
    if not ok:
        raise QgsProcessingException(f"{STYLES / style}: style not loaded ({message}).")
    return layer


def styled_copy(layer: QgsVectorLayer, name: str, style: str) -> QgsVectorLayer:
    """A copy of a project layer (its data too, for memory layers) with a shipped style; the
    user's layer keeps its own style."""
    copy = layer.clone()
    copy.setName(name)
    message, ok = copy.loadNamedStyle(str(STYLES / style))
    if not ok:
        raise QgsProcessingException(f"{STYLES / style}: style not loaded ({message}).")
    return copy


def run_layers(run: RunOutputs, original: str | QgsVectorLayer, arrows_name: str) -> list[tuple[QgsMapLayer, bool]]:
    """The run's layers top to bottom, each with whether it starts visible; ``original`` is the
    input buildings' URI, or their project layer when it is not a file."""
    layers: list[tuple[QgsMapLayer, bool]] = []
    for key, name, style in REPORT_LAYERS:
        path = run.report_file(key)
        if path is not None and QgsVectorLayer(str(path), name, "ogr").featureCount() > 0:  # an empty
            layers.append((styled_vector(str(path), name, style), True))  # layer has no geometry type
    aligned = styled_vector(run.aligned_uri, "aligned", "aligned.qml")
    if aligned.fields().indexOf("confidence") >= 0:
        layers.append((styled_vector(run.aligned_uri, "confidence", "confidence.qml"), True))
    layers.append((aligned, True))
    if isinstance(original, QgsVectorLayer):
        layers.append((styled_copy(original, "original", "original.qml"), True))
    else:
        layers.append((styled_vector(original, "original", "original.qml"), True))
    arrows = run.path(ARROWS_FILE)
    if arrows.is_file():
        layers.append((styled_vector(f"{arrows}|layername=arrows", arrows_name, "arrows.qml"), True))
    tiles = run.report_file("tiles")
    if tiles is not None:
        layers.append((styled_vector(str(tiles), "expected error (px)", "tiles.qml"), True))
    displacement = QgsRasterLayer(str(run.path("displacement.tif")), "displacement (east, north)", "gdal")
    if displacement.isValid():
        layers.append((displacement, False))
    return layers


def add_group(project: QgsProject, name: str, layers: list[tuple[QgsMapLayer, bool]]) -> QgsLayerTreeGroup:
    """A new group ``name`` at the top of the project's layer tree holding ``layers`` in order."""
    group = project.layerTreeRoot().insertGroup(0, name)
    for layer, visible in layers:
        project.addMapLayer(layer, False)
        group.addLayer(layer).setItemVisibilityChecked(visible)
    return group
