"""``geoalign align IMAGE BUILDINGS -o OUTDIR [--model DIR | --method NAME]`` (options only)."""

from __future__ import annotations

import click

from geoalign.align import align_raster, resolve_predictor
from geoalign.align.resolve import ALL_METHODS


@click.command("align")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("buildings", type=click.Path(dir_okay=False))
@click.option("-o", "--out-dir", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: aligned.geojson, aligned.gpkg, displacement.tif, overlay.png.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), default=None,
              help="Learned model folder (default: the shipped model, or the best classical "
                   "method while none is validated).")
@click.option("--method", type=click.Choice(ALL_METHODS), default=None,
              help="Predictor: classical global|local|tvl1, learned, or local+learned.")
@click.option("--search-px", type=int, default=40, show_default=True,
              help="Largest displacement the classical methods search for, in pixels of the working grid.")
@click.option("--tile-px", type=int, default=2048, show_default=True, help="Tile core size (working pixels).")
@click.option("--layer", default=None, help="Layer of BUILDINGS (multi-layer files).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def align(image, buildings, out_dir, model_dir, method, search_px, tile_px, layer, no_progress) -> None:
    """Move every building vertex of BUILDINGS onto IMAGE by a predicted displacement field."""
    predictor, name, note = resolve_predictor(method, model_dir, search_px=search_px)
    result = align_raster(image, buildings, out_dir, predictor, method=name, note=note,
                          tile_px=tile_px, layer=layer, show_progress=not no_progress)
    click.echo(result.summary(), err=True)
