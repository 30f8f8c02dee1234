"""What ``--report`` costs: ``geoalign align`` and ``geoalign align --report`` in turns on the
4000×4000 mosaic of :mod:`benchmarks.align_speed` (the default pipeline, local+learned).

Each run is a subprocess (a fresh Python, so its peak RSS is its own); the two commands take
turns ``--repeats`` times (A B A B …: the shared machine's speed drifts over minutes), and the
ratio of the report's wall time to align's is taken pair by pair, then the median. The report's
own share (``timings_s.trust`` and ``report_files`` of ``report/report.json``) and the load
average before and after are recorded. Target: ratio ≤ 1.5, peak RSS as ``align``'s.
``--baseline DIR`` adds the same two commands run from another checkout's code (e.g. ``git
archive`` of an older commit, unpacked; imported ahead of this environment's editable install)
to the same turns.

Writes ``benchmarks/results/report_speed.json``.

    python -m benchmarks.report_speed [--tiles 4] [--repeats 2] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.align_speed import RESULTS, make_mosaic, run_align
from geoalign.io.writers import write_json

COMMANDS = {"align": (), "align --report": ("--report",)}


def _geoalign_from(code: Path) -> tuple[str, ...]:
    """A ``geoalign`` command that imports ``code``'s packages instead of the editable install's."""
    boot = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
            f"sys.path.insert(0, {str(code)!r}); sys.argv[0] = 'geoalign'; "
            "from cli.main import main; sys.exit(main())")
    return (sys.executable, "-c", boot)


def _run(image: Path, vec: Path, out: Path, extra: tuple[str, ...], code: Path | None) -> dict:
    return run_align(image, vec, out, "default", extra, None if code is None else _geoalign_from(code))


def _summary(runs: dict[str, list[dict]]) -> dict:
    a, b = runs["align"], runs["align --report"]
    ratio = [y["command_s"] / x["command_s"] for x, y in zip(a, b)]
    return {
        "report_over_align": round(float(np.median(ratio)), 2), "ratios": [round(x, 2) for x in ratio],
        "command_s": {n: [round(r["command_s"], 1) for r in rs] for n, rs in runs.items()},
        "work_s": {n: [round(r["work_s"], 1) for r in rs] for n, rs in runs.items()},
        "peak_rss_gb": {n: round(max(r["peak_rss_gb"] for r in rs), 2) for n, rs in runs.items()},
        "report_own_s": [r["report_s"] for r in b],
        "load_1min_after_each": {n: [round(r["load_1min_after"], 1) for r in rs] for n, rs in runs.items()},
    }


def measure(tiles: int, repeats: int, baseline: Path | None = None) -> dict:
    codes = {"this": None} if baseline is None else {"this": None, "baseline": baseline}
    runs = {c: {name: [] for name in COMMANDS} for c in codes}
    load = {"before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tdir:
        tmp = Path(tdir)
        image, vec, side = make_mosaic(tmp, tiles)
        for k in range(repeats):
            for code, path in codes.items():
                for name, extra in COMMANDS.items():
                    out = tmp / f"out_{code}_{k}_{len(extra)}"
                    t0 = time.perf_counter()
                    r = _run(image, vec, out, extra, path)
                    r["load_1min_after"] = os.getloadavg()[0]
                    if extra:
                        timings = json.loads((out / "report/report.json").read_text())["timings_s"]
                        r["report_s"] = {k2: timings[k2] for k2 in ("trust", "report_files")}
                    runs[code][name].append(r)
                    print(f"run {k + 1}/{repeats} {code} {name}: {r['command_s']:.1f} s command, "
                          f"{r['work_s']:.1f} s work, peak RSS {r['peak_rss_gb']:.2f} GB, "
                          f"load {r['load_1min_after']:.1f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    load["after"] = os.getloadavg()
    out = {"raster_px": [side, side], "cpu_cores": os.cpu_count(), "repeats": repeats,
           **_summary(runs["this"]), "load_average": load, "target": {"report_over_align": 1.5},
           "command": "python -m benchmarks.report_speed"}
    if baseline is not None:
        out["baseline"] = {"code": str(baseline), **_summary(runs["baseline"])}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=4, help="mosaic of N×N sample crops (4 → 4000×4000 px)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS / "report_speed.json")
    ap.add_argument("--baseline", type=Path, default=None, help="another checkout's code, measured in the same turns")
    args = ap.parse_args()
    result = measure(args.tiles, args.repeats, args.baseline)
    write_json(result, args.out)
    print(json.dumps({k: result[k] for k in ("report_over_align", "ratios", "command_s", "peak_rss_gb")}, indent=2))


if __name__ == "__main__":
    main()
