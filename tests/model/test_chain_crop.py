"""The chain's cropped inference (each scale computed only where the finer scales need it) gives
the field of the full computation wherever the tile's context leaves it valid."""

from __future__ import annotations

import pytest
import torch

from geoalign.model.chain import Chain, ChainConfig


def _chain(scales, smooth_sigma_px: float = 0.0) -> Chain:
    torch.manual_seed(0)
    chain = Chain(ChainConfig(scales=scales, smooth_sigma_px=smooth_sigma_px)).eval()
    with torch.no_grad():  # the last layer starts at zero: give the chain a field to compare
        for p in chain.net(scales[0]).head[-1].parameters():
            p.normal_(0.0, 3.0)
    return chain


def _tile(side_px: int) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    image = torch.nn.functional.avg_pool2d(torch.rand(1, 3, side_px, side_px), 5, 1, 2)
    map_ = torch.zeros(1, 3, side_px, side_px)
    for y in range(16, side_px - 40, 52):
        for x in range(20, side_px - 40, 46):
            map_[0, 0, y:y + 24, x:x + 30] = 1.0
    edge = torch.nn.functional.max_pool2d(map_[:, :1], 3, 1, 1) - map_[:, :1]
    map_[0, 1] = edge[0, 0]
    image[:, :, map_[0, 0] > 0] += 0.3
    return image, map_


@pytest.mark.parametrize("scales,smooth", [((3, 2, 1), 0.0), ((2, 1, 0), 2.0)])
def test_cropped_inference_equals_the_full_one_inside_the_context(scales, smooth):
    chain = _chain(scales, smooth)
    crops = chain.crops_px()
    m = 2 ** max(scales)
    assert crops[0] == 0 and crops == sorted(crops) and all(c % m == 0 for c in crops) and crops[-1] > 0
    # a field read at a point moved by the coarser scales' corrections reaches that much further
    reach = [sum(chain.net(t).config.range_px * 2**t for t in scales[:i]) for i in range(len(scales))]
    k = chain.context_px + 2 * int(sum(reach))
    side = 2 * k + 96
    image, map_ = _tile(side)
    with torch.inference_mode():
        full = chain(image, map_)
        cropped = chain(image, map_, crop_context=True)
    inner = (..., slice(k, side - k), slice(k, side - k))
    assert cropped.shape == full.shape and float(full[inner].abs().max()) > 0.5
    assert float((cropped - full)[inner].abs().max()) < 1e-3


def test_cropped_inference_on_a_tile_smaller_than_the_crops_still_covers_it():
    chain = _chain((3, 2, 1))
    image, map_ = _tile(120)
    with torch.inference_mode():
        field = chain(image, map_, crop_context=True)
    assert field.shape == (1, 2, 120, 120) and torch.isfinite(field).all()
