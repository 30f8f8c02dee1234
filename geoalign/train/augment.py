"""Batch augmentations that keep (image, map, field) consistent.

Rotations by 90° and flips move the pixels *and* turn the displacement vectors; colour jitter only
touches the image; resolution jitter resamples everything and rescales the field's pixel units.
Randomness comes from the ``numpy`` generator passed in (the trainer derives it from (seed, step),
so a resumed run draws the same augmentations).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from geoalign.model.warp import resize_field


def rot90_batch(x: torch.Tensor, k: int, *, is_field: bool = False) -> torch.Tensor:
    """Rotate (N,C,H,W) by k×90° (``torch.rot90`` on (H,W)); a field's vectors turn too.

    ``torch.rot90`` sends pixel (row y, col x) to (row W-1-x, col y): x' = y, y' = -x + const,
    so a vector (dx, dy) becomes (dy, -dx).
    """
    k %= 4
    out = torch.rot90(x, k, dims=(-2, -1))
    if is_field:
        for _ in range(k):
            out = torch.stack([out[:, 1], -out[:, 0]], dim=1)
    return out


def hflip_batch(x: torch.Tensor, *, is_field: bool = False) -> torch.Tensor:
    out = torch.flip(x, dims=(-1,))
    if is_field:
        out = torch.stack([-out[:, 0], out[:, 1]], dim=1)
    return out


def colour_jitter(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    n = image.shape[0]
    gain = torch.from_numpy(rng.uniform(0.7, 1.3, (n, 3, 1, 1)).astype(np.float32))
    bias = torch.from_numpy(rng.uniform(-0.1, 0.1, (n, 1, 1, 1)).astype(np.float32))
    gamma = torch.from_numpy(np.exp(rng.uniform(-0.3, 0.3, (n, 1, 1, 1))).astype(np.float32))
    out = (image * gain + bias).clamp(0, 1) ** gamma
    grey = torch.from_numpy(rng.random(n) < 0.15)  # panchromatic sources exist (Atlanta)
    out[grey] = out[grey].mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    return out


def augment_batch(batch: dict[str, torch.Tensor], rng: np.random.Generator, *, crop_px: int,
                  resolution_jitter: float = 1.3, colour: bool = True, geometric: bool = True) -> dict[str, torch.Tensor]:
    """Rotate/flip (one draw for the batch), resample by a factor in [1/j, j], crop, colour-jitter."""
    b = dict(batch)
    if geometric:
        k, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
        for key in ("image", "map", "map_true", "valid", "field"):
            x = b[key] if b[key].dim() == 4 else b[key][:, None]
            x = rot90_batch(x, k, is_field=key == "field")
            if flip:
                x = hflip_batch(x, is_field=key == "field")
            b[key] = x if b[key].dim() == 4 else x[:, 0]
    p = b["image"].shape[-1]
    if resolution_jitter > 1.0:
        factor = float(np.exp(rng.uniform(-np.log(resolution_jitter), np.log(resolution_jitter))))
        size = max(crop_px, int(round(p * factor)))
        if size != p:
            b["image"] = F.interpolate(b["image"], size=(size, size), mode="bilinear", align_corners=False)
            for key in ("map", "map_true"):
                b[key] = F.interpolate(b[key], size=(size, size), mode="bilinear", align_corners=False)
            b["valid"] = F.interpolate(b["valid"][:, None], size=(size, size), mode="nearest")[:, 0]
            b["field"] = resize_field(b["field"], (size, size))
            p = size
    if crop_px < p:
        r0, c0 = (int(v) for v in rng.integers(0, p - crop_px + 1, 2))
        for key in ("image", "map", "map_true", "valid", "field"):
            b[key] = b[key][..., r0:r0 + crop_px, c0:c0 + crop_px]
    if colour:
        b["image"] = colour_jitter(b["image"], rng)
    return b
