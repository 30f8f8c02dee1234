"""How messages reach users: logging and warnings on stderr, one line each."""

from __future__ import annotations

import logging
import sys
import warnings


def configure_messages(verbosity: int = 0) -> None:
    """Log level from verbosity (0: warnings, 1: info, 2: debug, -1: errors only).

    Warnings are routed through logging and printed as one line, ``CategoryName: message``, with
    no file path and no source line.
    """
    level = max(logging.DEBUG, logging.WARNING - 10 * verbosity)
    logging.basicConfig(stream=sys.stderr, level=level, format="%(levelname)s: %(message)s")
    logging.getLogger("geoalign").setLevel(level)
    logging.captureWarnings(True)
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"{category.__name__}: {message}"
