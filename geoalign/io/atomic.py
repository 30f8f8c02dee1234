"""Atomic outputs: a file appears complete or not at all.

Write to a temporary sibling, then ``os.replace`` it onto the target; on any error the temporary
is removed, so an interrupted run never leaves a partial output (and never touches an input).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; move it onto ``target`` on success.

    ``suffix`` defaults to the target's own suffix, so GDAL drivers guessed from the
    extension still work on the temporary file.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = target.suffix if suffix is None else suffix
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # drivers such as GPKG refuse to open an existing empty file
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, *, marker: str, ours: Callable[[str], bool],
               inputs: Iterable[str | os.PathLike | None] = ()) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; rename it onto ``target`` on success.

    An existing ``target`` is replaced only once the new one is complete, and only when it is
    empty or a folder geoalign wrote (``marker`` and ``ours``:
    :func:`geoalign.io.guard.check_replaceable_dir`); any other folder is refused before anything
    is written, so the user's files (and ``inputs``) are never deleted.
    """
    from geoalign.io.guard import check_replaceable_dir

    check_replaceable_dir(target, marker=marker, ours=ours, inputs=inputs)
    target = Path(os.path.abspath(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old)  # an empty folder made by mkdtemp: rename replaces it
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
