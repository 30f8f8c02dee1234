"""Synthetic renders → training pairs through the same :func:`geoalign.dataset.pairs.make_pair`."""

from __future__ import annotations

import numpy as np
from rasterio.windows import Window

from geoalign.dataset.pairs import BuildingIndex, Pair, make_pair
from geoalign.rasterize import MAP_CHANNELS
from geoalign.synthetic.render import render_city


def synthetic_pair(rng: np.random.Generator, *, patch_px: int = 96, max_disp_px: float = 2.0,
                   min_amplitude_fraction: float = 0.25, correlation_length_fraction: float = 0.25,
                   channels: tuple[str, ...] = MAP_CHANNELS) -> Pair:
    """One pair (pixels of the render's grid) from a fresh random city."""
    img, valid, geoms = render_city((patch_px, patch_px), rng)
    return make_pair(
        None, BuildingIndex(geoms if len(geoms) else np.array([], dtype=object)), Window(0, 0, patch_px, patch_px),
        patch_px=patch_px, max_disp_px=max_disp_px, min_amplitude_fraction=min_amplitude_fraction,
        correlation_length_px=correlation_length_fraction * patch_px, channels=channels, rng=rng,
        image=(img, valid),
    )


SOURCE_KEY = "synthetic"  # the manifest's sources of a dataset of rendered cities carry it, true


def is_synthetic_dataset(manifest: dict) -> bool:
    """A dataset :func:`build_synthetic_dataset` wrote: a random ground sampling is part of every
    render, so its scale-0 pairs serve every scale's network."""
    sources = manifest.get("sources") or []
    return bool(sources) and all(src.get(SOURCE_KEY) for src in sources)


def build_synthetic_dataset(out_dir, *, n_train: int = 2000, n_val: int = 200, patch_px: int = 96,
                            max_disp_px: float = 2.0, seed: int = 0, progress: bool = True):
    """Write synthetic pairs in the format of :func:`geoalign.dataset.build_dataset` (scale 0).

    A random GSD is already part of every render, so one scale serves a scale-shared chain.
    """
    from pathlib import Path

    from geoalign.dataset.build import MANIFEST, is_dataset_entry, write_manifest
    from geoalign.dataset.config import DatasetConfig
    from geoalign.progress import progress as progress_bar
    from geoalign.dataset.shards import ShardWriter
    from geoalign.io.atomic import atomic_dir

    config = DatasetConfig(scales=(0,), patch_px=patch_px, max_disp_px=max_disp_px, seed=seed)
    with atomic_dir(Path(out_dir), marker=MANIFEST, ours=is_dataset_entry) as tmp:
        counts, shards = {}, {}
        for split, n in (("train", n_train), ("val", n_val)):
            writer = ShardWriter(tmp, 0, split, config.shard_size)
            for i in progress_bar(range(n), desc=f"synthetic {split}", unit="pair", enabled=progress):
                rng = np.random.default_rng([seed, 0 if split == "train" else 1, i])
                pair = synthetic_pair(rng, patch_px=patch_px, max_disp_px=max_disp_px)
                writer.add(pair, [-1, 0, 0, patch_px, patch_px, pair.amplitude_px])
            writer.flush()
            counts[split], shards[f"0/{split}"] = writer.count, writer.shards
        write_manifest(tmp, gsd_m=None, config=config, sources=[{SOURCE_KEY: True, "seed": seed}],
                       counts={0: counts}, shards=shards)
    return Path(out_dir)
