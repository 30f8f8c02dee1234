"""``geoalign dataset build|preview``: multiscale training pairs from imagery + buildings."""

from __future__ import annotations

from pathlib import Path

import click

from cli.options import FiniteFloat, parse_scales, seed_option


@click.group()
def dataset() -> None:
    """Build and inspect multiscale training datasets."""


@dataset.command()
@click.option("--source", "sources", nargs=2, multiple=True, required=True,
              type=click.Path(dir_okay=False), metavar="IMAGE BUILDINGS",
              help="An image and the buildings that sit right on it (repeatable).")
@click.option("--val-source", "val_sources", nargs=2, multiple=True,
              type=click.Path(dir_okay=False), metavar="IMAGE BUILDINGS",
              help="A source held out entirely for validation (repeatable).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Dataset folder.")
@click.option("--scales", default="3,2,1,0", show_default=True, callback=parse_scales,
              help="Scales s (downsampling by 2^s), coarse to fine.")
@click.option("--patch-size", "patch_px", default=96, show_default=True, type=click.IntRange(8),
              help="Patch side in pixels (of each scale).")
@click.option("--stride", "stride_fraction", default=0.5, show_default=True,
              type=FiniteFloat(0.05, 1.0), help="Patch stride as a fraction of the patch side.")
@click.option("--samples-per-patch", default=1, show_default=True, type=click.IntRange(1),
              help="Random deformations drawn per patch.")
@click.option("--gsd", "gsd_m", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Ground sampling distance (m) of scale 0 [default: the first source's].")
@click.option("--max-disp-scale-px", "max_disp_px", default=2.0, show_default=True,
              type=FiniteFloat(min=0, min_open=True),
              help="Maximum displacement in pixels of each scale s (2 = 2^(s+1) pixels of scale 0, "
                   "as in Zampieri et al., ECCV 2018).")
@click.option("--holdout-fraction", default=0.2, show_default=True, type=FiniteFloat(0, 1, max_open=True),
              help="East strip of every source held out for validation.")
@click.option("--preregister", type=click.Choice(["global", "local"]), default=None,
              help="First align every source's buildings to its image with this classical method "
                   "(written to OUTPUT.preregistered/), removing each source's systematic label offset.")
@click.option("--cascade", type=click.Choice(["local"]), default=None,
              help="Cascade pairs: the map as this classical stage leaves it after a misalignment of up to "
                   "--cascade-max-disp-px, the target its residual (what the learned stage of "
                   "local+learned sees; use with --scales 1).")
@click.option("--cascade-max-disp-px", default=32.0, show_default=True, type=FiniteFloat(min=0, min_open=True),
              help="Maximum misalignment of cascade pairs, pixels at --gsd.")
@click.option("--cascade-correlation-px", default=128.0, show_default=True,
              type=FiniteFloat(min=0, min_open=True),
              help="Correlation length of the cascade pairs' misalignment, pixels at --gsd.")
@click.option("--cascade-max-residual-px", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Leave out cascade pairs whose median residual at the map's edges is larger (pixels at "
                   "--gsd): the classical stage failed beyond the learned stage's reach [default: keep all].")
@seed_option
@click.option("--preview/--no-preview", default=False, help="Also write DATASET/preview.png.")
def build(sources, val_sources, output, scales, patch_px, stride_fraction, samples_per_patch,
          gsd_m, max_disp_px, holdout_fraction, preregister, cascade, cascade_max_disp_px,
          cascade_correlation_px, cascade_max_residual_px, seed, preview) -> None:
    """Cut (image, misaligned map, field) pairs at every scale into a dataset folder."""
    from geoalign.dataset import DatasetConfig, SourcePair, build_dataset

    pairs = [SourcePair(Path(i), Path(b), "train") for i, b in sources]
    pairs += [SourcePair(Path(i), Path(b), "val") for i, b in val_sources]
    if preregister:
        from geoalign.dataset.build import check_dataset_output
        from geoalign.dataset.preregister import preregister_sources

        check_dataset_output(pairs, output)  # a refused -o leaves no .preregistered/ folder behind
        prereg_dir = Path(output).with_name(Path(output).name + ".preregistered")
        pairs = preregister_sources(pairs, prereg_dir, method=preregister, gsd_m=gsd_m)
        click.echo(f"pre-registered buildings ({preregister}): {prereg_dir}", err=True)
    config = DatasetConfig(
        scales=scales, patch_px=patch_px, stride_fraction=stride_fraction,
        samples_per_patch=samples_per_patch, gsd_m=gsd_m, max_disp_px=max_disp_px,
        holdout_fraction=holdout_fraction, seed=seed, cascade=cascade,
        cascade_max_disp_px=cascade_max_disp_px, cascade_correlation_px=cascade_correlation_px,
        cascade_max_residual_px=cascade_max_residual_px,
    )
    summary = build_dataset(pairs, output, config)
    if preview:
        from geoalign.dataset.preview import write_preview

        png = write_preview(output)
        click.echo(f"preview: {png}", err=True)
    click.echo(str(summary), err=True)


@dataset.command("preview")
@click.argument("dataset_dir", type=click.Path(file_okay=False, exists=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="PNG path [default: DATASET/preview.png].")
@click.option("--split", type=click.Choice(["train", "val"]), default="train", show_default=True)
@click.option("--per-scale", default=6, show_default=True, type=click.IntRange(1, 20))
def preview_cmd(dataset_dir, output, split, per_scale) -> None:
    """Draw pairs of a dataset with their fields as arrows."""
    from geoalign.dataset.preview import write_preview

    click.echo(str(write_preview(dataset_dir, output, per_scale=per_scale, split=split)))
