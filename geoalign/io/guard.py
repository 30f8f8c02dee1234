"""Guards that run before a command writes anything: its outputs never replace its inputs, and a
folder it replaces holds only what geoalign wrote there.

Paths are compared as files, not as strings: the same file reached through a symbolic link, a
hard link, ``..`` or a relative path counts as the same (``os.path.samefile`` when both exist).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable

from geoalign.errors import GeoalignError


class OutputIsInputError(GeoalignError):
    """An output path names one of the command's inputs (it would be overwritten)."""


class OutputNotOursError(GeoalignError):
    """An output folder holds files geoalign did not write (replacing it would delete them)."""


def _key(path: Path) -> tuple:
    try:
        st = path.stat()
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", str(Path(os.path.abspath(path)).resolve()))


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file (existing: same inode; else same resolved path)."""
    return _key(Path(a)) == _key(Path(b))


def refuse_output_over_input(outputs: Iterable[str | os.PathLike | None],
                             inputs: Iterable[str | os.PathLike | None]) -> None:
    """Raise :class:`OutputIsInputError` if an output is an input, or two outputs are one file."""
    ins = [Path(p) for p in inputs if p is not None and not _is_url(p)]
    outs = [Path(p) for p in outputs if p is not None]
    in_keys = {_key(p): p for p in ins}
    seen: dict[tuple, Path] = {}
    for out in outs:
        key = _key(out)
        if key in in_keys:
            raise OutputIsInputError(
                f"{out}: this output is the input {in_keys[key]}; writing it would destroy the "
                "input. Choose another output path.")
        if key in seen:
            raise OutputIsInputError(f"{out}: two outputs of this command are the same file "
                                     f"({seen[key]}); give them different paths.")
        seen[key] = out


def refuse_folder_over_input(folder: str | os.PathLike, names: Iterable[str],
                             inputs: Iterable[str | os.PathLike | None]) -> None:
    """:func:`refuse_output_over_input` for the files ``names`` a command writes into ``folder``."""
    refuse_output_over_input([Path(folder) / n for n in names], inputs)


def _is_url(path: str | os.PathLike) -> bool:
    return "://" in str(path)


def check_replaceable_dir(folder: str | os.PathLike, *, marker: str,
                          ours: Callable[[str], bool],
                          inputs: Iterable[str | os.PathLike | None] = ()) -> None:
    """Refuse to replace ``folder`` unless it is absent, empty, or a folder geoalign wrote.

    A folder counts as geoalign's when ``marker`` (a JSON file) names a ``geoalign_version`` and
    every entry at its top level satisfies ``ours(name)``. Replacing the folder deletes what it
    holds, so anything else (the user's notes, the inputs themselves, the working directory)
    stops the command before it writes. The working directory and its parents are refused too:
    replacing them would pull the ground from under the shell that ran the command.
    """
    path = Path(os.path.abspath(folder))
    if path.is_symlink():
        raise OutputNotOursError(f"{folder}: the output folder is a symbolic link; give a real folder "
                                 "(geoalign replaces the folder it writes).")
    if path.exists() and not path.is_dir():
        raise OutputNotOursError(f"{folder}: exists and is not a folder; choose another output folder.")
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise OutputNotOursError(f"{folder}: the output folder holds the working directory; choose a "
                                 "new folder inside it, e.g. -o dataset.")
    for p in inputs:
        if p is None or _is_url(p):
            continue
        inp = Path(os.path.abspath(p)).resolve()
        if inp == resolved or resolved in inp.parents:
            raise OutputNotOursError(f"{folder}: the output folder holds the input {p}; replacing it "
                                     "would delete the input. Choose a new or empty folder.")
    if not path.exists():
        return
    entries = sorted(e.name for e in path.iterdir())
    if not entries:
        return
    strangers = [e for e in entries if not ours(e)]
    if not strangers and written_by_geoalign(path / marker):
        return
    example = (strangers or entries)[0]
    raise OutputNotOursError(
        f"{folder}: the folder holds files geoalign did not write (e.g. {example}); replacing it "
        "would delete them. Choose a new or empty folder.")


def written_by_geoalign(marker: Path) -> bool:
    """Whether ``marker`` is a JSON file naming a ``geoalign_version`` (datasets, run.json)."""
    try:
        return "geoalign_version" in json.loads(marker.read_text())
    except (OSError, ValueError, TypeError):
        return False
