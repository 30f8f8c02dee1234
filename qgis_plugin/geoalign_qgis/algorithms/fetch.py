"""Processing algorithms "Fetch OSM buildings" and "Fetch imagery" (``geoalign fetch ...``)."""

from __future__ import annotations

from qgis.core import (QgsProcessing, QgsProcessingParameterCrs, QgsProcessingParameterExtent,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterString, QgsProcessingParameterVectorDestination)

from .base import GeoalignAlgorithm, bbox_args


def _crs_args(alg, parameters, context) -> list[str]:
    crs = alg.parameterAsCrs(parameters, "CRS", context)
    if not crs.isValid():
        return []
    return ["--crs", crs.authid() or crs.toWkt()]


class FetchBuildingsAlgorithm(GeoalignAlgorithm):
    """``geoalign fetch buildings``: OSM (Overpass), an OSM XML file or a cadaster file/URL."""

    def name(self) -> str:
        return "fetch_buildings"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return "Fetch OSM buildings"

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return ("Downloads the building footprints that intersect the extent (the canvas's or a "
                "layer's) into a GeoPackage or GeoJSON. Source: 'osm' (Overpass API), "
                "'osm-xml:FILE' (an OSM extract) or 'file:PATH_OR_URL' (a cadaster layer). "
                "Runs `geoalign fetch buildings`.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterExtent("EXTENT", "Area"))
        self.addParameter(QgsProcessingParameterString(
            "SOURCE", "Source (osm, osm-xml:FILE or file:PATH_OR_URL)", defaultValue="osm"))
        self.addParameter(QgsProcessingParameterCrs("CRS", "Output CRS (default: the source's)",
                                                    optional=True))
        out = QgsProcessingParameterVectorDestination("OUTPUT", "Buildings", QgsProcessing.TypeVectorPolygon)
        out.setSupportsNonFileBasedOutput(False)
        self.addParameter(out)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 - QGIS API
        info = self.geoalign()
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        args = ["fetch", "buildings",
                *bbox_args(self.parameterAsExtent(parameters, "EXTENT", context),
                           self.parameterAsExtentCrs(parameters, "EXTENT", context)),
                "--source", self.parameterAsString(parameters, "SOURCE", context).strip(),
                *_crs_args(self, parameters, context), "-o", output]
        self.run_cli(info, args, feedback)
        return {"OUTPUT": output}


class FetchImageryAlgorithm(GeoalignAlgorithm):
    """``geoalign fetch imagery``: an XYZ tile server, a WMS or a local raster, as a GeoTIFF."""

    def name(self) -> str:
        return "fetch_imagery"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return "Fetch imagery"

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return ("Writes the imagery of the extent as a tiled, compressed GeoTIFF with a validity "
                "mask. Source: 'xyz:NAME_OR_URL' (an xyzservices name such as Esri.WorldImagery, or "
                "a template with {z}/{x}/{y}), 'wms:URL' (with a WMS layer) or 'file:RASTER'. "
                "Give a zoom (XYZ) or a resolution in metres. Runs `geoalign fetch imagery`.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterExtent("EXTENT", "Area"))
        self.addParameter(QgsProcessingParameterString(
            "SOURCE", "Source (xyz:NAME_OR_URL, wms:URL or file:RASTER)", defaultValue="xyz:Esri.WorldImagery"))
        self.addParameter(QgsProcessingParameterNumber("ZOOM", "Zoom level (XYZ)", minValue=0, maxValue=30,
                                                       optional=True))
        self.addParameter(QgsProcessingParameterNumber("RESOLUTION", "Resolution (metres per pixel)",
                                                       QgsProcessingParameterNumber.Double, optional=True,
                                                       minValue=0.0))
        self.addParameter(QgsProcessingParameterString("LAYER", "WMS layer", optional=True))
        self.addParameter(QgsProcessingParameterCrs("CRS", "Output CRS (default: EPSG:3857 for xyz/wms)",
                                                    optional=True))
        out = QgsProcessingParameterRasterDestination("OUTPUT", "Imagery")
        out.setSupportsNonFileBasedOutput(False)
        self.addParameter(out)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 - QGIS API
        info = self.geoalign()
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        args = ["fetch", "imagery",
                *bbox_args(self.parameterAsExtent(parameters, "EXTENT", context),
                           self.parameterAsExtentCrs(parameters, "EXTENT", context)),
                "--source", self.parameterAsString(parameters, "SOURCE", context).strip()]
        if parameters.get("ZOOM") not in (None, ""):
            args += ["--zoom", str(self.parameterAsInt(parameters, "ZOOM", context))]
        if parameters.get("RESOLUTION") not in (None, ""):
            args += ["--resolution", repr(self.parameterAsDouble(parameters, "RESOLUTION", context))]
        layer = self.parameterAsString(parameters, "LAYER", context).strip()
        if layer:
            args += ["--layer", layer]
        args += [*_crs_args(self, parameters, context), "-o", output]
        self.run_cli(info, args, feedback)
        return {"OUTPUT": output}
