"""One progress policy: --progress json gives parseable events, -q silences every bar."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from geoalign.progress import Progress, configure_progress

GEOALIGN = str(Path(sys.executable).parent / "geoalign")


def _run(args, env_mode="bar"):
    env = {**os.environ, "GEOALIGN_PROGRESS": env_mode}
    return subprocess.run([GEOALIGN, *args], capture_output=True, text=True, env=env, timeout=300)


def test_json_mode_writes_one_event_per_line_from_zero_to_done(austin, tmp_path):
    r = _run(["--progress", "json", "align", str(austin["image"]), str(austin["buildings"]),
              "-o", str(tmp_path / "o"), "--method", "local"])
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    align = [e for e in events if e.get("task") == "align"]
    assert align[0]["event"] == "progress" and align[0]["done"] == 0
    assert align[-1]["event"] == "done" and align[-1]["percent"] == 100.0
    assert r.stdout == ""


def test_json_mode_reports_errors_as_an_event(tmp_path):
    r = _run(["--progress", "json", "align", str(tmp_path / "missing.tif"), str(tmp_path / "b.geojson"),
              "-o", str(tmp_path / "o")])
    assert r.returncode != 0
    events = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["error"]
    assert f"Error: {events[0]['text']}" in r.stderr and "no such" in events[0]["text"]


def test_quiet_silences_bars_even_when_the_environment_asks_for_them(austin, tmp_path):
    r = _run(["-q", "align", str(austin["image"]), str(austin["buildings"]), "-o", str(tmp_path / "o"),
              "--method", "local"], env_mode="bar")
    assert r.returncode == 0
    assert "tile/s" not in r.stderr and "it/s" not in r.stderr and "%|" not in r.stderr


def test_progress_counts_and_rejects_unknown_modes(capsys):
    configure_progress("json")
    try:
        with Progress(total=4, desc="t", unit="x") as bar:
            for _ in range(4):
                bar.update()
    finally:
        configure_progress(None)
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert events[0]["done"] == 0 and events[-1] == {"event": "done", "task": "t", "done": 4, "total": 4,
                                                      "unit": "x", "percent": 100.0}
    with pytest.raises(ValueError):
        configure_progress("loud")
