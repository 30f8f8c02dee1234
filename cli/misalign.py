"""``geoalign misalign IMAGE BUILDINGS -o OUT``: a known misalignment, to test an alignment."""

from __future__ import annotations

import click

from cli.options import FiniteFloat, seed_option


@click.command("misalign")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("buildings", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Misaligned buildings (.gpkg, .geojson).")
@click.option("--max-disp", "max_disp_px", default=16.0, show_default=True,
              type=FiniteFloat(min=0), help="Largest displacement, in image pixels.")
@click.option("--correlation-length", "correlation_length_px", default=128.0, show_default=True,
              type=FiniteFloat(min=0, min_open=True), help="Smoothness of the field, in image pixels.")
@click.option("--field", "field_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the correcting field as a 2-band GeoTIFF: dx east, dy north, in the "
                   "image CRS's units (metres), like align's displacement.tif.")
@seed_option
def misalign(image, buildings, output, max_disp_px, correlation_length_px, field_path, seed) -> None:
    """Move BUILDINGS by a random smooth field of known amplitude (ground truth stays in BUILDINGS)."""
    from geoalign.deform.layer import misalign_file

    summary = misalign_file(image, buildings, output, max_amplitude_px=max_disp_px,
                            correlation_length_px=correlation_length_px, seed=seed, field_path=field_path)
    click.echo(summary, err=True)
