"""The thin main group: logging from -v/-q, --version, subcommands from entry points.

Subcommands are registered in the ``geoalign.commands`` entry-point group (see pyproject.toml),
so other packages can add their own without touching this file.
"""

from __future__ import annotations

import errno
import logging
import signal
import threading
from importlib.metadata import entry_points
from pathlib import Path

import click

from geoalign import __version__
from geoalign.errors import GeoalignError
from geoalign.messages import configure_messages
from geoalign.progress import configure_progress, emit_event
from geoalign.settings import PROGRESS_MODES

ENTRY_POINT_GROUP = "geoalign.commands"

log = logging.getLogger("geoalign.cli")


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
            raise _one_line_error(str(err)) from None
        except click.UsageError as err:
            # one line, like every other error: the usage text is one --help away
            hint = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
            text = " ".join((err.format_message() + hint).split())
            emit_event("error", text=text)
            raise click.UsageError(text) from None
        except OSError as err:  # unwritable folder, unreadable file, full disk, ...
            log.debug("operating-system error", exc_info=True)
            raise _one_line_error(os_error_message(err)) from None


def _interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """SIGTERM stops a run as Ctrl-C does: the interrupt unwinds it, its staging files are removed
    and no output is written. Programs (the QGIS plugin) stop geoalign with SIGTERM because a
    command a shell started in the background ignores SIGINT; a handler someone else installed
    is kept."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def _one_line_error(text: str) -> click.ClickException:
    text = " ".join(text.split())
    emit_event("error", text=text)
    return click.ClickException(text)


#: What to do about the operating-system errors a user can cause, by errno.
OS_ERROR_HINTS = {
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "choose another path",
    errno.ENOSPC: "no space left on the device; free some space or choose another path",
    errno.EDQUOT: "disk quota exceeded; free some space or choose another path",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.EISDIR: "this is a folder, not a file",
    errno.EEXIST: "a file is in the way of a folder",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "the path is too long",
    errno.EMFILE: "too many open files; raise `ulimit -n`",
}


def _is_scratch(name: str) -> bool:
    """Names of the temporary files and locks geoalign writes beside its outputs."""
    return name.startswith(".") and (".part" in name or name.startswith((".geoalign", ".ds.")))


def os_error_message(err: OSError) -> str:
    """One line for an OSError: the path, the system's reason and what to do."""
    text = str(err).strip()
    reason = err.strerror or (text.splitlines()[0] if text else type(err).__name__)
    path = err.filename
    if path is not None and _is_scratch(Path(str(path)).name):
        path = str(Path(str(path)).parent)  # the user's folder, not a staging file's name
    hint = OS_ERROR_HINTS.get(err.errno)
    text = f"{path}: {reason}" if path is not None else reason
    if hint and hint.lower() not in text.lower():
        text += f" ({hint})"
    return text + "."


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
    stop_on_sigterm()
    ctx.obj["verbosity"] = verbose - quiet
    if quiet and progress_mode != "json":
        progress_mode = "off"
    configure_progress(progress_mode)
    configure_messages(verbose - quiet)
