"""A run stopped by SIGTERM ends as one stopped by Ctrl-C: exit code 1, nothing written, no
staging files left, even when the command ignores SIGINT (a shell's background jobs do)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from geoalign.io.output_set import STAGING_PREFIX

GEOALIGN = str(Path(sys.executable).parent / "geoalign")


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_sigterm_stops_an_align_that_ignores_sigint_and_writes_nothing(kampala, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([GEOALIGN, "--progress", "json", "align", str(kampala["image"]),
                             str(kampala["buildings"]), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_ignore_sigint)
    assert proc.stdout is not None
    for line in proc.stdout:  # the tile loop has started: its staging folder exists
        if line.startswith("{") and json.loads(line).get("event") == "progress":
            break
    assert proc.poll() is None, "the run finished before it could be stopped"
    proc.send_signal(signal.SIGINT)  # ignored
    time.sleep(0.3)
    assert proc.poll() is None
    stopped_at = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1, rest
    assert time.monotonic() - stopped_at < 5.0
    left = {p.name for p in out.iterdir()} if out.exists() else set()
    assert not left & {"aligned.gpkg", "aligned.geojson", "displacement.tif", "run.json", "overlay.png"}
    assert not [name for name in left if name.startswith(STAGING_PREFIX)]
