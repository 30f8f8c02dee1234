"""Pre-registration of training labels: remove each source's systematic offset before D0.

Why: the label offsets of the bundled training sources are not zero-mean. One global translation
per source (edge correlation, :mod:`geoalign.baselines.global_shift`) moves most of them west and
north (Rio chips up to 6 px at 0.3 m, Atlanta 2.3 px, Austin 1.0 px). Iterative realignment
removes *random* label noise; an offset shared by a whole source is the kind of error it cannot
average away, so it is taken out first, with one translation per source, leaving the spatially
varying noise for the realignment rounds. (A 300-step fine-tune on pre-registered data leaves the
network's own drift at alignment unchanged within its run-to-run variation:
``benchmarks/fixed_point.py``.)

Each source's buildings are aligned by :func:`geoalign.inference.layer.align_layer` (the aligner
of ``geoalign align``: same attributes, same vertices, plus ``shift_m``, ``outside_image`` and
``partly_outside``), written to ``out_dir/<k>_<image stem>.gpkg``; the per-source median shifts go
to ``out_dir/preregister.json``. ``out_dir`` is written as one unit (a temporary sibling renamed onto
it) and only replaces a folder that is empty or that geoalign wrote (its ``preregister.json`` names
a ``geoalign_version`` and it holds nothing else than such files): a user's folder of that name is
refused before anything is written (:func:`geoalign.io.guard.check_replaceable_dir`).
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from geoalign.baselines import classical_predictor
from geoalign import __version__
from geoalign.dataset.config import SourcePair
from geoalign.errors import OptionError
from geoalign.inference.layer import align_layer, moved_mask
from geoalign.io.atomic import atomic_dir
from geoalign.io.raster import RasterReader
from geoalign.io.vectors import read_vectors, write_vectors
from geoalign.progress import progress as progress_bar

PREREGISTER_METHODS = ("global", "local")
SUMMARY = "preregister.json"
_ALIGNED_NAME = re.compile(r"\d+_.+\.gpkg")


def is_preregister_entry(name: str) -> bool:
    """Whether ``name`` is one a pre-registration folder holds (only these are written there)."""
    return name == SUMMARY or _ALIGNED_NAME.fullmatch(name) is not None


def preregister_sources(sources: Sequence[SourcePair], out_dir: str | Path, *, method: str = "global",
                        gsd_m: float | None = None, search_px: int = 40,
                        progress: bool = True) -> list[SourcePair]:
    """The sources with their buildings aligned by a classical ``method`` (files in ``out_dir``),
    working at ``gsd_m`` (None: each image's own grid; ``search_px`` in pixels of that grid)."""
    if method not in PREREGISTER_METHODS:
        raise OptionError(f"unknown pre-registration method {method!r}; choose among {PREREGISTER_METHODS}")
    out_dir = Path(out_dir)
    inputs = [p for src in sources for p in (src.image, src.buildings)]
    summary, result = [], []
    with atomic_dir(out_dir, marker=SUMMARY, ours=is_preregister_entry, inputs=inputs) as tmp:
        for k, src in enumerate(progress_bar(sources, desc=f"pre-registering ({method})", unit="source",
                                             enabled=progress)):
            name = f"{k}_{Path(src.image).stem}.gpkg"
            predictor = classical_predictor(method, search_px=search_px, gsd_m=gsd_m)  # fresh: no state kept
            with RasterReader(src.image) as reader, tempfile.TemporaryDirectory(dir=tmp) as tdir:
                aligned, _ = align_layer(reader, read_vectors(src.buildings), predictor, Path(tdir) / "field.tif",
                                         show_progress=False, source=str(src.buildings))
            write_vectors(aligned, tmp / name)
            target = out_dir / name  # where it lies once the folder is in place
            shifts = aligned["shift_m"].to_numpy()[moved_mask(aligned)]
            summary.append({"image": str(src.image), "buildings": str(src.buildings), "preregistered": str(target),
                            "median_shift_m": float(np.median(shifts)) if len(shifts) else 0.0})
            result.append(replace(src, buildings=target))
        (tmp / SUMMARY).write_text(json.dumps({"geoalign_version": __version__, "method": method,
                                               "gsd_m": gsd_m, "sources": summary}, indent=2))
    return result
