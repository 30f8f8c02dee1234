"""'Align buildings to raster' through processing.run with the real geoalign executable."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransformContext, QgsFeatureRequest,
                       QgsFields, QgsProcessingException, QgsRasterLayer, QgsVectorFileWriter, QgsVectorLayer,
                       QgsWkbTypes)
from qgis.PyQt.QtCore import Qt

from qgis_env import AUSTIN_TIF, KAMPALA_BUILDINGS, KAMPALA_TIF, RecordingFeedback, cli

LOCAL = 3  # index of "local" in the METHOD enum


def align(params: dict, feedback: RecordingFeedback | None = None) -> dict:
    import processing

    return processing.run("geoalign:align", params, feedback=feedback or RecordingFeedback())


def group_layers(project, name: str) -> list:
    group = project.layerTreeRoot().findGroup(name)
    assert group is not None, [g.name() for g in project.layerTreeRoot().findGroups()]
    return [(node.layer(), node.isVisible()) for node in group.findLayers()]


def outline_of(layer) -> tuple[str, Qt.PenStyle, Qt.BrushStyle]:
    sl = layer.renderer().symbol().symbolLayer(0)
    return sl.strokeColor().name(), sl.strokeStyle(), sl.brushStyle()


def test_align_local_loads_a_styled_group(provider, project, misaligned_austin, tmp_path):
    out = tmp_path / "run"
    feedback = RecordingFeedback()
    results = align({"INPUT": str(AUSTIN_TIF), "BUILDINGS": str(misaligned_austin), "METHOD": LOCAL,
                     "OUTPUT": str(out)}, feedback)
    assert feedback.commands[0].endswith(f"--progress json align {AUSTIN_TIF} {misaligned_austin} -o {out} "
                                         "--search-px 40 --method local")
    assert {p.name for p in out.iterdir()} >= {"aligned.gpkg", "aligned.geojson", "displacement.tif",
                                               "overlay.png", "run.json", "displacement_arrows.gpkg"}
    assert set(json.loads((out / "run.json").read_text())["files"]) == {
        "displacement.tif", "aligned.geojson", "aligned.gpkg", "overlay.png"}
    assert feedback.percents[-1] == 100.0 and "align: 1/1 tile" in feedback.texts
    assert any(line.startswith("aligned 57 features") for line in feedback.infos)
    assert results["GROUP"] == "geoalign: austin_misaligned"

    layers = group_layers(project, "geoalign: austin_misaligned")
    names = [layer.name() for layer, _ in layers]
    assert names[:2] == ["aligned", "original"] and names[3] == "displacement (east, north)"
    assert names[2].startswith("displacement arrows (x")
    aligned, original, arrows, field = (layer for layer, _ in layers)
    assert [visible for _, visible in layers] == [True, True, True, False]
    assert aligned.featureCount() == original.featureCount() == 57
    assert outline_of(aligned) == ("#00c800", Qt.SolidLine, Qt.NoBrush)
    assert outline_of(original) == ("#e41a1c", Qt.DashLine, Qt.NoBrush)
    assert arrows.renderer().symbol().symbolLayer(0).layerType() == "GeometryGenerator"
    assert field.isValid() and field.bandCount() == 2

    # Arrows: 20×20 whole cells of 50 px, each the mean of displacement.tif over its cell.
    assert arrows.featureCount() == 20 * 20
    ds = gdal.Open(str(out / "displacement.tif"))
    east, north = (ds.GetRasterBand(b).ReadAsArray().astype(np.float64) for b in (1, 2))
    gt = ds.GetGeoTransform()
    checked = 0
    for f in arrows.getFeatures():
        p = f.geometry().asPoint()
        col, row = int((p.x() - gt[0]) / gt[1]) // 50, int((p.y() - gt[3]) / gt[5]) // 50
        cell = (slice(row * 50, row * 50 + 50), slice(col * 50, col * 50 + 50))
        assert f["dx"] == pytest.approx(east[cell].mean(), abs=1e-4)
        assert f["dy"] == pytest.approx(north[cell].mean(), abs=1e-4)
        assert f["length"] == pytest.approx(math.hypot(f["dx"], f["dy"]), abs=1e-9)
        assert f["azimuth_deg"] == pytest.approx(math.degrees(math.atan2(f["dx"], f["dy"])) % 360, abs=1e-6)
        checked += 1
    assert checked == 400
    # The misalignment is up to 4.8 m: the arrows show moves of metres, not noise.
    lengths = np.array([f["length"] for f in arrows.getFeatures()])
    assert 1.0 < np.percentile(lengths, 90) < 6.0


def test_align_default_method_on_a_memory_layer(provider, project, misaligned_austin, tmp_path):
    """The default pipeline (the shipped model's local+learned) on a layer that is not a file:
    geoalign gets a temporary GeoPackage, the group shows a copy of the layer itself."""
    source = QgsVectorLayer(str(misaligned_austin), "misaligned", "ogr")
    memory = source.materialize(QgsFeatureRequest())
    assert memory.providerType() == "memory" and memory.featureCount() == 57
    project.addMapLayer(memory)
    feedback = RecordingFeedback()
    results = align({"INPUT": str(AUSTIN_TIF), "BUILDINGS": memory.id(), "OUTPUT": str(tmp_path / "default")},
                    feedback)
    command = feedback.commands[0].split()
    assert "--method" not in command and command[5].endswith(".gpkg") and command[5] != str(misaligned_austin)
    assert any("with local+learned (shipped default model, scales 3,2,1 picked by edges)" in line
               for line in feedback.infos)
    layers = dict((layer.name(), layer) for layer, _ in group_layers(project, "geoalign: misaligned"))
    assert layers["original"].providerType() == "memory" and layers["original"].id() != memory.id()
    assert layers["original"].featureCount() == 57
    assert outline_of(layers["original"]) == ("#e41a1c", Qt.DashLine, Qt.NoBrush)
    assert memory.renderer().symbol().symbolLayer(0).strokeStyle() != Qt.DashLine  # the user's style kept
    aligned = QgsVectorLayer(results["ALIGNED"], "aligned", "ogr")
    assert aligned.isValid() and aligned.featureCount() == 57
    assert aligned.fields().indexOf("shift_m") >= 0


def test_geoalign_warnings_reach_the_processing_log(provider, project, tmp_path):
    """Kampala's buildings on the Austin image: geoalign warns that nothing lies on it (LOAD off:
    no layer added)."""
    feedback = RecordingFeedback()
    align({"INPUT": str(AUSTIN_TIF), "BUILDINGS": str(KAMPALA_BUILDINGS), "METHOD": LOCAL, "LOAD": False,
           "OUTPUT": str(tmp_path / "elsewhere")}, feedback)
    assert f"UserWarning: none of the 206 features of {KAMPALA_BUILDINGS} lies on {AUSTIN_TIF}: nothing " \
           "was moved (check that both cover the same area)." in feedback.warnings
    assert not [w for w in feedback.warnings if w.startswith("{")]  # events parsed, not echoed
    assert project.count() == 0 and project.layerTreeRoot().findGroups() == []


def test_cancel_stops_the_child_and_loads_nothing(provider, project, tmp_path):
    out = tmp_path / "cancelled"
    feedback = RecordingFeedback(cancel_at_percent=0.0)  # cancel at the first progress event
    with pytest.raises(QgsProcessingException, match="Cancelled"):  # the default pipeline: seconds of tiles
        align({"INPUT": str(KAMPALA_TIF), "BUILDINGS": str(KAMPALA_BUILDINGS), "METHOD": 0,
               "OUTPUT": str(out)}, feedback)
    stopped_after_s = time.monotonic() - feedback.cancelled_at
    with pytest.raises(ProcessLookupError):  # the child is gone (and reaped)
        os.kill(feedback.pid, 0)
    assert stopped_after_s < 5.0 + 2.0  # SIGTERM, SIGKILL after 5 s at the latest
    assert any(d.startswith("geoalign stopped by SIGTERM") for d in feedback.debug)  # ~0.5 s here
    left = {p.name for p in out.iterdir()} if out.exists() else set()
    assert not left & {"aligned.gpkg", "aligned.geojson", "displacement.tif", "run.json",
                       "displacement_arrows.gpkg"}
    assert not [name for name in left if name.startswith(".geoalign-staging.")]
    assert project.count() == 0


class CancelAfterExitFeedback(RecordingFeedback):
    """Cancels once the child has exited (a zombie not yet reaped: /proc/PID/stat state Z), the
    moment between geoalign's last write and the plugin seeing its exit."""

    def pushDebugInfo(self, info: str) -> None:  # noqa: N802 - QGIS API
        super().pushDebugInfo(info)
        if info.startswith("geoalign pid "):
            stat = Path(f"/proc/{info.split()[-1]}/stat")
            deadline = time.monotonic() + 120
            while stat.read_text().rpartition(")")[2].split()[0] != "Z" and time.monotonic() < deadline:
                time.sleep(0.05)
            self.cancel()


def test_a_cancel_after_geoalign_finished_says_its_outputs_are_complete(provider, project, tmp_path):
    out = tmp_path / "finished"
    feedback = CancelAfterExitFeedback()
    with pytest.raises(QgsProcessingException, match="Cancelled after geoalign had finished: its outputs are complete"):
        align({"INPUT": str(KAMPALA_TIF), "BUILDINGS": str(KAMPALA_BUILDINGS), "METHOD": LOCAL,
               "OUTPUT": str(out)}, feedback)
    assert any(d == "geoalign had already finished (exit code 0)" for d in feedback.debug), feedback.debug
    assert {"aligned.gpkg", "run.json", "displacement.tif"} <= {p.name for p in out.iterdir()}
    assert {"aligned.gpkg", "displacement.tif"} <= set(json.loads((out / "run.json").read_text())["files"])
    assert project.count() == 0


def empty_polygons(path: Path) -> Path:
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName, options.layerName = "GPKG", "empty"
    writer = QgsVectorFileWriter.create(str(path), QgsFields(), QgsWkbTypes.Polygon,
                                        QgsCoordinateReferenceSystem("EPSG:26914"),
                                        QgsCoordinateTransformContext(), options)
    del writer
    return path


def test_failing_run_raises_geoalign_message(provider, project, tmp_path):
    empty = empty_polygons(tmp_path / "empty.gpkg")
    direct = cli("-q", "align", str(AUSTIN_TIF), str(empty), "--layer", "empty", "-o", str(tmp_path / "d"))
    assert direct.returncode == 1
    message = direct.stderr.strip().splitlines()[-1].removeprefix("Error: ")
    assert message == f"{empty}: contains no features."
    with pytest.raises(QgsProcessingException) as err:
        align({"INPUT": str(AUSTIN_TIF), "BUILDINGS": f"{empty}|layername=empty", "METHOD": LOCAL,
               "OUTPUT": str(tmp_path / "out")})
    assert str(err.value) == message
    assert project.count() == 0
    # A raster that is not a file (a tile service) is refused in one line.
    tiles = QgsRasterLayer("type=xyz&url=http://127.0.0.1:9/%7Bz%7D/%7Bx%7D/%7By%7D.png", "tiles", "wms")
    project.addMapLayer(tiles)
    with pytest.raises(QgsProcessingException) as err:
        align({"INPUT": tiles.id(), "BUILDINGS": str(AUSTIN_TIF.with_name("austin1_crop_nw_buildings.geojson")),
               "OUTPUT": str(tmp_path / "tiles")})
    assert str(err.value).startswith("Raster layer 'tiles' is not a local file (wms): save it as GeoTIFF")


def test_trust_options_follow_what_the_cli_supports(provider, project, misaligned_austin, tmp_path):
    """--report/--trust-gate are passed when `geoalign align --help` lists them, else refused in one line."""
    help_text = cli("align", "--help").stdout
    params = {"INPUT": str(AUSTIN_TIF), "BUILDINGS": str(misaligned_austin), "METHOD": 0,  # the model's pipeline
              "TRUST_REPORT": True, "TRUST_GATE": 3.0, "OUTPUT": str(tmp_path / "trust")}
    if "--report" not in help_text:
        with pytest.raises(QgsProcessingException) as err:
            align(params)
        assert str(err.value).startswith("geoalign 0.1.0 at ") and "has no `align --report`" in str(err.value)
        assert "\n" not in str(err.value) and not (tmp_path / "trust").exists()
        return
    feedback = RecordingFeedback()
    align(params, feedback)
    assert "--report --trust-gate 3.0" in feedback.commands[0]
    names = [layer.name() for layer, _ in group_layers(project, "geoalign: austin_misaligned")]
    assert "expected error (px)" in names and "confidence" in names
    gated = [f["gated"] for layer, _ in group_layers(project, "geoalign: austin_misaligned")
             if layer.name() == "aligned" for f in layer.getFeatures()]
    assert gated and any(gated)  # --trust-gate 3 leaves the least trusted buildings in place


class DamagesTheRunBeforeLoading(RecordingFeedback):
    """Overwrites the run's aligned.gpkg with junk once the run is over and before its layers are
    loaded (a disk or a user acting in between): loading must fail aloud, not drop the error."""

    def __init__(self, out_dir: Path) -> None:
        super().__init__()
        self.out_dir = out_dir

    def pushInfo(self, info: str) -> None:  # noqa: N802 - QGIS API
        super().pushInfo(info)
        if "displacement arrows" in info:
            (self.out_dir / "aligned.gpkg").write_bytes(b"not a GeoPackage")


def test_a_run_that_cannot_be_loaded_says_so_and_adds_nothing(provider, project, misaligned_austin, tmp_path):
    out = tmp_path / "damaged"
    feedback = DamagesTheRunBeforeLoading(out)
    align({"INPUT": str(AUSTIN_TIF), "BUILDINGS": str(misaligned_austin), "METHOD": LOCAL, "OUTPUT": str(out)},
          feedback)
    assert feedback.errors == [(f"geoalign wrote its files in {out}, but they could not be loaded into the "
                                f"project: {out / 'aligned.gpkg'}|layername=aligned: QGIS cannot open this "
                                "layer.", True)]
    assert project.count() == 0 and project.layerTreeRoot().findGroups() == []


def test_the_auto_trust_gate_reaches_the_cli_and_marks_buildings(provider, project, misaligned_austin, tmp_path):
    if "--report" not in cli("align", "--help").stdout:
        pytest.skip("this geoalign has no align --report")
    feedback = RecordingFeedback()
    align({"INPUT": str(AUSTIN_TIF), "BUILDINGS": str(misaligned_austin), "METHOD": 0, "TRUST_REPORT": True,
           "TRUST_GATE": 3.0, "TRUST_GATE_AUTO": True, "OUTPUT": str(tmp_path / "auto")}, feedback)
    assert "--report --trust-gate auto" in feedback.commands[0] and "3.0" not in feedback.commands[0]
    layers = [layer for layer, _ in group_layers(project, "geoalign: austin_misaligned") if layer.name() == "aligned"]
    assert layers and "gated" in [f.name() for f in layers[0].fields()]


def test_the_finest_scale_option_runs_scale_1_alone_or_refuses_a_method_without_it(provider, project,
                                                                                   misaligned_austin, tmp_path):
    if "--pick-scales" not in cli("align", "--help").stdout:
        pytest.skip("this geoalign has no align --pick-scales")
    feedback = RecordingFeedback()
    align({"INPUT": str(AUSTIN_TIF), "BUILDINGS": str(misaligned_austin), "METHOD": 0, "SCALE1_ONLY": True,
           "OUTPUT": str(tmp_path / "scale1")}, feedback)
    assert "--pick-scales none" in feedback.commands[0]
    assert any("with local+learned (shipped default model) on" in line for line in feedback.infos)
    assert (tmp_path / "scale1" / "aligned.gpkg").is_file()
    with pytest.raises(QgsProcessingException) as err:
        align({"INPUT": str(AUSTIN_TIF), "BUILDINGS": str(misaligned_austin), "METHOD": 3, "SCALE1_ONLY": True,
               "OUTPUT": str(tmp_path / "local")})
    assert "not with local" in str(err.value) and not (tmp_path / "local").exists()


# (align option, parameters that pass it, what the command line gets, parameters it refuses, the refusal)
NETWORK_OPTIONS = [
    ("--passes", {"METHOD": 2, "PASSES": 2}, ("--method learned", "--passes 2"), {"METHOD": 0, "PASSES": 2},
     "not the model pipeline"),
    ("--pick-passes", {"METHOD": 0, "PICK_PASSES": 2}, ("--pick-passes 2",), {"METHOD": 2, "PICK_PASSES": 2},
     "not with learned"),
    ("--symmetries", {"METHOD": 0, "SYMMETRIES": 1}, ("--symmetries 2",), {"METHOD": 3, "SYMMETRIES": 1},
     "not the classical local"),
]


@pytest.mark.parametrize("option,good,passed,bad,refusal", NETWORK_OPTIONS, ids=[o[0] for o in NETWORK_OPTIONS])
def test_network_options_reach_align_or_refuse_a_method_they_do_not_fit(provider, project, misaligned_austin,
                                                                       tmp_path, option, good, passed, bad, refusal):
    if option not in cli("align", "--help").stdout:
        pytest.skip(f"this geoalign has no align {option}")
    feedback = RecordingFeedback()
    align({"INPUT": str(AUSTIN_TIF), "BUILDINGS": str(misaligned_austin), **good, "OUTPUT": str(tmp_path / "ok")},
          feedback)
    assert all(p in feedback.commands[0] for p in passed)
    assert (tmp_path / "ok" / "aligned.gpkg").is_file()
    with pytest.raises(QgsProcessingException) as err:
        align({"INPUT": str(AUSTIN_TIF), "BUILDINGS": str(misaligned_austin), **bad, "OUTPUT": str(tmp_path / "no")})
    assert refusal in str(err.value) and not (tmp_path / "no").exists()
