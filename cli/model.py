"""``geoalign model stats MODEL_DIR DATASET``: options only; the logic is geoalign.report.stats."""

from __future__ import annotations

import click

from cli.options import seed_option


@click.group("model")
def model() -> None:
    """Inspect and complete model folders."""


@model.command("stats")
@click.argument("model_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("dataset_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--scales", default=None, metavar="S,S",
              help="Learned scales to compute statistics for (default: the ones align's default "
                   "pipeline runs, from the model card).")
@click.option("--max-patches", default=4000, show_default=True, type=click.IntRange(1),
              help="Training patches per scale (a random subset when the dataset holds more).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1), help="CPU threads for torch.")
@seed_option
def stats(model_dir, dataset_dir, scales, max_patches, threads, seed) -> None:
    """Store in MODEL_DIR the training-set statistics the trust report (align --report) needs."""
    from geoalign.report.stats import STATS_FILE, compute_training_stats, stats_size_bytes

    try:
        wanted = [int(s) for s in scales.split(",")] if scales else None
    except ValueError:
        raise click.BadParameter(f"expected scales like '1' or '1,0', got {scales!r}", param_hint="--scales") from None
    result = compute_training_stats(model_dir, dataset_dir, scales=wanted, max_patches=max_patches,
                                    seed=seed, threads=threads)
    counts = ", ".join(f"scale {s}: {n} patches" for s, n in result.meta["patches"].items())
    click.echo(f"training statistics ({counts}; {stats_size_bytes(model_dir) / 1e6:.1f} MB) → "
               f"{model_dir}/{STATS_FILE} in {result.meta['seconds']:.0f} s", err=True)


@model.command("calibrate")
@click.argument("model_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--seeds", default=4, show_default=True, type=click.IntRange(1),
              help="Random fields per amplitude and calibration region.")
@click.option("--search-px", type=int, default=40, show_default=True, help="As for align.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1), help="CPU threads for torch.")
def calibrate(model_dir, seeds, search_px, threads) -> None:
    """Fit expected_error_px on held-out regions of MODEL_DIR's training sources (its card names
    them) and add the calibration to its model card (needs `geoalign model stats` first)."""
    import torch

    from geoalign.report.calibrate import calibrate as fit

    torch.set_num_threads(threads)
    result = fit(model_dir, seeds=tuple(range(100, 100 + seeds)), search_px=search_px,
                 log=lambda m: click.echo(m, err=True))
    click.echo(f"trust calibration on {result.info['n_buildings']} building cases "
               f"(in-sample Spearman {result.info['spearman_in_sample']:.2f}) → {model_dir}/model_card.json",
               err=True)
