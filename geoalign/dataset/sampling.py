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
    region: tuple[float, float, float, float] | None = None,
) -> Iterator[PatchWindow]:
    """Windows tiling the raster (the last row/column may overhang: boundless reads pad it).

    ``region`` (col_min, row_min, col_max, row_max), e.g. the buildings' extent, skips windows
    that cannot touch it without changing the other windows' indexes (seeds stay stable).
    """
    boundary = width * (1.0 - holdout_fraction) if holdout_fraction > 0 else math.inf
    n_cols = max(1, int(math.ceil((width - size_src_px) / stride_src_px)) + 1)
    n_rows = max(1, int(math.ceil((height - size_src_px) / stride_src_px)) + 1)
    r_range, c_range = range(n_rows), range(n_cols)
    if region is not None:
        c0, r0, c1, r1 = region
        c_range = range(max(0, int((c0 - size_src_px) // stride_src_px)),
                        min(n_cols, int(c1 // stride_src_px) + 1))
        r_range = range(max(0, int((r0 - size_src_px) // stride_src_px)),
                        min(n_rows, int(r1 // stride_src_px) + 1))
    for r in r_range:
        for c in c_range:
            index = r * n_cols + c
            col_off, row_off = c * stride_src_px, r * stride_src_px
            window = Window(col_off, row_off, size_src_px, size_src_px)
            if source_split == "val":
                split = "val"
            elif col_off + size_src_px <= boundary:
                split = "train"
            elif col_off >= boundary:
                split = "val"
            else:
                continue  # straddles the holdout boundary
            yield PatchWindow(index, window, split)
