"""The coarse-to-fine chain of scale networks (Zampieri et al., ECCV 2018; Girard et al.,
ACCV 2018: a "compositional ResNet").

From the coarsest scale to the finest: downsample the image and the map *as moved by the field
found so far* by 2^s, let that scale's network predict its correction (≤ range_px pixels of scale
s), upsample it (×2^s) and compose it onto the total: ``total(q) = total(q) + corr(q + total(q))``.

``shared=True`` uses one network for every scale (the task is the same at every scale in that
scale's pixels, so the weights can be shared: 4× the training data per weight on a CPU budget);
``shared=False`` keeps one network per scale, as in mapalignment.

``smooth_sigma_px`` (pixels of each scale; 0 = off) adds a parameter-free layer after each scale's
network: confidence-weighted smoothing of its correction by the map's edges
(:func:`~geoalign.model.warp.smooth_field_at_edges`). Measured on the self-denoising model: it
lowers the realigned error, because the per-pixel prediction noise averages out (see the model card).

Padding rule: inputs are padded at the bottom/right to a multiple of 2^max_scale (image:
replicate, map: zeros), the output field is cropped back, so any H×W works.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from geoalign.errors import OptionError
from geoalign.model.scale_net import ScaleNet, ScaleNetConfig, edge_map, mean_gradient
from geoalign.model.warp import compose_fields_torch, move_map_torch, resize_field, smooth_field_at_edges
from geoalign.rasterize import MAP_CHANNELS


@dataclass(frozen=True)
class ChainConfig:
    scales: tuple[int, ...] = (3, 2, 1, 0)  # coarse → fine
    shared: bool = True
    net: ScaleNetConfig = field(default_factory=ScaleNetConfig)
    channels: tuple[str, ...] = MAP_CHANNELS
    smooth_sigma_px: float = 0.0  # pixels of each scale; 0: no smoothing layer
    # (scale, config) of the unshared networks whose size differs from ``net`` (a wider one where it pays)
    scale_nets: tuple[tuple[int, ScaleNetConfig], ...] = ()

    def __post_init__(self) -> None:
        if self.scale_nets and self.shared:
            raise ValueError("networks of their own size at some scales need one network per scale (shared=False)")

    def net_config(self, scale: int) -> ScaleNetConfig:
        """The configuration of the network at ``scale``."""
        return dict(self.scale_nets).get(scale, self.net)

    def to_json(self) -> dict:
        d = asdict(self)
        d["scales"], d["channels"] = list(self.scales), list(self.channels)
        d.pop("scale_nets")
        if self.scale_nets:
            d["scale_nets"] = {str(s): c.to_json() for s, c in self.scale_nets}
        return d

    @classmethod
    def from_json(cls, d: dict) -> "ChainConfig":
        """The config of a ``config.json`` (its smoothing width under ``smooth_sigma_px``, or
        ``smooth_sigma`` in the shipped model's; absent: no smoothing)."""
        return cls(scales=tuple(d["scales"]), shared=bool(d["shared"]), net=ScaleNetConfig(**d["net"]),
                   channels=tuple(d["channels"]),
                   smooth_sigma_px=float(d.get("smooth_sigma_px", d.get("smooth_sigma", 0.0))),
                   scale_nets=tuple((int(s), ScaleNetConfig(**c)) for s, c in d.get("scale_nets", {}).items()))


def chain_alone_scales(scales: tuple[int, ...]) -> tuple[int, ...]:
    """The schedule the chain alone runs when its model card names none: each scale coarser than 1
    twice, the others once, coarse to fine ((3, 2, 1, 0) → (3, 3, 2, 2, 1, 0)). One run of a scale
    corrects at most ``range_px`` pixels of it, 2.5 px of scale 3 = 20 px at full resolution, so a
    16 px misalignment is only partly removed in one run; on the held-out benchmark the repeated
    schedule takes the chain alone at 16 px from 4.14 to 1.62 px (0.3 m pool) and from 3.62 to
    3.21 px (SpaceNet pool) for 1.5 × the time (docs/model.md)."""
    return tuple(s for s in sorted(scales, reverse=True) for _ in range(2 if s >= 2 else 1))


def downsample_map(map_: torch.Tensor, factor: int, channels: tuple[str, ...]) -> torch.Tensor:
    """Fill: area average; edges and vertices: max, so thin features survive (like rasterizing at scale s)."""
    if factor == 1:
        return map_
    outs = []
    for c, name in enumerate(channels):
        x = map_[:, c:c + 1]
        outs.append(F.avg_pool2d(x, factor) if name == "fill" else F.max_pool2d(x, factor))
    return torch.cat(outs, dim=1)


class Chain(nn.Module):
    def __init__(self, config: ChainConfig = ChainConfig()) -> None:
        super().__init__()
        if list(config.scales) != sorted(config.scales, reverse=True):
            raise ValueError("chain scales must go from coarse to fine, e.g. (3, 2, 1, 0)")
        self.config = config
        if config.shared:
            self.nets = nn.ModuleDict({"shared": ScaleNet(config.net)})
        else:
            self.nets = nn.ModuleDict({str(s): ScaleNet(config.net_config(s)) for s in config.scales})

    def copy_with(self, **changes) -> "Chain":
        """A new chain with the same weights and ``changes`` to its config (options that add no
        parameters, e.g. ``smooth_sigma_px`` or ``scales`` of a shared net); training mode kept."""
        config = replace(self.config, **changes)
        if "scales" in changes:  # a subset of scales keeps only those scales' own sizes
            config = replace(config, scale_nets=tuple((s, c) for s, c in config.scale_nets if s in config.scales))
        other = Chain(config)
        wanted = other.state_dict().keys()  # a subset of scales drops the unshared nets of the others
        other.load_state_dict({k: v for k, v in self.state_dict().items() if k in wanted})
        return other.train(self.training)

    def untied(self) -> "Chain":
        """The same chain with one network per scale, each starting from the shared one's
        weights: training some scales then leaves the other scales' networks as they are."""
        if not self.config.shared:
            return self.copy_with()
        other = Chain(replace(self.config, shared=False))
        for s in self.config.scales:
            other.nets[str(s)].load_state_dict(self.nets["shared"].state_dict())
        return other.train(self.training)

    def widened(self, scale: int, features: int, hidden: int, *, seed: int = 0) -> "Chain":
        """The same chain, untied, with a wider network at ``scale`` that starts computing what the
        narrower one computes (:func:`~geoalign.model.widen.widen_scale_net`): capacity where
        it pays, the other scales' networks unchanged."""
        from geoalign.model.widen import widen_scale_net

        if scale not in self.config.scales:
            raise OptionError(f"cannot widen scale {scale}: the chain's scales are {list(self.config.scales)}")
        untied = self.untied()
        config = replace(untied.net(scale).config, features=features, hidden=hidden)
        others = tuple((s, c) for s, c in untied.config.scale_nets if s != scale)
        other = Chain(replace(untied.config, scale_nets=tuple(sorted(others + ((scale, config),)))))
        for s in untied.config.scales:
            if s != scale:
                other.nets[str(s)].load_state_dict(untied.nets[str(s)].state_dict())
        other.nets[str(scale)] = widen_scale_net(untied.net(scale), config, seed=seed)
        return other.train(self.training)

    def fine_stages(self, scales: tuple[int, ...]) -> "Chain":
        """The same chain run at some of its scales (e.g. the fine ones behind a classical coarse
        stage), coarse to fine; a scale given twice runs twice, each run correcting up to
        ``range_px`` pixels of the scale on the map the runs before it moved. Raises
        ``OptionError`` for a scale it has no network for."""
        missing = set(scales) - set(self.config.scales)
        if missing and not self.config.shared:
            raise OptionError(f"the chain has no network for scale(s) {sorted(missing)}; its scales are "
                              f"{list(self.config.scales)}")
        return self.copy_with(scales=tuple(sorted(scales, reverse=True)))

    def net(self, scale: int) -> ScaleNet:
        return self.nets["shared" if self.config.shared else str(scale)]

    def scale_context_px(self, scale: int) -> int:
        """Border (full-resolution pixels) one scale's output depends on: its network's receptive
        radius and its smoothing, in pixels of the scale, times 2^scale."""
        smooth = int(math.ceil(3 * self.config.smooth_sigma_px))
        return (self.net(scale).receptive_radius_px + smooth) * 2**scale

    @property
    def context_px(self) -> int:
        """Border (full-resolution pixels) an output pixel depends on, summed over the scales."""
        return int(sum(self.scale_context_px(s) for s in self.config.scales))

    def crops_px(self) -> list[int]:
        """Per scale (coarse → fine), how far inside the tile's border :meth:`forward` with
        ``crop_context=True`` computes it: the coarser scales' contexts, less a slack of twice
        the largest correction those scales can make (the map is moved by the field, and the
        next correction is read at the moved point, each reaching that far past a crop's edge),
        rounded down to a multiple of 2^max_scale so every crop keeps the downsampling grid."""
        m = 2 ** max(self.config.scales)
        crops, used, reach = [], 0, 0.0
        for s in self.config.scales:
            slack = 2 * int(math.ceil(reach)) + m
            crops.append(max(0, (used - slack) // m * m))
            used += self.scale_context_px(s)
            reach += self.net(s).config.range_px * 2**s
        return crops

    def forward(self, image: torch.Tensor, map_: torch.Tensor, *, upto_scale: int | None = None,
                crop_context: bool = False, inversion_step_px: int = 1) -> torch.Tensor:
        """Total field (N,2,H,W) in full-resolution pixels; ``upto_scale`` stops after that scale.

        ``inversion_step_px``: each scale's map is moved by the total field's inverse solved on a
        grid that many times coarser (:func:`~geoalign.model.warp.move_map_torch`); 1, the exact
        fixed point, is what training uses; :class:`~geoalign.model.predictor.ChainPredictor`
        aligns with :data:`~geoalign.model.warp.INVERSION_STEP_PX` (the field changes by at most
        0.005 px, scales 3-2-1 run 1.7× faster).

        ``crop_context``: each scale runs only where the finer scales still need it (the tile less
        :meth:`crops_px`), so a coarse scale's wide context is not carried through the fine
        scales' full-resolution passes (each scale's edge image keeps the whole tile's
        normalization); the border the crops leave out takes the nearest computed value. The
        field is the same as without crops where neither depends on the tile's border: the tile
        less :attr:`context_px` and twice the reach of the corrections (tested)."""
        h, w = image.shape[-2:]
        m = 2 ** max(self.config.scales)
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            image = F.pad(image, (0, pw, 0, ph), mode="replicate")
            map_ = F.pad(map_, (0, pw, 0, ph))
        H, W = image.shape[-2:]
        limit = max(0, (min(H, W) // 2 - m) // m * m)  # a small tile keeps a core of at least 2m px
        crops = [min(c, limit) for c in self.crops_px()] if crop_context else [0] * len(self.config.scales)
        total = torch.zeros(image.shape[0], 2, H, W, dtype=image.dtype, device=image.device)
        k = 0  # the crop ``total`` lives on
        for i, s in enumerate(self.config.scales):
            f = 2**s
            c = crops[i]  # crops never shrink from one scale to the next
            if c > k:
                total = total[..., c - k:total.shape[-2] - (c - k), c - k:total.shape[-1] - (c - k)]
                k = c
            whole_s = F.avg_pool2d(image, f) if f > 1 else image
            mean = mean_gradient(whole_s) if k else None  # the edge normalization of the whole tile
            img_s = whole_s[..., k // f:(H - k) // f, k // f:(W - k) // f]
            mp = map_[..., k:H - k, k:W - k]
            moved = mp if i == 0 else move_map_torch(mp, total, step_px=inversion_step_px)
            map_s = downsample_map(moved, f, self.config.channels)
            corr_s, _ = self.net(s)(img_s, map_s, mean)
            if self.config.smooth_sigma_px > 0:
                corr_s = smooth_field_at_edges(corr_s, edge_map(map_s), self.config.smooth_sigma_px)
            corr = resize_field(corr_s, tuple(mp.shape[-2:])) if f > 1 else corr_s
            total = corr if i == 0 else compose_fields_torch(total, corr)
            del moved, map_s, corr_s, corr, whole_s, img_s  # full-size tensors go before the next scale's
            if upto_scale is not None and s == upto_scale:
                break
        if k:
            total = F.pad(total, (k, k, k, k), mode="replicate")
        return total[..., :h, :w]
