"""Where patches are cut: a regular grid of windows per scale, split by region.

Windows are in *source raster pixels*. A window of scale s covers ``patch_px · 2^s · f`` source
pixels, f being the ratio of the dataset's GSD to the raster's. With a holdout strip, a window
must lie wholly on one side of the strip boundary (no pixel shared between train and val).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

from rasterio.windows import Window


@dataclass(frozen=True)
class PatchWindow:
    index: int
    window: Window
    split: str


def patch_windows(
    width: int, height: int, *, size_src_px: float, stride_src_px: float,
    holdout_fraction: float, source_split: str,
) -> Iterator[PatchWindow]:
    """Windows tiling the raster (the last row/column may overhang: boundless reads pad it)."""
    boundary = width * (1.0 - holdout_fraction) if holdout_fraction > 0 else math.inf
    n_cols = max(1, int(math.ceil((width - size_src_px) / stride_src_px)) + 1)
    n_rows = max(1, int(math.ceil((height - size_src_px) / stride_src_px)) + 1)
    index = 0
    for r in range(n_rows):
        for c in range(n_cols):
            col_off, row_off = c * stride_src_px, r * stride_src_px
            window = Window(col_off, row_off, size_src_px, size_src_px)
            if source_split == "val":
                split = "val"
            elif col_off + size_src_px <= boundary:
                split = "train"
            elif col_off >= boundary:
                split = "val"
            else:
                index += 1
                continue  # straddles the holdout boundary
            yield PatchWindow(index, window, split)
            index += 1
