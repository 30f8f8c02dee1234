"""How messages reach users: logging and warnings on stderr, one line each."""

from __future__ import annotations

import logging
import os
import sys
import warnings


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        import json

        return json.dumps({"event": "message", "level": record.levelname.lower(),
                           "text": record.getMessage()}, ensure_ascii=False)


def configure_messages(verbosity: int = 0) -> None:
    """Log level from verbosity (0: warnings, 1: info, 2: debug, -1: errors only).

    Warnings are routed through logging and printed as one line, ``CategoryName: message``, with
    no file path and no source line.
    """
    level = max(logging.DEBUG, logging.WARNING - 10 * verbosity)
    logging.basicConfig(stream=sys.stderr, level=level, format="%(levelname)s: %(message)s")
    logging.getLogger("geoalign").setLevel(level)
    from geoalign.progress import progress_mode

    if progress_mode() == "json":  # one JSON line per message, like the progress events
        for handler in logging.getLogger().handlers:
            handler.setFormatter(_JsonFormatter())
    logging.captureWarnings(True)
    if verbosity < 2:
        # GDAL's own handler prints driver errors straight to stderr ("_tiffWriteProc: No space
        # left on device."); the error reaches the user as geoalign's one line instead.
        os.environ.setdefault("CPL_LOG", os.devnull)
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"{category.__name__}: {message}"
