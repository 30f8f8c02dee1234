"""PNG mosaics of pairs: what a pair looks like is faster seen than read.

Each tile shows the image, the true footprints (green), the misaligned map (red) and the
ground-truth field as arrows pointing from the misaligned map to where it belongs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # drawn without pyplot: no global backend is chosen

from geoalign.dataset.build import PREVIEW
from geoalign.dataset.torch_dataset import PairDataset, read_manifest
from geoalign.io.atomic import atomic_path


def write_preview(root: str | Path, out_png: str | Path | None = None, *, per_scale: int = 6,
                  split: str = "train", seed: int = 0) -> Path:
    """One row per scale, ``per_scale`` random pairs per row → ``root/preview.png`` by default."""
    root = Path(root)
    manifest = read_manifest(root)
    scales = [int(s) for s in manifest["config"]["scales"]]
    out_png = Path(out_png) if out_png else root / PREVIEW
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(2.2 * per_scale, 2.4 * len(scales)))
    axes = fig.subplots(len(scales), per_scale, squeeze=False)
    for row, scale in enumerate(scales):
        ds = PairDataset(root, scale, split)
        picks = rng.choice(len(ds), size=min(per_scale, len(ds)), replace=False) if len(ds) else []
        for col in range(per_scale):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(f"scale {scale} (÷{2**scale})")
            if col >= len(picks):
                ax.set_frame_on(False)
                continue
            _draw_pair(ax, ds[int(picks[col])])
    fig.suptitle("image · true map (green) · misaligned map (red) · field (arrows, ×3)", fontsize=9)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return out_png


def _draw_pair(ax, item) -> None:
    image = item["image"].numpy().transpose(1, 2, 0)
    size = image.shape[0]
    ax.imshow(image, interpolation="nearest")
    ax.contour(item["map_true"][0].numpy(), levels=[0.5], colors="lime", linewidths=0.6)
    ax.contour(item["map"][0].numpy(), levels=[0.5], colors="red", linewidths=0.6)
    field = item["field"].numpy()
    step = max(1, size // 8)
    ys, xs = np.mgrid[step // 2:size:step, step // 2:size:step]
    ax.quiver(xs, ys, field[0, ys, xs] * 3, field[1, ys, xs] * 3, color="yellow", angles="xy",
              scale_units="xy", scale=1, width=0.012)
    ax.set_xlim(0, size)
    ax.set_ylim(size, 0)
    ax.set_title(f"max {float(np.hypot(field[0], field[1]).max()):.1f} px", fontsize=7)
