"""A wider scale network that starts computing what a narrower one computes (Net2Net-style
widening, Chen et al. ICLR 2016), so capacity can be added at one scale of a trained chain
without losing its training.

The narrow network's channels keep their weights; new channels get the default initialization
where they feed only other new channels, and zeros where they feed an old channel (the head's
inputs and output, the segmentation head), so old outputs start unchanged. The one exception is
the encoders' last layer: its new feature channels join the unit-norm feature vectors, so they
start small (``feature_init_scale`` of the default initialization) and the cost volume moves by
about that share, not zero (a zero channel would get no gradient through the correlation)."""

from __future__ import annotations

import torch
import torch.nn as nn

from geoalign.errors import OptionError
from geoalign.model.scale_net import ScaleNet, ScaleNetConfig


def _copy_conv(new: nn.Conv2d, old: nn.Conv2d, in_index: list[int] | None = None, *,
               new_rows_scale: float = 1.0) -> None:
    """Old output rows keep their weights on the old inputs (placed at ``in_index`` in the new
    layer's inputs) and see zeros on the new inputs; new rows keep the default initialization
    times ``new_rows_scale``."""
    index = list(range(old.in_channels)) if in_index is None else in_index
    with torch.no_grad():
        new.weight[old.out_channels:] *= new_rows_scale
        new.bias[old.out_channels:] *= new_rows_scale
        new.weight[:old.out_channels] = 0.0
        new.weight[:old.out_channels, index] = old.weight
        new.bias[:old.out_channels] = old.bias


def _copy_encoder(new: nn.Sequential, old: nn.Sequential, feature_init_scale: float) -> None:
    convs = [(n, o) for n, o in zip(new, old) if isinstance(n, nn.Conv2d)]
    for i, (n, o) in enumerate(convs):
        _copy_conv(n, o, new_rows_scale=feature_init_scale if i == len(convs) - 1 else 1.0)


def widen_scale_net(old: ScaleNet, config: ScaleNetConfig, *, feature_init_scale: float = 0.1,
                    seed: int = 0) -> ScaleNet:
    """A :class:`ScaleNet` of ``config`` (at least as many features and hidden channels as
    ``old``, the same search range and map channels) holding ``old``'s weights; the new
    channels' initialization draws from its own generator seeded with ``seed`` (the caller's
    random state is left as it was)."""
    oc = old.config
    if (config.features < oc.features or config.hidden < oc.hidden or config.range_px != oc.range_px
            or config.map_channels != oc.map_channels):
        raise OptionError(f"cannot widen a network of {oc.features} features and {oc.hidden} hidden channels "
                          f"into {config.features} and {config.hidden}: only features and hidden may grow")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        new = ScaleNet(config)
    _copy_encoder(new.image_encoder, old.image_encoder, feature_init_scale)
    _copy_encoder(new.map_encoder, old.map_encoder, feature_init_scale)
    _copy_conv(new.compress[0], old.compress[0])
    h, H, f = oc.hidden, config.hidden, oc.features
    # head input: [compress (hidden), soft-argmax (2), edge soft-argmax (2), map features (features)]
    _copy_conv(new.head[0], old.head[0], list(range(h)) + list(range(H, H + 4 + f)))
    for i in (2, 4):
        _copy_conv(new.head[i], old.head[i])
    with torch.no_grad():
        new.head[6].weight.zero_()
        new.head[6].weight[:, :h] = old.head[6].weight
        new.head[6].bias.copy_(old.head[6].bias)
        new.segmentation.weight.zero_()
        new.segmentation.weight[:, :f] = old.segmentation.weight
        new.segmentation.bias.copy_(old.segmentation.bias)
        new.log_temperature.copy_(old.log_temperature)
        new.log_edge_temperature.copy_(old.log_edge_temperature)
    return new.train(old.training)
