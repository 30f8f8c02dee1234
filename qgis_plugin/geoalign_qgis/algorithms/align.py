"""Processing algorithm "Align buildings to raster" (``geoalign align``), and loading its layers."""

from __future__ import annotations

import os
from pathlib import Path

from qgis.core import (Qgis, QgsMessageLog, QgsProcessing, QgsProcessingException, QgsProcessingOutputFile,
                       QgsProcessingOutputFolder, QgsProcessingOutputRasterLayer, QgsProcessingOutputString,
                       QgsProcessingOutputVectorLayer, QgsProcessingParameterBoolean,
                       QgsProcessingParameterDefinition, QgsProcessingParameterEnum,
                       QgsProcessingParameterFeatureSource, QgsProcessingParameterFile,
                       QgsProcessingParameterFolderDestination, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterLayer, QgsProviderRegistry, QgsVectorLayer)

from ..arrows import write_arrows
from ..layers import ARROWS_FILE, RunOutputs, add_group, run_layers
from .base import GeoalignAlgorithm

#: (value passed to --method, label); '' lets the model card choose (local+learned for the shipped model).
METHODS = (("", "Model's pipeline (default: local+learned)"), ("local+learned", "local+learned"),
           ("learned", "learned (network only)"), ("local", "local (classical, fast)"),
           ("global", "global (one shift)"), ("tvl1", "tvl1 (optical flow)"))
VECTOR_FORMATS = ["gpkg", "geojson", "shp"]
SYMMETRIES = (1, 2, 4, 8)  # align --symmetries


def require_align_option(info, option: str, otherwise: str = "") -> None:
    """Stop with one line when the geoalign found has no ``align option`` (an older version)."""
    if not info.align_supports(option):
        raise QgsProcessingException(f"geoalign {info.version_text} at {info.path} has no `align {option}`: "
                                     f"update it (`pip install -U geoalign`){otherwise}.")


def require_model_pipeline(method: str, option: str) -> None:
    """Stop with one line when an option that works behind the classical search (the model's
    pipeline, local+learned) is asked for with another method; ``option`` says what it does."""
    if method not in ("", "local+learned"):
        raise QgsProcessingException(f"{option}, not with {method}: choose that method.")


def raster_file(layer) -> str:
    """The file behind a raster layer; geoalign reads files, so other providers need an export."""
    if layer.providerType() == "gdal":
        path = QgsProviderRegistry.instance().decodeUri("gdal", layer.source()).get("path", "")
        if path and os.path.isfile(path):
            return path
    raise QgsProcessingException(f"Raster layer '{layer.name()}' is not a local file ({layer.providerType()}): "
                                 "save it as GeoTIFF first (Export > Save As) or fetch it with "
                                 "'Fetch imagery'.")


class AlignAlgorithm(GeoalignAlgorithm):
    """Moves the buildings onto the imagery, then loads the run as a styled layer group."""

    def __init__(self) -> None:
        super().__init__()
        self._load: tuple[Path, str, str | None, str] | None = None  # (out_dir, uri, layer id, group)
        self._arrows_name = "displacement arrows"

    def name(self) -> str:
        return "align"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return "Align buildings to raster"

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return ("Moves every vertex of the buildings onto the imagery by a predicted displacement field "
                "(`geoalign align`). The output folder receives aligned.gpkg/.geojson (every input "
                "attribute plus shift_m), displacement.tif (band 1 east, band 2 north, in CRS units), "
                "overlay.png and run.json; the plugin adds displacement_arrows.gpkg and loads a layer "
                "group named after the buildings: aligned (green) over the originals (dashed red) and "
                "the arrows. Trust report: tiles graded by expected error, low-density tiles and tiles "
                "to review, per-building confidence. Trust gate (px): buildings whose expected error "
                "exceeds it stay where they were (gated=true); trust gate auto: buildings whose move is "
                "within their expected error stay.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Imagery"))
        self.addParameter(QgsProcessingParameterFeatureSource("BUILDINGS", "Buildings",
                                                              [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterEnum("METHOD", "Method", options=[m[1] for m in METHODS],
                                                     defaultValue=0))
        self.addParameter(QgsProcessingParameterFile("MODEL", "Model folder (default: the shipped model)",
                                                     behavior=QgsProcessingParameterFile.Folder, optional=True))
        self.addParameter(QgsProcessingParameterBoolean("TRUST_REPORT", "Trust report (per-tile expected error)",
                                                        defaultValue=False))
        self.addParameter(QgsProcessingParameterNumber("TRUST_GATE", "Trust gate: leave buildings whose "
                                                       "expected error exceeds (px)",
                                                       QgsProcessingParameterNumber.Double, optional=True,
                                                       minValue=0.0))
        self.addParameter(QgsProcessingParameterBoolean("TRUST_GATE_AUTO", "Trust gate auto: leave buildings "
                                                        "whose move is within their expected error",
                                                        defaultValue=False))
        for param in (
            QgsProcessingParameterNumber("SEARCH_PX", "Largest displacement searched (px at 0.3 m)",
                                         defaultValue=40, minValue=1),
            QgsProcessingParameterBoolean("LOAD", "Load the results as a layer group", defaultValue=True),
            QgsProcessingParameterBoolean("SCALE1_ONLY", "Map off by less than ~2 m: the network's finest "
                                          "scale alone, without its coarse scales (about 2x faster)",
                                          defaultValue=False),
            QgsProcessingParameterNumber("PASSES", "Passes of the network (method learned; each pass "
                                         "corrects what the passes before left)", defaultValue=1, minValue=1,
                                         maxValue=8),
            QgsProcessingParameterNumber("PICK_PASSES", "Passes of the network behind the classical search, "
                                         "kept per building where the image's edges agree (model pipeline)",
                                         defaultValue=1, minValue=1, maxValue=4),
            QgsProcessingParameterEnum("SYMMETRIES", "Average the network over rotations/flips of each tile "
                                       "(slower, steadier)", options=[str(n) for n in SYMMETRIES], defaultValue=0),
        ):
            param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(param)
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addOutput(QgsProcessingOutputVectorLayer("ALIGNED", "Aligned buildings"))
        self.addOutput(QgsProcessingOutputRasterLayer("DISPLACEMENT", "Displacement field"))
        self.addOutput(QgsProcessingOutputVectorLayer("ARROWS", "Displacement arrows"))
        self.addOutput(QgsProcessingOutputFile("OVERLAY", "Overlay image"))
        self.addOutput(QgsProcessingOutputFile("RUN_JSON", "Run manifest"))
        self.addOutput(QgsProcessingOutputFolder("REPORT", "Trust report folder"))
        self.addOutput(QgsProcessingOutputString("GROUP", "Layer group"))

    def _trust_args(self, info, parameters, context) -> list[str]:
        args = []
        if self.parameterAsBool(parameters, "TRUST_REPORT", context):
            args.append("--report")
        if self.parameterAsBool(parameters, "TRUST_GATE_AUTO", context):
            args += ["--trust-gate", "auto"]
        elif parameters.get("TRUST_GATE") not in (None, ""):
            args += ["--trust-gate", repr(self.parameterAsDouble(parameters, "TRUST_GATE", context))]
        for option in args:
            if option.startswith("--"):
                require_align_option(info, option, " or leave the trust options off")
        return args

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 - QGIS API
        info = self.geoalign()
        image = raster_file(self.parameterAsRasterLayer(parameters, "INPUT", context))
        buildings, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, "BUILDINGS", context, VECTOR_FORMATS, "gpkg", feedback)
        source_layer = self.parameterAsVectorLayer(parameters, "BUILDINGS", context)
        input_name = source_layer.name() if source_layer is not None else Path(buildings).stem
        out_dir = Path(self.parameterAsString(parameters, "OUTPUT", context))
        method = METHODS[self.parameterAsEnum(parameters, "METHOD", context)][0]
        args = ["align", image, buildings, "-o", str(out_dir),
                "--search-px", str(self.parameterAsInt(parameters, "SEARCH_PX", context))]
        if layer_name:
            args += ["--layer", layer_name]
        if method:
            args += ["--method", method]
        model = self.parameterAsFile(parameters, "MODEL", context)
        if model:
            args += ["--model", model]
        if self.parameterAsBool(parameters, "SCALE1_ONLY", context):
            require_model_pipeline(method, "The finest-scale option works with the model's pipeline (local+learned)")
            require_align_option(info, "--pick-scales")
            args += ["--pick-scales", "none"]
        passes = self.parameterAsInt(parameters, "PASSES", context)
        if passes > 1:
            if method != "learned":
                raise QgsProcessingException(f"Passes repeat the network alone (method learned), not "
                                             f"{method or 'the model pipeline'}: choose that method.")
            require_align_option(info, "--passes")
            args += ["--passes", str(passes)]
        pick_passes = self.parameterAsInt(parameters, "PICK_PASSES", context)
        if pick_passes > 1:
            require_model_pipeline(method, "Passes picked by edges run behind the classical search (the model "
                                           "pipeline, local+learned)")
            require_align_option(info, "--pick-passes")
            args += ["--pick-passes", str(pick_passes)]
        symmetries = SYMMETRIES[self.parameterAsEnum(parameters, "SYMMETRIES", context)]
        if symmetries > 1:
            if method not in ("", "local+learned", "learned"):
                raise QgsProcessingException(f"Rotations/flips average the network, not the classical {method} "
                                             "search: choose the model pipeline or learned.")
            require_align_option(info, "--symmetries")
            args += ["--symmetries", str(symmetries)]
        args += self._trust_args(info, parameters, context)

        self.run_cli(info, args, feedback)
        if feedback.isCanceled():
            raise QgsProcessingException("Cancelled: nothing was loaded.")
        feedback.setProgressText("displacement arrows")
        count, scale = write_arrows(out_dir / "displacement.tif", out_dir / ARROWS_FILE)
        self._arrows_name = f"displacement arrows (x{scale:g})"
        feedback.pushInfo(f"{count} displacement arrows, drawn {scale:g} times their length")
        original = f"{buildings}|layername={layer_name}" if layer_name else buildings
        # A project layer that is not a file (memory, database...) is shown as a copy of itself,
        # not as the temporary GeoPackage handed to geoalign (deleted when QGIS closes).
        not_file = source_layer is not None and source_layer.providerType() != "ogr"
        if self.parameterAsBool(parameters, "LOAD", context):
            self._load = (out_dir, original, source_layer.id() if not_file else None, f"geoalign: {input_name}")
        report = out_dir / "report"
        return {
            "OUTPUT": str(out_dir),
            "ALIGNED": RunOutputs(out_dir).aligned_uri,
            "DISPLACEMENT": str(out_dir / "displacement.tif"),
            "ARROWS": f"{out_dir / ARROWS_FILE}|layername=arrows",
            "OVERLAY": str(out_dir / "overlay.png"),
            "RUN_JSON": str(out_dir / "run.json"),
            "REPORT": str(report) if report.is_dir() else None,
            "GROUP": f"geoalign: {input_name}",
        }

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 - QGIS API
        """Main thread: load the run into the project (only after a complete, successful run)."""
        if self._load is None or context.project() is None:
            return {}
        out_dir, uri, layer_id, group = self._load
        layer = context.project().mapLayer(layer_id) if layer_id else None
        original = layer if isinstance(layer, QgsVectorLayer) else uri
        try:  # every layer is built before the group is added: a failure adds nothing
            layers = run_layers(RunOutputs(out_dir), original, self._arrows_name)
        except Exception as err:  # noqa: BLE001 - QGIS would log it without saying which run failed
            message = f"geoalign wrote its files in {out_dir}, but they could not be loaded into the project: {err}"
            feedback.reportError(message, True)
            QgsMessageLog.logMessage(message, "geoalign", Qgis.Critical)
            return {}
        add_group(context.project(), group, layers)
        return {}
