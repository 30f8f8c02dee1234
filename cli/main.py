"""The thin main group: logging from -v/-q, --version, subcommands from entry points.

Subcommands are registered in the ``geoalign.commands`` entry-point group (see pyproject.toml),
so other packages can add their own without touching this file.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click

from geoalign import __version__
from geoalign.errors import GeoalignError
from geoalign.messages import configure_messages
from geoalign.progress import configure_progress, emit_event
from geoalign.settings import PROGRESS_MODES

ENTRY_POINT_GROUP = "geoalign.commands"


class GeoalignGroup(click.Group):
    """The main group: subcommands from entry points, loaded only when used (fast start-up);
    user errors become one line on stderr and exit code 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_entry_points()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in _entry_points():
            command = _load(_entry_points()[name])
            self.add_command(command, name)
        return command

    def invoke(self, ctx: click.Context):  # noqa: D401 - click API
        try:
            return super().invoke(ctx)
        except GeoalignError as err:
            emit_event("error", text=str(err))
            raise click.ClickException(str(err)) from None


def _entry_points() -> dict:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _load(ep) -> click.Command:
    try:
        return ep.load()
    except Exception as err:  # a broken plugin must not break the whole CLI
        message = f"the command '{ep.name}' could not be loaded: {err}"

        @click.command(ep.name, help=f"(broken plugin: {err})")
        def broken() -> None:
            raise click.ClickException(message)

        return broken


@click.group(cls=GeoalignGroup)
@click.version_option(__version__, prog_name="geoalign")
@click.option("-v", "--verbose", count=True, help="More messages (repeat for debug).")
@click.option("-q", "--quiet", count=True, help="Errors only, no progress bars.")
@click.option("--progress", "progress_mode", type=click.Choice(PROGRESS_MODES), default=None,
              help="Progress on stderr: bar, json (one JSON line per event, for programs) or off "
                   "[default: $GEOALIGN_PROGRESS, else bar; off with -q].")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: int, progress_mode: str | None) -> None:
    """geoalign: align building maps to aerial and satellite imagery."""
    ctx.ensure_object(dict)
    ctx.obj["verbosity"] = verbose - quiet
    if quiet and progress_mode != "json":
        progress_mode = "off"
    configure_progress(progress_mode)
    configure_messages(verbose - quiet)
