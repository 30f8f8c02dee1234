"""Run the ``geoalign`` command in a child process and stream its progress into Processing.

geoalign is never imported inside QGIS: its PyTorch, rasterio and pyproj wheels carry their own
GDAL and PROJ, and QGIS installers set ``PROJ_LIB``/``PROJ_DATA``/``GDAL_DATA`` to their own,
older data (every CRS lookup of the wheels then fails). The child gets QGIS's environment without
those variables, and without ``PYTHONHOME``/``PYTHONPATH`` (QGIS sets them on Windows; they would
point geoalign's Python at QGIS's libraries).

The child runs with ``--progress json``: one JSON object per line on stderr (progress, messages,
the final one-line error), documented in geoalign's ``progress`` module.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Iterable

from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsSettings

#: QgsSettings key of the executable path (Settings ▸ Options ▸ Processing ▸ Providers ▸ geoalign).
EXECUTABLE_SETTING = "GEOALIGN_EXECUTABLE"
EXECUTABLE_SETTING_KEY = "Processing/Configuration/" + EXECUTABLE_SETTING
#: Oldest geoalign with ``--progress json`` and the output set this plugin loads.
MIN_VERSION = (0, 1, 0)
INSTALL_HINT = ("install it with `pip install geoalign` (Python >= 3.11, outside QGIS), then set its "
                "path in Settings > Options > Processing > Providers > geoalign")
#: Removed from the child's environment (see the module docstring).
STRIPPED_ENV = ("PROJ_LIB", "PROJ_DATA", "GDAL_DATA", "PYTHONHOME", "PYTHONPATH")
#: Seconds a cancelled child gets to clean up after SIGTERM before it is killed.
CANCEL_GRACE_S = 5.0
#: Seconds allowed for ``--version`` and ``--help`` (first start of a fresh install compiles .pyc).
PROBE_TIMEOUT_S = 60.0


def configured_executable() -> str:
    """The path set in the provider's settings ('' when unset)."""
    value = QgsSettings().value(EXECUTABLE_SETTING_KEY, "")
    return str(value or "").strip()


def find_executable(configured: str | None = None) -> str:
    """The geoalign executable: the configured path, else ``geoalign`` on PATH; one-line error."""
    configured = configured_executable() if configured is None else configured.strip()
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise QgsProcessingException(f"geoalign executable {configured!r} (plugin setting) does not "
                                     f"exist or cannot be run: {INSTALL_HINT}.")
    found = shutil.which("geoalign")
    if not found:
        raise QgsProcessingException(f"geoalign executable not found on PATH: {INSTALL_HINT}.")
    return found


def child_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """QGIS's environment minus the variables that would point geoalign at QGIS's own data."""
    env = dict(os.environ if base is None else base)
    for name in STRIPPED_ENV:
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"  # progress lines arrive as they are written
    env["PYTHONIOENCODING"] = "utf-8"
    return env


@dataclass(frozen=True)
class CliInfo:
    """What one geoalign executable is: its version and the options of ``align``."""

    path: str
    version: tuple[int, int, int]
    align_help: str

    @property
    def version_text(self) -> str:
        return ".".join(str(v) for v in self.version)

    def align_supports(self, option: str) -> bool:
        """Whether ``geoalign align`` lists ``option`` (e.g. ``--report``) in its help."""
        return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", self.align_help) is not None


_info_cache: dict[tuple[str, float], CliInfo] = {}


def _probe(path: str, args: list[str]) -> str:
    try:
        done = subprocess.run([path, *args], capture_output=True, text=True, encoding="utf-8",
                              errors="replace", env=child_environment(), timeout=PROBE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise QgsProcessingException(f"{path} could not be run ({err}): {INSTALL_HINT}.") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise QgsProcessingException(f"{path} {' '.join(args)} failed ({last}): {INSTALL_HINT}.")
    return done.stdout


def cli_info(path: str) -> CliInfo:
    """Version and ``align`` options of ``path``; one-line error when it is not a usable geoalign."""
    key = (path, os.path.getmtime(path))
    if key in _info_cache:
        return _info_cache[key]
    text = _probe(path, ["--version"])
    m = re.search(r"geoalign, version (\d+)\.(\d+)\.(\d+)", text)
    if not m:
        raise QgsProcessingException(f"{path} is not geoalign (its --version says {text.strip()[:80]!r}): "
                                     f"{INSTALL_HINT}.")
    version = tuple(int(v) for v in m.groups())
    if version < MIN_VERSION:
        need = ".".join(map(str, MIN_VERSION))
        raise QgsProcessingException(f"geoalign {'.'.join(map(str, version))} at {path} is too old for this "
                                     f"plugin (needs >= {need}): update it with `pip install -U geoalign`.")
    info = CliInfo(path=path, version=version, align_help=_probe(path, ["align", "--help"]))
    _info_cache[key] = info
    return info


def _stop(proc: subprocess.Popen) -> str:
    """SIGTERM to the child's process group (geoalign stops as on Ctrl-C and removes its staging
    files; SIGINT would be ignored by a child of a QGIS started in a shell's background), then
    SIGKILL; returns how it ended, for the log (a child that had already exited is left as it is)."""
    if proc.poll() is not None:
        return f"geoalign had already finished (exit code {proc.returncode})"
    t0 = time.monotonic()
    how = "stopped by SIGTERM"
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        proc.wait(timeout=CANCEL_GRACE_S)
    except (ProcessLookupError, PermissionError):
        pass
    except subprocess.TimeoutExpired:
        how = "killed"
        try:
            if os.name == "posix":
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
    if proc.wait() == 0:  # it exited on its own before the signal (geoalign stopped by one exits 1)
        return "geoalign had already finished (exit code 0)"
    return f"geoalign {how} after {time.monotonic() - t0:.1f} s (exit code {proc.returncode})"


class _EventSink:
    """Turns geoalign's output lines into feedback calls; keeps what a failure message needs."""

    def __init__(self, feedback: QgsProcessingFeedback) -> None:
        self.feedback = feedback
        self.error: str | None = None
        self.tail: deque[str] = deque(maxlen=8)

    def line(self, text: str) -> None:
        text = text.rstrip("\r\n")
        if not text.strip():
            return
        event = None
        if text.startswith("{"):
            try:
                event = json.loads(text)
            except ValueError:
                event = None
        if not isinstance(event, dict) or "event" not in event:
            self.tail.append(text)
            self.feedback.pushConsoleInfo(text)
            return
        kind = event.get("event")
        if kind in ("progress", "done"):
            percent = event.get("percent")
            total = event.get("total")
            label = f"{event.get('task') or 'geoalign'}: {event.get('done')}"
            label += f"/{total} {event.get('unit', '')}" if total else f" {event.get('unit', '')}"
            self.feedback.setProgressText(label.strip())
            if percent is not None:
                self.feedback.setProgress(float(percent))
        elif kind == "message":
            level, message = event.get("level", "info"), str(event.get("text", ""))
            if level in ("warning", "error", "critical"):
                self.feedback.pushWarning(message)
            elif level == "debug":
                self.feedback.pushDebugInfo(message)
            else:
                self.feedback.pushInfo(message)
        elif kind == "error":
            self.error = str(event.get("text", "")).strip() or None

    def failure(self, returncode: int) -> str:
        """geoalign's one-line error (its JSON event, else its last line without click's prefix)."""
        if self.error:
            return self.error
        for text in reversed(self.tail):
            text = text.strip()
            if text and not text.startswith(("Traceback", "Usage:", "Try ")):
                return text[len("Error: "):] if text.startswith("Error: ") else text
        return f"geoalign stopped with exit code {returncode} and no message"


def run_geoalign(executable: str, args: Iterable[str], feedback: QgsProcessingFeedback) -> None:
    """Run ``geoalign --progress json ARGS``; progress and messages go to ``feedback``.

    Cancelling ``feedback`` stops the child (see :func:`_stop`) and raises; a failed run raises
    with geoalign's own one-line message.
    """
    cmd = [executable, "--progress", "json", *args]
    feedback.pushCommandInfo(" ".join(shlex.quote(c) for c in cmd))
    popen_kw: dict = {}
    if os.name == "posix":
        popen_kw["start_new_session"] = True  # its own process group: cancel stops all of it
    else:
        popen_kw["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW  # type: ignore[attr-defined]
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=child_environment(), text=True,
                                encoding="utf-8", errors="replace", bufsize=1, **popen_kw)
    except OSError as err:
        raise QgsProcessingException(f"{executable} could not be started ({err}): {INSTALL_HINT}.") from None
    feedback.pushDebugInfo(f"geoalign pid {proc.pid}")
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for text in proc.stdout:
            lines.put(text)
        lines.put(None)

    reader = threading.Thread(target=read, name="geoalign-output", daemon=True)
    reader.start()
    sink = _EventSink(feedback)
    try:
        while True:
            if feedback.isCanceled():
                feedback.pushDebugInfo(_stop(proc))
                if proc.returncode == 0:  # the cancel came after geoalign had written its outputs
                    raise QgsProcessingException("Cancelled after geoalign had finished: its outputs are "
                                                 "complete on disk; nothing was loaded.")
                raise QgsProcessingException("Cancelled: geoalign was stopped; nothing was loaded.")
            try:
                text = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if text is None:
                break
            sink.line(text)
        returncode = proc.wait()
    finally:
        if proc.poll() is None:  # an exception in a feedback call: never leave the child running
            _stop(proc)
        reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
    if returncode != 0:
        raise QgsProcessingException(sink.failure(returncode))
