"""``build_dataset``: sources → multiscale pairs on disk, deterministic for a given seed.

Memory stays bounded: rasters are read one patch window at a time, and each (scale, split) keeps
at most one shard in memory. The output folder appears atomically when complete.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from geoalign import __version__
from geoalign.dataset.cascade import make_cascade_pair, residual_at_edges_px
from geoalign.dataset.config import DatasetConfig, SourcePair
from geoalign.dataset.pairs import BuildingIndex, make_pair
from geoalign.dataset.sampling import patch_windows
from geoalign.dataset.shards import ShardWriter
from geoalign.errors import EmptyInputError
from geoalign.grid import PixelGrid, check_overlap, reproject_to
from geoalign.io.atomic import atomic_dir
from geoalign.io.guard import check_replaceable_dir
from geoalign.io.raster import RasterReader
from geoalign.io.vectors import read_buildings
from geoalign.progress import progress as progress_bar

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
PREVIEW = "preview.png"


def is_dataset_entry(name: str) -> bool:
    """Whether ``name`` is one a dataset folder holds at its top level (build and preview write
    only these), so that replacing a dataset never deletes anything else."""
    return name in (MANIFEST, PREVIEW) or (name.startswith("scale") and name[5:].isdigit())
FIELD_UNITS = ("pixels of the pair's own scale; dx east (columns), dy south (rows); "
               "what the misaligned map shows at q belongs at q + field(q)")


@dataclass
class BuildSummary:
    path: Path
    counts: dict[str, dict[str, int]]
    seconds: float

    @property
    def total(self) -> int:
        return sum(sum(v.values()) for v in self.counts.values())

    def __str__(self) -> str:
        parts = ", ".join(
            f"scale {s}: {c.get('train', 0)} train / {c.get('val', 0)} val" for s, c in self.counts.items()
        )
        rate = self.total / self.seconds if self.seconds > 0 else float("nan")
        return f"{self.total} pairs in {self.seconds:.1f} s ({rate:.1f} pairs/s) → {self.path} ({parts})"


def write_manifest(root: Path, *, gsd_m: float | None, config: DatasetConfig, sources: list[dict],
                   counts: dict, shards: dict) -> Path:
    """``root/manifest.json``: what every dataset (built or synthetic) says about itself;
    ``counts`` maps scale → split → pairs, ``shards`` "scale/split" → shard stems."""
    manifest = {
        "format_version": FORMAT_VERSION, "geoalign_version": __version__,
        "gsd_m": gsd_m, "config": config.to_json(), "sources": sources, "field_units": FIELD_UNITS,
        "counts": {str(s): c for s, c in counts.items()}, "shards": shards,
    }
    path = Path(root) / MANIFEST
    path.write_text(json.dumps(manifest, indent=2))
    return path


def load_source(pair: SourcePair) -> tuple[RasterReader, BuildingIndex, dict]:
    """Open a source's raster, read its buildings into its pixel frame; check they overlap."""
    reader = RasterReader(pair.image)
    try:
        grid = PixelGrid.of(reader)
        gdf = reproject_to(read_buildings(pair.buildings), reader.crs, source=str(pair.buildings))
        check_overlap(tuple(gdf.total_bounds), grid, what=f"buildings of {pair.buildings}")
        geoms_px = np.asarray(grid.to_pixels(gdf.geometry.values), dtype=object)
        info = {
            **pair.to_json(), "crs": reader.crs.to_string(), "gsd_m": reader.gsd_m,
            "width": reader.width, "height": reader.height, "buildings": len(gdf),
            "buildings_path": str(pair.buildings),
        }
        return reader, BuildingIndex(geoms_px), info
    except BaseException:
        reader.close()
        raise


def check_dataset_output(sources: Sequence[SourcePair], out_dir: str | Path) -> list[Path]:
    """Refuse an output folder that is not empty and not a dataset geoalign wrote, or that holds an
    input (before any work: ``--preregister`` runs first); returns the input files."""
    inputs = [p for s in sources for p in (s.image, s.buildings)]
    check_replaceable_dir(Path(out_dir), marker=MANIFEST, ours=is_dataset_entry, inputs=inputs)
    return inputs


def build_dataset(
    sources: Sequence[SourcePair], out_dir: str | Path, config: DatasetConfig = DatasetConfig(),
    *, progress: bool = True,
) -> BuildSummary:
    """Cut pairs of every scale from every source into ``out_dir`` (replaced atomically)."""
    if not sources:
        raise EmptyInputError("no sources given: pass at least one image and its buildings.")
    out_dir = Path(out_dir)
    inputs = check_dataset_output(sources, out_dir)
    start = time.perf_counter()
    loaded = [load_source(s) for s in sources]
    try:
        gsd_m = config.gsd_m or loaded[0][2]["gsd_m"]
        with atomic_dir(out_dir, marker=MANIFEST, ours=is_dataset_entry, inputs=inputs) as tmp:
            counts, shards = _write_pairs(loaded, tmp, config, gsd_m, progress)
            if sum(sum(c.values()) for c in counts.values()) == 0:
                raise EmptyInputError(
                    "no pair could be cut: patches hold too few buildings or valid pixels "
                    f"(min_building_fraction={config.min_building_fraction}, "
                    f"min_valid_fraction={config.min_valid_fraction}, patch_px={config.patch_px})."
                )
            write_manifest(tmp, gsd_m=gsd_m, config=config, sources=[info for _, _, info in loaded],
                           counts=counts, shards=shards)
    finally:
        for reader, _, _ in loaded:
            reader.close()
    return BuildSummary(out_dir, {str(s): c for s, c in counts.items()}, time.perf_counter() - start)


def _cascade_stage(config: DatasetConfig, gsd_m: float):
    """The classical stage cascade pairs run behind (the one ``local+learned`` runs), or None."""
    if config.cascade is None:
        return None
    from geoalign.baselines import classical_predictor

    return classical_predictor(config.cascade, gsd_m=gsd_m)


def _held_out_from(width: int, config: DatasetConfig, source_split: str, pair_split: str) -> float:
    """Source column where a train pair's context must stop: the held-out east strip's boundary."""
    if source_split == "val" or pair_split == "val" or config.holdout_fraction <= 0:
        return math.inf
    return width * (1.0 - config.holdout_fraction)


def _write_pairs(loaded, root: Path, config: DatasetConfig, gsd_m: float, progress: bool):
    counts: dict[int, dict[str, int]] = {}
    shards: dict[str, list[dict]] = {}
    jobs = []
    for src_idx, (reader, index, info) in enumerate(loaded):
        factor = gsd_m / info["gsd_m"]  # source pixels per dataset pixel
        for scale in config.scales:
            size = config.patch_px * (2**scale) * factor
            for pw in patch_windows(
                reader.width, reader.height, size_src_px=size, stride_src_px=size * config.stride_fraction,
                holdout_fraction=config.holdout_fraction, source_split=info["split"],
                region=index.extent,
            ):
                jobs.append((src_idx, scale, pw))
    writers: dict[tuple[int, str], ShardWriter] = {}
    classical = _cascade_stage(config, gsd_m)
    bar = progress_bar(jobs, desc="pairs", unit="patch", enabled=progress)
    for src_idx, scale, pw in bar:
        reader, index, info = loaded[src_idx]
        if len(index.in_window(pw.window, 0.0)) == 0:
            continue  # no building: skip before paying for the read
        image = reader.read(pw.window, out_shape=(config.patch_px, config.patch_px))
        if image[1].mean() < config.min_valid_fraction:
            continue
        for k in range(config.samples_per_patch):
            rng = np.random.default_rng([config.seed, src_idx, scale, pw.index, k])
            if classical is not None:
                pair = make_cascade_pair(
                    reader, index, pw.window, scale=scale, patch_px=config.patch_px, classical=classical,
                    max_disp_px=config.cascade_max_disp_px, min_amplitude_fraction=config.min_amplitude_fraction,
                    correlation_length_px=config.cascade_correlation_px, channels=config.channels, rng=rng,
                    max_col_src=_held_out_from(reader.width, config, info["split"], pw.split),
                )
                limit = config.cascade_max_residual_px
                if limit is not None and residual_at_edges_px(pair, scale) > limit:
                    continue  # the classical stage failed beyond the learned stage's reach
            else:
                pair = make_pair(
                    reader, index, pw.window, patch_px=config.patch_px, max_disp_px=config.max_disp_px,
                    min_amplitude_fraction=config.min_amplitude_fraction,
                    correlation_length_px=config.correlation_length_fraction * config.patch_px,
                    channels=config.channels, rng=rng, image=image,
                )
            if pair.map_true[0].mean() < config.min_building_fraction:
                break  # same buildings for every sample of this window
            key = (scale, pw.split)
            if key not in writers:
                writers[key] = ShardWriter(root, scale, pw.split, config.shard_size)
            w = pw.window
            writers[key].add(pair, [src_idx, w.col_off, w.row_off, w.width, w.height, pair.amplitude_px])
    for (scale, split), writer in sorted(writers.items()):
        writer.flush()
        counts.setdefault(scale, {})[split] = writer.count
        shards[f"{scale}/{split}"] = writer.shards
    for scale in config.scales:
        counts.setdefault(scale, {})
    return dict(sorted(counts.items(), reverse=True)), shards
