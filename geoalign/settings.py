"""Settings read from the environment, in one place; functions read them when called.

* ``GEOALIGN_CACHE_DIR``: folder of the download cache (default ``$XDG_CACHE_HOME/geoalign``,
  else ``~/.cache/geoalign``);
* ``GEOALIGN_PROGRESS``: ``bar`` (default), ``json`` (one JSON line per event on stderr, for
  programs driving geoalign) or ``off``; the CLI's ``--progress`` and ``-q`` take precedence;
* ``GEOALIGN_OVERPASS_URL``: the Overpass API that ``fetch buildings --source osm`` asks
  (default: osmnx's), e.g. a mirror or a local server.
"""

from __future__ import annotations

import os
from pathlib import Path

PROGRESS_MODES = ("bar", "json", "off")


def cache_folder() -> Path:
    """``$GEOALIGN_CACHE_DIR``, else ``$XDG_CACHE_HOME/geoalign``, else ``~/.cache/geoalign``."""
    if os.environ.get("GEOALIGN_CACHE_DIR"):
        return Path(os.environ["GEOALIGN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "geoalign"


def progress_mode_from_env() -> str:
    """``$GEOALIGN_PROGRESS`` when it names a mode, else ``bar``."""
    mode = os.environ.get("GEOALIGN_PROGRESS", "").strip().lower()
    return mode if mode in PROGRESS_MODES else "bar"


def overpass_url_from_env() -> str | None:
    """``$GEOALIGN_OVERPASS_URL`` when set, else None (osmnx's own default)."""
    return os.environ.get("GEOALIGN_OVERPASS_URL") or None
