"""``geoalign evaluate ALIGNED TRUTH --image IMAGE --id-field NAME -o OUTDIR`` (options only)."""

from __future__ import annotations

import click


@click.command("evaluate")
@click.argument("aligned", type=click.Path(dir_okay=False))
@click.argument("truth", type=click.Path(dir_okay=False))
@click.option("--image", required=True, type=click.Path(dir_okay=False),
              help="The image whose grid gives pixels and metres.")
@click.option("--id-field", required=True, help="Field holding the id that matches features.")
@click.option("--before", "before", type=click.Path(dir_okay=False), default=None,
              help="The misaligned input, to report its error beside the aligned one.")
@click.option("-o", "--out-dir", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: evaluation.json, accuracy_curve.png.")
def evaluate(aligned, truth, image, id_field, before, out_dir) -> None:
    """Per-vertex error of ALIGNED against TRUTH: median, fractions within τ, accuracy curve."""
    from geoalign.evaluate import evaluate_alignment

    report = evaluate_alignment(aligned, truth, image, id_field, out_dir, before_path=before)
    parts = []
    for name in ("before", "aligned"):
        if name in report:
            r = report[name]
            parts.append(f"{name}: median {r['median_px']:.2f} px ({r['median_m']:.2f} m), "
                         f"≤2 px {r['fraction_within_px']['2']:.0%}, ≤4 px {r['fraction_within_px']['4']:.0%}")
    click.echo(f"{report['aligned']['n_vertices']} vertices of {report['aligned']['n_matched']} matched "
               f"features; " + "; ".join(parts) + f" → {out_dir}", err=True)
