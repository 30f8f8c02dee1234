"""A run's output files as one unit: all of them from the same run, or the previous set untouched.

Files are written into a staging folder inside the output folder, then moved into place one by
one; ``run.json`` (the list of files with their SHA-256 and size) is removed before the first
move and written last, so a set is complete exactly when ``run.json`` is present and matches
(:func:`verify_output_set`). A lock file makes a second run into the same folder fail at once
instead of interleaving its files with the first one's. Files the run does not name are never
touched; staging folders left by a killed run are removed by the next run into that folder.

A file a run would replace must be geoalign's: listed in the folder's ``run.json``, or in the
pending list a run writes before its first move (so the rerun of a killed run may replace what
it had moved). Any other file of the same name, and any of the command's inputs, stops the run
before it writes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from geoalign import __version__
from geoalign.errors import GeoalignError
from geoalign.io.guard import OutputNotOursError, refuse_folder_over_input, written_by_geoalign

RUN_MANIFEST = "run.json"
LOCK = ".geoalign.lock"
PENDING = ".geoalign-pending.json"
STAGING_PREFIX = ".geoalign-staging."


class OutputBusyError(GeoalignError):
    """Another geoalign run is writing into the same output folder."""


class NoSpaceError(GeoalignError):
    """The output folder's device is full."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    fd = os.open(out_dir / LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EACCES):
                raise OutputBusyError(f"{out_dir}: another geoalign run is writing into this folder; "
                                      "wait for it or choose another -o.") from None
            raise
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def output_set(out_dir: str | Path, names: Sequence[str], *, command: str = "",
               inputs: Iterable[str | os.PathLike | None] = ()) -> Iterator[Path]:
    """Yield a staging folder; on success move the files ``names`` (relative paths, written there
    by the caller) into ``out_dir`` and write ``run.json`` last.

    Refused before anything is written when one of ``names`` (or ``run.json``) is one of
    ``inputs`` or a file geoalign did not write. On failure nothing in ``out_dir`` changes, and a
    folder this call created is removed again.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputNotOursError(f"{out_dir}: exists and is not a folder; choose another output folder.")
    refuse_folder_over_input(out_dir, [*names, RUN_MANIFEST, LOCK, PENDING], inputs)
    if out_dir.exists():
        _refuse_strangers(out_dir, names)  # before the lock file appears; again under the lock
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with _locked(out_dir):
            _refuse_strangers(out_dir, names)
            for stale in out_dir.glob(STAGING_PREFIX + "*"):
                shutil.rmtree(stale, ignore_errors=True)  # a killed run's
            stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
            try:
                yield stage
                missing = [n for n in names if not (stage / n).is_file()]
                if missing:
                    raise RuntimeError(f"outputs not written: {missing}")
                entries = {n: {"sha256": _sha256(stage / n), "bytes": (stage / n).stat().st_size}
                           for n in names}
                pending = stage / PENDING
                pending.write_text(json.dumps(sorted({*names, *_listed(out_dir)})))
                os.replace(pending, out_dir / PENDING)
                with contextlib.suppress(FileNotFoundError):
                    (out_dir / RUN_MANIFEST).unlink()  # the old set stops being complete here
                for n in names:
                    (out_dir / n).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(stage / n, out_dir / n)
                manifest = {"geoalign_version": __version__, "command": command,
                            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "files": entries}
                tmp = stage / RUN_MANIFEST
                tmp.write_text(json.dumps(manifest, indent=2) + "\n")
                os.replace(tmp, out_dir / RUN_MANIFEST)
                (out_dir / PENDING).unlink()
            except OSError as err:  # measured before the staged files are removed
                free = shutil.disk_usage(stage).free
                if getattr(err, "errno", None) == errno.ENOSPC or free < 4 * 1024 * 1024:
                    raise NoSpaceError(f"{out_dir}: no space left on the device ({free // 1024} KiB "
                                       "free); free some space or choose another -o.") from None
                raise
            finally:
                shutil.rmtree(stage, ignore_errors=True)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                (out_dir / LOCK).unlink()
                out_dir.rmdir()  # only if empty: never removes anything else
        raise


def _listed(out_dir: Path) -> set[str]:
    """Files geoalign wrote into ``out_dir``: its ``run.json`` and a killed run's pending list."""
    listed: set[str] = set()
    try:
        manifest = json.loads((out_dir / RUN_MANIFEST).read_text())
        if isinstance(manifest, dict) and "geoalign_version" in manifest:
            listed |= set(manifest.get("files", {}))
    except (OSError, ValueError, TypeError):
        pass
    try:
        pending = json.loads((out_dir / PENDING).read_text())
        if isinstance(pending, list):
            listed |= {str(n) for n in pending}
    except (OSError, ValueError, TypeError):
        pass
    return listed


def _refuse_strangers(out_dir: Path, names: Sequence[str]) -> None:
    listed = _listed(out_dir)
    run_json = out_dir / RUN_MANIFEST
    if run_json.exists() and not written_by_geoalign(run_json):
        raise OutputNotOursError(f"{run_json} exists and was not written by geoalign; move it or "
                                 "choose another output folder.")
    for n in names:
        if (out_dir / n).exists() and n not in listed:
            raise OutputNotOursError(f"{out_dir / n} exists and was not written by geoalign; move it "
                                     "or choose another output folder.")


def verify_output_set(out_dir: str | Path) -> list[str]:
    """Problems with the set in ``out_dir`` (empty: complete and consistent)."""
    out_dir = Path(out_dir)
    path = out_dir / RUN_MANIFEST
    if not path.exists():
        return [f"{path} is missing: the set is incomplete"]
    files = json.loads(path.read_text()).get("files", {})
    problems = []
    for name, entry in files.items():
        f = out_dir / name
        if not f.is_file():
            problems.append(f"{name} is missing")
        elif f.stat().st_size != entry["bytes"] or _sha256(f) != entry["sha256"]:
            problems.append(f"{name} is not the file of this run")
    return problems
