"""Pre-registration of training labels: remove each source's systematic offset before D0.

Why: the label offsets of the bundled training sources are not zero-mean. One global translation
per source (edge correlation, :mod:`geoalign.baselines.global_shift`) moves most of them west and
north (Rio chips up to 6 px at 0.3 m, Atlanta 2.3 px, Austin 1.0 px). Iterative realignment
removes *random* label noise; an offset shared by a whole source is the kind of error it cannot
average away, so it is taken out first, with one translation per source, leaving the spatially
varying noise for the realignment rounds. (Measured so far: a 300-step fine-tune on pre-registered
data did not change the network's own drift at alignment, which varies between runs —
benchmarks/fixed_point.py; the full retrain with it is pending.)

Each source's buildings are aligned with ``geoalign align``'s machinery (same attributes, same
vertices), written to ``out_dir/<k>_<image stem>.gpkg``; the per-source offsets go to
``out_dir/preregister.json``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Sequence


from geoalign.dataset.config import SourcePair
from geoalign.io.atomic import atomic_path
from geoalign.progress import progress as progress_bar

PREREGISTER_METHODS = ("global", "local")
REPORT = "preregister.json"


def preregister_sources(sources: Sequence[SourcePair], out_dir: str | Path, *, method: str = "global",
                        progress: bool = True) -> list[SourcePair]:
    """The sources with their buildings aligned by a classical ``method`` (files in ``out_dir``)."""
    from geoalign.align import align_raster, resolve_predictor

    if method not in PREREGISTER_METHODS:
        raise ValueError(f"unknown pre-registration method {method!r}; choose among {PREREGISTER_METHODS}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    predictor, name, _ = resolve_predictor(method)
    report, result = [], []
    for k, src in enumerate(progress_bar(sources, desc=f"pre-registering ({method})", unit="source", enabled=progress)):
        target = out_dir / f"{k}_{Path(src.image).stem}.gpkg"
        with tempfile.TemporaryDirectory(dir=out_dir) as tdir:
            res = align_raster(src.image, src.buildings, tdir, predictor, method=name, show_progress=False)
            with atomic_path(target) as tmp:
                Path(res.paths["gpkg"]).replace(tmp)
        report.append({"image": str(src.image), "buildings": str(src.buildings), "preregistered": str(target),
                       "median_shift_m": res.median_shift_m})
        result.append(replace(src, buildings=target))
    with atomic_path(out_dir / REPORT) as tmp:
        tmp.write_text(json.dumps({"method": method, "sources": report}, indent=2))
    return result
