"""``geoalign align IMAGE BUILDINGS -o OUTDIR [--model DIR | --method NAME]`` (options only)."""

from __future__ import annotations

import click

from cli.options import parse_scales
from geoalign.align import align_raster, resolve_predictor
from geoalign.align.resolve import ALL_METHODS
from geoalign.errors import OptionError


@click.command("align")
@click.argument("image", required=False, type=click.Path(dir_okay=False))
@click.argument("buildings", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--out-dir", "out_dir", type=click.Path(file_okay=False),
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
# --- scale out (geoalign[dask]) ---
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Compute the tiles on a local Dask cluster of N processes (one thread each); "
                   "same output as one process.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Compute the tiles on an existing Dask cluster (e.g. tcp://host:8786); the "
                   "rasters, buildings, model and output folder must be readable there by path.")
@click.option("--rasters", default=None, metavar="LIST_OR_GLOB",
              help="Several rasters as one mosaic (glob, .txt list or comma-separated paths; same "
                   "CRS and pixel size); then the only argument is BUILDINGS.")
def align(image, buildings, out_dir, model_dir, method, search_px, learned_scales, tile_px, layer,
          workers, scheduler, rasters) -> None:
    """Move every building vertex of BUILDINGS onto IMAGE by a predicted displacement field."""
    if rasters is not None:  # then the one argument is BUILDINGS
        if buildings is not None:
            raise click.UsageError("Got unexpected extra argument: with --rasters give one argument, BUILDINGS.")
        image, buildings = None, image
    for value, name in ((image if rasters is None else "", "IMAGE"), (buildings, "BUILDINGS")):
        if value is None:
            raise click.UsageError(f"Missing argument '{name}'.")
    if out_dir is None:
        raise click.UsageError("Missing option '-o' / '--out-dir'.")
    if workers is not None and scheduler is not None:
        raise OptionError("give --workers (a local cluster) or --scheduler (an existing one), not both.")
    if workers is None and scheduler is None and rasters is None:
        predictor, name, note = resolve_predictor(method, model_dir, search_px=search_px,
                                                  learned_scales=learned_scales)
        result = align_raster(image, buildings, out_dir, predictor, method=name, note=note,
                              tile_px=tile_px, layer=layer)
    else:  # tiles on a Dask cluster and/or several rasters (geoalign.distributed)
        from geoalign.distributed import PredictorSpec, align_distributed, align_rasters

        spec = PredictorSpec(method, model_dir, search_px, learned_scales)
        if rasters is not None:
            result = align_rasters(rasters, buildings, out_dir, spec, workers=workers, scheduler=scheduler,
                                   tile_px=tile_px, layer=layer)
        else:
            result = align_distributed(image, buildings, out_dir, spec, workers=workers, scheduler=scheduler,
                                       tile_px=tile_px, layer=layer)
    click.echo(result.summary(), err=True)
