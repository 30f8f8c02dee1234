"""``geoalign align IMAGE BUILDINGS -o OUTDIR [--model DIR | --method NAME]`` (options only)."""

from __future__ import annotations

import click

from cli.options import parse_scales, parse_scales_or_none, parse_trust_gate, symmetries_option
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
              help="Scales of the learned chain to run, coarse to fine, e.g. '1,0'; a scale given twice runs "
                   "twice (default: the model card's; for --method learned, without a card's chain_scales, "
                   "each scale coarser than 1 twice: '3,3,2,2,1,0' corrects a 16 px misalignment 2.6x better "
                   "than '3,2,1,0' in 1.5x its time; for local+learned scale 1 only, '1,0' is ~3x slower; "
                   "docs/model.md).")
@click.option("--pick-scales", default=None, metavar="S,S", callback=parse_scales_or_none,
              help="A second learned proposal behind the classical stage, the chain at these scales "
                   "(e.g. '3,2,1'); each building takes the proposal that puts its outline on stronger "
                   "image edges (default: the model card's; 'none': scale 1 alone, ~2x faster; "
                   "docs/model.md).")
@click.option("--passes", type=click.IntRange(1, 8), default=1, show_default=True,
              help="Run the learned chain this many times, each pass on the map the passes before moved "
                   "(--method learned; for maps off by more than ~3 m; docs/model.md).")
@click.option("--pick-passes", type=click.IntRange(1, 4), default=1, show_default=True,
              help="Run the learned stage this many passes (behind the classical stage, or the chain alone "
                   "with --method learned); each building keeps the pass that puts its outline on stronger "
                   "image edges (docs/model.md).")
@symmetries_option("--symmetries",
                   help="Average the learned stage's field over this many rotations/flips of each tile "
                   "(test-time augmentation; N times the learned stage's cost, docs/model.md).")
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
@click.option("--report", "with_report", is_flag=True,
              help="Also write the trust report (OUTDIR/report/: tiles with density, uncertainty, "
                   "expected error; low_density and to_review layers; figures) and add "
                   "expected_error_px, confidence and gated to every building.")
@click.option("--tile-m", type=click.FloatRange(min=1.0), default=None,
              help="Report tile side in metres [default: the learned stage's training patch, 57.6 m].")
@click.option("--low-density-quantile", type=click.FloatRange(0.0, 1.0), default=0.05, show_default=True,
              help="Tiles whose density falls below this quantile of the training patches' are low-density.")
@click.option("--trust-gate", "trust_gate_px", default=None, metavar="PX|auto", callback=parse_trust_gate,
              help="Leave in place (gated=true) buildings whose expected error exceeds PX working pixels, "
                   "or with 'auto' whose move is no larger than their expected error; and those that "
                   "lie in low-density tiles.")
@click.option("--truth", "truth_path", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Reference buildings: the report adds each tile's actual error_px (needs --id-field).")
@click.option("--id-field", default=None, help="Field matching BUILDINGS to --truth.")
def align(image, buildings, out_dir, model_dir, method, search_px, learned_scales, pick_scales, passes,
          pick_passes, symmetries, tile_px, layer, workers, scheduler, rasters, with_report, tile_m, low_density_quantile,
          trust_gate_px, truth_path, id_field) -> None:
    """Move every building vertex of BUILDINGS onto IMAGE by a predicted displacement field."""
    from geoalign.report.attach import ReportRequest

    needs = [o for o, v in (("--tile-m", tile_m), ("--trust-gate", trust_gate_px), ("--truth", truth_path))
             if v is not None]
    if needs and not with_report:
        raise click.UsageError(f"{', '.join(needs)} needs --report.")
    if (truth_path is None) != (id_field is None):
        raise click.UsageError("--truth and --id-field go together.")
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
    distributed = workers is not None or scheduler is not None or rasters is not None
    report = ReportRequest(model_dir, tile_m, low_density_quantile, trust_gate_px, truth_path, id_field,
                           search_px) if with_report else None
    if not distributed:
        from geoalign.align import align_raster, resolve_predictor

        predictor, name, note = resolve_predictor(method, model_dir, search_px=search_px,
                                                  learned_scales=learned_scales, pick_scales=pick_scales,
                                                  passes=passes, pick_passes=pick_passes, symmetries=symmetries)
        result = align_raster(image, buildings, out_dir, predictor, method=name, note=note,
                              tile_px=tile_px, layer=layer, report=report)
    else:  # tiles on a Dask cluster and/or several rasters (geoalign.distributed)
        from geoalign.distributed import PredictorSpec, align_distributed, align_rasters

        spec = PredictorSpec(method, model_dir, search_px, learned_scales, pick_scales, passes, pick_passes,
                             symmetries)
        if rasters is not None:
            result = align_rasters(rasters, buildings, out_dir, spec, workers=workers, scheduler=scheduler,
                                   tile_px=tile_px, layer=layer, report=report)
        else:
            result = align_distributed(image, buildings, out_dir, spec, workers=workers, scheduler=scheduler,
                                       tile_px=tile_px, layer=layer, report=report)
    click.echo(result.summary(), err=True)
