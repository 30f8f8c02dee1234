"""Options shared by several commands, defined once (as rasterio's rio/options.py does)."""

from __future__ import annotations

import math

import click


class FiniteFloat(click.FloatRange):
    """A float range that also refuses nan and inf (click's FloatRange lets them through)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


bbox_option = click.option(
    "--bbox",
    nargs=4,
    type=FiniteFloat(),
    required=True,
    metavar="W S E N",
    help="Bounding box: west south east north, in --bbox-crs units.",
)
bbox_crs_option = click.option(
    "--bbox-crs",
    default="EPSG:4326",
    show_default=True,
    help="CRS of --bbox (any string pyproj understands).",
)
output_option = click.option(
    "-o", "--output", "output", required=True, type=click.Path(dir_okay=False), help="Output file."
)
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")



def symmetries_option(*names: str, help: str):
    """``--symmetries``-like option: one of :data:`geoalign.inference.symmetry.SYMMETRIES`, as an int."""
    from geoalign.inference.symmetry import SYMMETRIES

    return click.option(*names, type=click.Choice([str(n) for n in SYMMETRIES]), default="1", show_default=True,
                        callback=lambda ctx, param, value: int(value), help=help)


def parse_scales(ctx, param, value: str | None) -> tuple[int, ...] | None:
    """Click callback: "3,2,1,0" → (3, 2, 1, 0), scales s ≥ 0 (downsampling by 2^s); None stays None."""
    if value is None:
        return None
    try:
        scales = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected integers separated by commas, e.g. '3,2,1,0', got {value!r}") from None
    if not scales or min(scales) < 0:
        raise click.BadParameter(f"expected integers ≥ 0 separated by commas, e.g. '3,2,1,0', got {value!r}")
    return scales


def parse_scales_or_none(ctx, param, value: str | None) -> tuple[int, ...] | None:
    """:func:`parse_scales`, and "none" → () (turns off what a model card sets)."""
    if value is not None and value.strip().lower() == "none":
        return ()
    return parse_scales(ctx, param, value)


def parse_trust_gate(ctx, param, value: str | None) -> float | str | None:
    """Click callback: :func:`geoalign.report.trust.gate_value` ("auto", or pixels ≥ 0)."""
    from geoalign.report.trust import gate_value

    try:
        return gate_value(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
