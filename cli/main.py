"""The thin main group: logging from -v/-q, --version, subcommands from entry points.

Subcommands are registered in the ``geoalign.commands`` entry-point group (see pyproject.toml),
so other packages can add their own without touching this file.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import entry_points

import click

from geoalign import __version__
from geoalign.errors import GeoalignError

ENTRY_POINT_GROUP = "geoalign.commands"


class GeoalignGroup(click.Group):
    """A click group that turns user errors into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context):  # noqa: D401 - click API
        try:
            return super().invoke(ctx)
        except GeoalignError as err:
            raise click.ClickException(str(err)) from None


def _configure_logging(verbosity: int) -> None:
    level = max(logging.DEBUG, logging.WARNING - 10 * verbosity)
    logging.basicConfig(stream=sys.stderr, level=level, format="%(levelname)s: %(message)s")
    logging.getLogger("geoalign").setLevel(level)
    logging.captureWarnings(True)


@click.group(cls=GeoalignGroup)
@click.version_option(__version__, prog_name="geoalign")
@click.option("-v", "--verbose", count=True, help="More messages (repeat for debug).")
@click.option("-q", "--quiet", count=True, help="Fewer messages (errors only with -q).")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: int) -> None:
    """geoalign: align building maps to aerial and satellite imagery."""
    ctx.ensure_object(dict)
    ctx.obj["verbosity"] = verbose - quiet
    _configure_logging(verbose - quiet)


def _attach_entry_point_commands(group: click.Group) -> None:
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            command = ep.load()
        except Exception as err:  # a broken plugin must not break the whole CLI
            @click.command(ep.name, help=f"(broken plugin: {err})")
            def command() -> None:  # type: ignore[misc]
                raise click.ClickException(f"the command '{ep.name}' could not be loaded: {err}")
        group.add_command(command, ep.name)


_attach_entry_point_commands(main)
