"""``geoalign align IMAGE BUILDINGS -o OUTDIR [--model DIR | --method NAME]`` (options only)."""

from __future__ import annotations

import click

from cli.options import parse_scales
from geoalign.align import align_raster, resolve_predictor
from geoalign.align.resolve import ALL_METHODS


@click.command("align")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("buildings", type=click.Path(dir_okay=False))
@click.option("-o", "--out-dir", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: aligned.geojson, aligned.gpkg, displacement.tif, overlay.png.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), default=None,
              help="Learned model folder (default: the shipped one); without --method, the "
                   "pipeline its model card names runs.")
@click.option("--method", type=click.Choice(ALL_METHODS), default=None,
              help="Predictor: classical global|local|tvl1, learned, or local+learned.")
@click.option("--search-px", type=click.IntRange(1, 1000), default=40, show_default=True,
              help="Largest displacement searched for, in pixels of the working grid (the model's "
                   "GSD, 0.3 m: 40 px = 12 m); every method works on that grid.")
@click.option("--learned-scales", default=None, metavar="S,S", callback=parse_scales,
              help="Scales of the learned chain to run, coarse to fine, e.g. '1,0' (default: all of "
                   "them for --method learned; the model card's for local+learned: scale 1 only, "
                   "'1,0' is ~3x slower and a few tenths of a pixel more accurate).")
@click.option("--tile-px", type=click.IntRange(min=64), default=2048, show_default=True,
              help="Tile core size (working pixels).")
@click.option("--layer", default=None, help="Layer of BUILDINGS (multi-layer files).")
def align(image, buildings, out_dir, model_dir, method, search_px, learned_scales, tile_px, layer) -> None:
    """Move every building vertex of BUILDINGS onto IMAGE by a predicted displacement field."""
    predictor, name, note = resolve_predictor(method, model_dir, search_px=search_px, learned_scales=learned_scales)
    result = align_raster(image, buildings, out_dir, predictor, method=name, note=note,
                          tile_px=tile_px, layer=layer)
    click.echo(result.summary(), err=True)
