"""Progress: one policy for every long loop of geoalign, decided here and nowhere else.

The mode is ``bar`` (tqdm on stderr), ``json`` or ``off``. The CLI sets it once from
``--progress`` and ``-q`` (:func:`configure_progress`); library callers may too; otherwise
``$GEOALIGN_PROGRESS`` (:mod:`geoalign.settings`) decides. A loop passes ``enabled=False`` when
its caller asked for no bar (e.g. an inner loop of a bigger job), never to turn a bar on.

``json`` writes one JSON object per line on stderr, for programs that drive geoalign (the QGIS
plugin reads them):

* ``{"event": "progress", "task": "align", "done": 3, "total": 12, "unit": "tile", "percent": 25.0}``
  at the start of a loop, at most once a second and every whole percent after that, and once
  more with ``"event": "done"`` at its end (``total`` and ``percent`` are ``null`` when unknown);
* ``{"event": "message", "level": "warning", "text": "..."}`` for every log message
  (:mod:`geoalign.messages`);
* ``{"event": "error", "text": "..."}`` for the one-line error a failed command ends with.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any, Iterable, Iterator

from geoalign.settings import PROGRESS_MODES, progress_mode_from_env

_mode: str | None = None
_lock = threading.Lock()


def configure_progress(mode: str | None) -> None:
    """Set the mode for this process (``None``: back to ``$GEOALIGN_PROGRESS``)."""
    global _mode
    if mode is not None and mode not in PROGRESS_MODES:
        raise ValueError(f"progress mode must be one of {PROGRESS_MODES}, got {mode!r}")
    _mode = mode


def progress_mode() -> str:
    """The mode in force: the configured one, else the environment's."""
    return _mode if _mode is not None else progress_mode_from_env()


def emit_event(event: str, **fields: Any) -> None:
    """One JSON line on stderr (``json`` mode only)."""
    if progress_mode() != "json":
        return
    line = json.dumps({"event": event, **fields}, ensure_ascii=False, default=str)
    with _lock:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


class Progress:
    """A progress indicator over a loop: iterate it, or call :meth:`update`; close it at the end.

    Behaves like the subset of tqdm geoalign uses (``update``, ``set_postfix``, ``write``,
    ``close``, context manager) in every mode.
    """

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", enabled: bool = True, initial: int = 0) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit = total, desc, unit
        self.done = int(initial)
        self.mode = progress_mode() if enabled else "off"
        self._bar = None
        self._last_emit = 0.0
        self._last_percent = -1.0
        self._closed = False
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr,
                             leave=False, dynamic_ncols=True)
        elif self.mode == "json":
            self._emit("progress", force=True)

    def _percent(self) -> float | None:
        if not self.total:
            return None
        return round(100.0 * min(self.done, self.total) / self.total, 1)

    def _emit(self, event: str, *, force: bool = False) -> None:
        percent = self._percent()
        now = time.monotonic()
        if not force:
            if now - self._last_emit < 1.0:
                return
            if percent is not None and int(percent) <= int(self._last_percent):
                return
        self._last_emit = now
        self._last_percent = percent if percent is not None else self._last_percent
        emit_event(event, task=self.desc, done=self.done, total=self.total, unit=self.unit, percent=percent)

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("this Progress was made without an iterable: call update()")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "json":
            self._emit("progress")

    def set_postfix(self, **values: Any) -> None:
        if self._bar is not None:
            self._bar.set_postfix(**values)

    def write(self, text: str) -> None:
        """A line for the user on stderr that does not break the bar."""
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        elif self.mode == "json":
            emit_event("message", level="info", text=text)
        else:  # no bar: a log message (shown with -v)
            logging.getLogger("geoalign.progress").info(text)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "json":
            self._emit("done", force=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(iterable: Iterable | None = None, **kwargs: Any) -> Progress:
    """:class:`Progress` over ``iterable`` (see it for the keywords)."""
    return Progress(iterable, **kwargs)
