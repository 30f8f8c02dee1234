"""Options shared by several commands, defined once (as rasterio's rio/options.py does)."""

from __future__ import annotations

import click

bbox_option = click.option(
    "--bbox",
    nargs=4,
    type=float,
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

