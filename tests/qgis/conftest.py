"""The QGIS tests run under QGIS's own Python (`make test-qgis`, part of `make test`).

The project's .venv has no qgis module, so there these files are not collected; the fixtures are
in qgis_env.py.
"""

from __future__ import annotations

import os

if os.environ.get("GEOALIGN_QGIS_TESTS") != "1":
    collect_ignore_glob = ["test_*.py"]
else:
    from qgis_env import *  # noqa: F401,F403 - fixtures
