"""``geoalign fetch imagery|buildings``: download what alignment needs for a bbox.

Options only; the work is done by :mod:`geoalign.sources`.
"""

from __future__ import annotations

import click

from cli.options import FiniteFloat, bbox_crs_option, bbox_option, output_option

source_help_imagery = (
    "xyz:<xyzservices provider name or URL template with {z}/{x}/{y}>, "
    "wms:<GetMap base URL> (with --layer), or file:<raster path>."
)
source_help_buildings = "osm (Overpass API), osm-xml:<OSM XML file>, or file:<vector file or URL>."


def network_options(fn):
    """--timeout, --retries, --deadline: how long a fetch may wait on a server."""
    fn = click.option("--deadline", "deadline_s", type=FiniteFloat(min=0, min_open=True),
                      default=None, metavar="SECONDS",
                      help="Give up when the whole fetch has taken this long, retries included "
                           "[default: no limit].")(fn)
    fn = click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True,
                      help="Attempts after the first for a failed or dropped request.")(fn)
    fn = click.option("--timeout", "timeout_s", type=FiniteFloat(min=0, min_open=True),
                      default=30.0, show_default=True, metavar="SECONDS",
                      help="Longest wait for a server to connect or send the next bytes.")(fn)
    return fn


@click.group("fetch")
def fetch() -> None:
    """Download imagery or building footprints for a bounding box."""


@fetch.command("imagery")
@bbox_option
@bbox_crs_option
@click.option("--source", "source", required=True, metavar="SRC", help=source_help_imagery)
@output_option
@click.option("--zoom", type=click.IntRange(0, 30), default=None,
              help="Web-mercator zoom level (tiles' own resolution).")
@click.option("--resolution", "resolution_m", type=FiniteFloat(min=0, min_open=True),
              default=None, metavar="METRES", help="Ground resolution in metres per pixel.")
@click.option("--layer", default=None, help="WMS layer name (wms: sources).")
@click.option("--crs", "dst_crs", default=None,
              help="CRS of the output (default: EPSG:3857 for xyz:/wms:, the raster's for file:).")
@network_options
def imagery(bbox, bbox_crs: str, source: str, output: str, zoom: int | None,
            resolution_m: float | None, layer: str | None, dst_crs: str | None,
            timeout_s: float, retries: int, deadline_s: float | None) -> None:
    """Write the imagery of --bbox as a tiled, compressed GeoTIFF with a validity mask.

    \b
    Examples:
      geoalign fetch imagery --bbox 32.5937 0.3502 32.5957 0.3515 \\
          --source xyz:Esri.WorldImagery --zoom 19 -o kampala.tif
      geoalign fetch imagery --bbox 2.29 48.85 2.30 48.86 --resolution 0.5 \\
          --source wms:https://data.geopf.fr/wms-r --layer ORTHOIMAGERY.ORTHOPHOTOS -o paris.tif
      geoalign fetch imagery --bbox 616800 3344400 616950 3344550 --bbox-crs EPSG:26914 \\
          --source file:sample_data/austin_inria/austin1_crop_nw_rgb.tif -o crop.tif
    """
    from geoalign.sources.imagery import fetch_imagery

    result = fetch_imagery(source, tuple(bbox), output, bbox_crs=bbox_crs, zoom=zoom,
                           resolution_m=resolution_m, layer=layer, dst_crs=dst_crs,
                           timeout_s=timeout_s, retries=retries, deadline_s=deadline_s)
    click.echo(result.summary(), err=True)


@fetch.command("buildings")
@bbox_option
@bbox_crs_option
@click.option("--source", "source", required=True, metavar="SRC", help=source_help_buildings)
@output_option
@click.option("--crs", "dst_crs", default=None,
              help="CRS of the output (default: EPSG:4326 for OSM, the file's own for file:).")
@network_options
def buildings(bbox, bbox_crs: str, source: str, output: str, dst_crs: str | None,
              timeout_s: float, retries: int, deadline_s: float | None) -> None:
    """Write the building footprints intersecting --bbox as GeoPackage or GeoJSON.

    \b
    Examples:
      geoalign fetch buildings --bbox 10.068 48.135 10.071 48.137 --source osm -o b.gpkg
      geoalign fetch buildings --bbox 24.935 60.164 24.953 60.179 \\
          --source osm-xml:helsinki.osm.bz2 -o helsinki.geojson
      geoalign fetch buildings --bbox 616800 3344400 617100 3344700 --bbox-crs EPSG:26914 \\
          --source file:https://example.org/cadastre-buildings.geojson -o cadastre.gpkg
    """
    from geoalign.sources.buildings import fetch_buildings

    result = fetch_buildings(source, tuple(bbox), output, bbox_crs=bbox_crs, dst_crs=dst_crs,
                             timeout_s=timeout_s, retries=retries, deadline_s=deadline_s)
    click.echo(result.summary(), err=True)
