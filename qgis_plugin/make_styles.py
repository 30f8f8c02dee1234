"""Write the QML styles shipped in geoalign_qgis/styles/ with QGIS's own API (reproducible).

Run with QGIS's Python: ``QT_QPA_PLATFORM=offscreen python3 qgis_plugin/make_styles.py``.
Colours: aligned #00c800 solid, originals #e41a1c dashed, arrows #ffd700; expected error in px
(classes 0-1-2-4-8-inf, green to red); confidence 0-0.25-0.5-0.75-1 (red to green).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from qgis.core import (QgsApplication, QgsArrowSymbolLayer, QgsFillSymbol, QgsGeometryGeneratorSymbolLayer,
                       QgsGraduatedSymbolRenderer, QgsLineSymbol, QgsLinePatternFillSymbolLayer,
                       QgsMarkerSymbol, QgsPalLayerSettings, QgsRendererRange, QgsSimpleFillSymbolLayer,
                       QgsSingleSymbolRenderer, QgsSymbol, QgsTextBufferSettings, QgsTextFormat,
                       QgsUnitTypes, QgsVectorLayer, QgsVectorLayerSimpleLabeling)
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor

STYLES = Path(__file__).resolve().parent / "geoalign_qgis" / "styles"
GREEN, RED, ARROW = QColor("#00c800"), QColor("#e41a1c"), QColor("#ffd700")
ERROR_CLASSES_PX = ((0, 1, "#1a9641"), (1, 2, "#a6d96a"), (2, 4, "#ffffbf"), (4, 8, "#fdae61"),
                    (8, 1e9, "#d7191c"))
CONFIDENCE_CLASSES = ((0, 0.25, "#d7191c"), (0.25, 0.5, "#fdae61"), (0.5, 0.75, "#a6d96a"),
                      (0.75, 1.0001, "#1a9641"))


def outline(color: QColor, width_mm: float, style=Qt.SolidLine) -> QgsFillSymbol:
    return symbol_of(QgsFillSymbol(), QgsSimpleFillSymbolLayer(QColor(0, 0, 0, 0), Qt.NoBrush, color, style, width_mm))


def symbol_of(symbol: QgsSymbol, *layers) -> QgsSymbol:
    """``symbol`` holding ``layers`` (the list constructors of 3.22 crash when saving the style)."""
    symbol.changeSymbolLayer(0, layers[0])
    for layer in layers[1:]:
        symbol.appendSymbolLayer(layer)
    return symbol


def graduated(field: str, classes, symbol_for) -> QgsGraduatedSymbolRenderer:
    ranges = [QgsRendererRange(lo, hi, symbol_for(QColor(c)), f"{lo:g} - {hi:g}" if hi < 1e8 else f"> {lo:g}")
              for lo, hi, c in classes]
    renderer = QgsGraduatedSymbolRenderer(field, ranges)
    return renderer


def arrows_symbol() -> QgsMarkerSymbol:
    """A line from each point to point + draw_scale·(dx, dy), drawn as an arrow."""
    arrow = QgsArrowSymbolLayer()
    arrow.setColor(ARROW)
    arrow.setIsCurved(False)
    arrow.setIsRepeated(False)
    arrow.setArrowWidth(0.35)
    arrow.setArrowStartWidth(0.35)
    arrow.setHeadLength(1.0)
    arrow.setHeadThickness(0.7)
    arrow.subSymbol().symbolLayer(0).setStrokeColor(QColor("#303030"))
    arrow.subSymbol().symbolLayer(0).setStrokeWidth(0.15)
    arrow.subSymbol().symbolLayer(0).setColor(ARROW)
    line = symbol_of(QgsLineSymbol(), arrow)
    generator = QgsGeometryGeneratorSymbolLayer.create({
        "geometryModifier": 'make_line($geometry, translate($geometry, "dx" * "draw_scale", "dy" * "draw_scale"))',
        "SymbolType": "Line",
    })
    generator.setSubSymbol(line)
    return symbol_of(QgsMarkerSymbol(), generator)


def to_review_labels() -> QgsVectorLayerSimpleLabeling:
    settings = QgsPalLayerSettings()
    settings.fieldName = "review_rank"
    settings.enabled = True
    settings.placement = QgsPalLayerSettings.OverPoint
    fmt = QgsTextFormat()
    fmt.setSize(12)
    fmt.setSizeUnit(QgsUnitTypes.RenderPoints)
    fmt.setColor(QColor("#000000"))
    buffer = QgsTextBufferSettings()
    buffer.setEnabled(True)
    buffer.setSize(1.2)
    buffer.setColor(QColor("#ffffff"))
    fmt.setBuffer(buffer)
    settings.setFormat(fmt)
    return QgsVectorLayerSimpleLabeling(settings)


def save(geometry: str, fields: str, name: str, renderer, labeling=None, opacity: float = 1.0) -> None:
    layer = QgsVectorLayer(f"{geometry}?crs=EPSG:4326&{fields}", name, "memory")
    layer.setRenderer(renderer)
    if labeling is not None:
        layer.setLabeling(labeling)
        layer.setLabelsEnabled(True)
    layer.setOpacity(opacity)
    message, ok = layer.saveNamedStyle(str(STYLES / f"{name}.qml"))
    if not ok:
        sys.exit(f"{name}: {message}")


def main() -> None:
    STYLES.mkdir(parents=True, exist_ok=True)
    save("Polygon", "field=id:integer", "aligned", QgsSingleSymbolRenderer(outline(GREEN, 0.6)))
    save("Polygon", "field=id:integer", "original", QgsSingleSymbolRenderer(outline(RED, 0.5, Qt.DashLine)))
    save("Polygon", "field=confidence:double", "confidence",
         graduated("confidence", CONFIDENCE_CLASSES, lambda c: outline(c, 0.8)))
    save("Point", "field=dx:double&field=dy:double&field=draw_scale:double", "arrows",
         QgsSingleSymbolRenderer(arrows_symbol()))
    save("Polygon", "field=expected_error_px:double", "tiles",
         graduated("expected_error_px", ERROR_CLASSES_PX,
                   lambda c: symbol_of(QgsFillSymbol(), QgsSimpleFillSymbolLayer(
                       c, Qt.SolidPattern, QColor("#404040"), Qt.SolidLine, 0.2))),
         opacity=0.4)
    hatch = QgsLinePatternFillSymbolLayer()
    hatch.setLineAngle(45)
    hatch.setDistance(2.0)
    hatch.setLineWidth(0.4)
    hatch.setColor(QColor("#7b3294"))
    save("Polygon", "field=low_density:boolean", "low_density",
         QgsSingleSymbolRenderer(symbol_of(QgsFillSymbol(), hatch, QgsSimpleFillSymbolLayer(
             QColor(0, 0, 0, 0), Qt.NoBrush, QColor("#7b3294"), Qt.SolidLine, 0.4))))
    save("Polygon", "field=review_rank:integer", "to_review",
         QgsSingleSymbolRenderer(outline(QColor("#ff7f00"), 0.8)), labeling=to_review_labels())


if __name__ == "__main__":
    app = QgsApplication([], False, tempfile.mkdtemp(prefix="qgis-profile-"))
    app.initQgis()
    main()
    app.exitQgis()
