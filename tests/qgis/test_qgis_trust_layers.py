"""Trust-report layers (`geoalign align --report`: report/*.geojson, per-building confidence) load
with the shipped styles when a run folder holds them."""

from __future__ import annotations

import numpy as np
from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransformContext, QgsFeature, QgsField,
                       QgsGeometry, QgsGraduatedSymbolRenderer, QgsRectangle, QgsVectorFileWriter,
                       QgsVectorLayer)
from qgis.PyQt.QtCore import QVariant

from qgis_env import AUSTIN_BUILDINGS, render

WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")
# Austin crop in lon/lat, cut into 3×3 tiles: (expected_error_px, low_density) per tile, row-major.
WEST, SOUTH, EAST, NORTH = -97.78624, 30.22551, -97.78316, 30.22824
TILES = [(0.6, False), (1.5, False), (3.0, False), (5.3, False), (9.0, True), (2.2, False),
         (0.9, False), (12.0, True), (1.1, False)]


def write_geojson(path, fields: list[tuple[str, QVariant.Type]], rows) -> None:
    """Polygons with properties, as RFC 7946 GeoJSON (what the report writes)."""
    layer = QgsVectorLayer("Polygon?crs=EPSG:4326", path.stem, "memory")
    layer.dataProvider().addAttributes([QgsField(n, t) for n, t in fields])
    layer.updateFields()
    for geometry, values in rows:
        f = QgsFeature(layer.fields())
        f.setGeometry(geometry)
        f.setAttributes(list(values))
        layer.dataProvider().addFeature(f)
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GeoJSON"
    options.layerOptions = ["RFC7946=YES"]
    error = QgsVectorFileWriter.writeAsVectorFormatV3(layer, str(path), QgsCoordinateTransformContext(), options)
    assert error[0] == QgsVectorFileWriter.NoError, error


def tile_rect(i: int) -> QgsRectangle:
    row, col = divmod(i, 3)
    w, h = (EAST - WEST) / 3, (NORTH - SOUTH) / 3
    return QgsRectangle(WEST + col * w, NORTH - (row + 1) * h, WEST + (col + 1) * w, NORTH - row * h)


def report_run(out):
    """A run folder with the report's files and an aligned.gpkg carrying `confidence`."""
    (out / "report").mkdir(parents=True)
    fields = [("expected_error_px", QVariant.Double), ("low_density", QVariant.Bool),
              ("n_buildings", QVariant.Int)]
    tiles = [(QgsGeometry.fromRect(tile_rect(i)), (e, low, 5)) for i, (e, low) in enumerate(TILES)]
    write_geojson(out / "report" / "tiles.geojson", fields, tiles)
    write_geojson(out / "report" / "low_density.geojson", fields, [t for t in tiles if t[1][1]])
    ranked = sorted(tiles, key=lambda t: -t[1][0])[:3]
    write_geojson(out / "report" / "to_review.geojson", fields + [("review_rank", QVariant.Int)],
                  [(g, (*v, r)) for r, (g, v) in enumerate(ranked, start=1)])
    source = QgsVectorLayer(str(AUSTIN_BUILDINGS), "b", "ogr")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName, options.layerName = "GPKG", "aligned"
    assert QgsVectorFileWriter.writeAsVectorFormatV3(source, str(out / "aligned.gpkg"),
                                                     QgsCoordinateTransformContext(), options)[0] == 0
    aligned = QgsVectorLayer(f"{out / 'aligned.gpkg'}|layername=aligned", "a", "ogr")
    aligned.dataProvider().addAttributes([QgsField("confidence", QVariant.Double)])
    aligned.updateFields()
    idx = aligned.fields().indexOf("confidence")
    values = {f.id(): {idx: (f.id() % 10) / 10} for f in aligned.getFeatures()}
    assert aligned.dataProvider().changeAttributeValues(values)
    del aligned


def test_trust_layers_load_with_their_styles(provider, project, tmp_path):
    from geoalign_qgis.layers import RunOutputs, add_group, run_layers

    out = tmp_path / "run"
    report_run(out)
    group = add_group(project, "geoalign: trust", run_layers(RunOutputs(out), str(AUSTIN_BUILDINGS), "arrows"))
    layers = {node.layer().name(): node.layer() for node in group.findLayers()}
    assert list(layers) == ["to review (rank)", "low-density tiles", "confidence", "aligned", "original",
                            "expected error (px)"]  # no displacement.tif, no arrows in this folder

    tiles = layers["expected error (px)"]
    assert isinstance(tiles.renderer(), QgsGraduatedSymbolRenderer)
    assert tiles.renderer().classAttribute() == "expected_error_px"
    colours = [tiles.renderer().symbolForValue(v).color().name() for v in (0.6, 1.5, 3.0, 5.3, 12.0)]
    assert colours == ["#1a9641", "#a6d96a", "#ffffbf", "#fdae61", "#d7191c"]
    assert layers["low-density tiles"].featureCount() == 2
    assert layers["low-density tiles"].renderer().symbol().symbolLayer(0).layerType() == "LinePatternFill"
    review = layers["to review (rank)"]
    assert review.labelsEnabled() and review.labeling().settings().fieldName == "review_rank"
    assert sorted(f["review_rank"] for f in review.getFeatures()) == [1, 2, 3]
    confidence = layers["confidence"].renderer()
    assert confidence.classAttribute() == "confidence"
    assert [confidence.symbolForValue(v).symbolLayer(0).strokeColor().name() for v in (0.1, 0.9)] == [
        "#d7191c", "#1a9641"]

    # Rendered: the hatching covers the low-density tiles and no other tile.
    extent = QgsRectangle(WEST, SOUTH, EAST, NORTH)
    image, settings = render([layers["low-density tiles"]], extent, WGS84, tmp_path / "hatch.png")
    purple = (np.abs(image.astype(int) - [123, 50, 148]).sum(axis=2) < 120)
    m2p = settings.mapToPixel()

    def share(i: int) -> float:
        r = tile_rect(i)
        a, b = m2p.transform(r.xMinimum(), r.yMaximum()), m2p.transform(r.xMaximum(), r.yMinimum())
        return float(purple[int(a.y()) + 5:int(b.y()) - 5, int(a.x()) + 5:int(b.x()) - 5].mean())

    assert share(4) > 0.05 and share(7) > 0.05
    assert max(share(i) for i, (_, low) in enumerate(TILES) if not low) == 0.0
