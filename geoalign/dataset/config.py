"""What a dataset build takes: sources and the knobs of pair generation, with their units."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from geoalign.rasterize import MAP_CHANNELS


@dataclass(frozen=True)
class SourcePair:
    """One georeferenced image and the building footprints that sit right on it."""

    image: Path
    buildings: Path
    split: str = "train"  # "train" or "val": a whole source can be held out

    def to_json(self) -> dict:
        return {"image": str(self.image), "buildings": str(self.buildings), "split": self.split}


@dataclass(frozen=True)
class DatasetConfig:
    """Pair-generation parameters.

    Scale s means downsampling by 2^s from the dataset's ground sampling distance ``gsd_m``
    (None: the first source's own). Displacements of scale s are drawn with a maximum of
    ``max_disp_px`` pixels *of that scale* (Zampieri et al., ECCV 2018: 2^(s+1) full-resolution pixels, i.e.
    2 pixels at scale s); each pair draws its own maximum uniformly in
    [``min_amplitude_fraction`` · max, max] so targets are not mostly near zero.

    ``cascade`` ("local"; None: off) cuts cascade pairs instead (:mod:`geoalign.dataset.cascade`):
    the map as that classical stage leaves it after a misalignment of up to
    ``cascade_max_disp_px`` full-resolution pixels (correlation length ``cascade_correlation_px``,
    the accuracy benchmark's kind), the target its residual: the pairs the learned stage of
    ``local+learned`` sees (``max_disp_px`` and ``correlation_length_fraction`` are then unused);
    ``cascade_max_residual_px`` (full-resolution pixels; None: keep all) leaves out the pairs whose
    median residual at the map's edges is larger, out of the learned stage's reach.
    """

    scales: tuple[int, ...] = (3, 2, 1, 0)
    patch_px: int = 96
    stride_fraction: float = 0.5
    samples_per_patch: int = 1
    gsd_m: float | None = None
    max_disp_px: float = 2.0
    min_amplitude_fraction: float = 0.25
    correlation_length_fraction: float = 0.25  # of patch_px
    holdout_fraction: float = 0.0  # east strip of every train source held out for validation
    min_valid_fraction: float = 0.5
    min_building_fraction: float = 0.01
    shard_size: int = 256
    seed: int = 0
    channels: tuple[str, ...] = field(default=MAP_CHANNELS)
    cascade: str | None = None
    cascade_max_disp_px: float = 32.0
    cascade_correlation_px: float = 128.0
    cascade_max_residual_px: float | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        d["scales"] = list(self.scales)
        d["channels"] = list(self.channels)
        return d

    def __post_init__(self) -> None:
        if not self.scales or any(s < 0 for s in self.scales):
            raise ValueError("scales must be a non-empty list of integers ≥ 0")
        if self.patch_px < 8:
            raise ValueError("patch_px must be at least 8")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise ValueError("holdout_fraction must be in [0, 1)")
        if not 0.0 < self.stride_fraction <= 1.0:
            raise ValueError("stride_fraction must be in (0, 1]")
        if self.cascade is not None and self.cascade not in ("local",):
            raise ValueError(f"cascade must be 'local' or None, got {self.cascade!r}")
        if self.cascade_max_disp_px <= 0 or self.cascade_correlation_px <= 0:
            raise ValueError("cascade_max_disp_px and cascade_correlation_px must be positive")
