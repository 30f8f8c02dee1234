"""A map rendered by QGIS from the loaded run shows the aligned buildings in green where they are.

With ``$GEOALIGN_QGIS_SCREENSHOT`` set (``make qgis-screenshot``), the rendered PNG is also
written there: docs/images/qgis_align.png, the screenshot of qgis_plugin/README.md.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
from qgis.core import QgsRasterLayer

from qgis_env import AUSTIN_TIF, SIZE_PX, RecordingFeedback, render


def vertex_pixels(layer, settings) -> np.ndarray:
    """Pixel positions (col, row) of the outline vertices of ``layer`` inside the rendered map."""
    m2p = settings.mapToPixel()
    out = []
    for f in layer.getFeatures():
        for v in f.geometry().vertices():
            p = m2p.transform(v.x(), v.y())
            out.append((p.x(), p.y()))
    px = np.round(np.array(out)).astype(int)
    inside = (px >= 2).all(axis=1) & (px < SIZE_PX - 2).all(axis=1)
    return px[inside]


def share_near(image: np.ndarray, pixels: np.ndarray, match) -> float:
    """Share of ``pixels`` with a pixel satisfying ``match`` within 1 px."""
    h, w, _ = image.shape
    hits = 0
    for col, row in pixels:
        patch = image[max(row - 1, 0):min(row + 2, h), max(col - 1, 0):min(col + 2, w)].astype(int)
        hits += bool(match(patch).any())
    return hits / len(pixels)


def green(p):  # the aligned style, #00c800, with antialiasing
    return (p[..., 1] >= 150) & (p[..., 0] <= 90) & (p[..., 2] <= 90)


def red(p):  # the originals' style, #e41a1c
    return (p[..., 0] >= 180) & (p[..., 1] <= 90) & (p[..., 2] <= 90)


def test_rendered_map_shows_aligned_buildings_in_green(provider, project, misaligned_austin, tmp_path):
    import processing

    processing.run("geoalign:align", {"INPUT": str(AUSTIN_TIF), "BUILDINGS": str(misaligned_austin),
                                      "METHOD": 3, "OUTPUT": str(tmp_path / "run")},
                   feedback=RecordingFeedback())
    group = project.layerTreeRoot().findGroup("geoalign: austin_misaligned")
    layers = [node.layer() for node in group.findLayers() if node.isVisible()]
    by_name = {layer.name(): layer for layer in layers}
    imagery = QgsRasterLayer(str(AUSTIN_TIF), "imagery", "gdal")
    project.addMapLayer(imagery)
    extent, crs = imagery.extent(), imagery.crs()

    image, settings = render(layers + [imagery], extent, crs, tmp_path / "map.png")
    aligned_px = vertex_pixels(by_name["aligned"], settings)
    original_px = vertex_pixels(by_name["original"], settings)
    assert len(aligned_px) > 500
    on_green = share_near(image, aligned_px, green)
    on_red = share_near(image, original_px, red)
    # The same map without the building layers: the colours are the layers', not the imagery's.
    without, _ = render([layer for layer in layers if layer.name() not in ("aligned", "original")] + [imagery],
                        extent, crs, tmp_path / "without.png")
    print(f"green at aligned vertices {on_green:.3f}, red at original vertices {on_red:.3f}, without: "
          f"{share_near(without, aligned_px, green):.3f} {share_near(without, original_px, red):.3f}")
    assert on_green >= 0.95
    assert share_near(without, aligned_px, green) <= 0.05
    assert on_red >= 0.5  # dashed, and under the green where a building barely moved
    assert share_near(without, original_px, red) <= 0.05
    target = os.environ.get("GEOALIGN_QGIS_SCREENSHOT")
    if target:
        shutil.copyfile(tmp_path / "map.png", target)
