"""One scale network: image + map (at scale s) → a field of at most ``range_px`` pixels of that scale.

Designed for learnability on little data and 2 CPU cores (a plain regression U-Net stays on the
predict-zero plateau on real imagery):

* two small encoders, one for the image (RGB + fixed Sobel gradients of its luminance, so building
  edges are visible from step 0) and one for the map channels, each giving ``features`` unit-norm
  feature vectors per pixel;
* an explicit local **cost volume** (PWC-Net / RAFT style): for every offset d in the search window
  ``[-R, R]²`` (R = ceil(range_px)), ``corr(q, d) = <f_map(q), f_img(q + d)>``, plus its soft-argmax
  (a displacement estimate that is right as soon as the features match);
* a second, parameter-free cost volume between the map's edge channel and the image's normalized
  gradient magnitude (the edge correlation of the classical baseline, computed per offset), so the
  head has a useful matching signal from step 0 while the learned features are still random, and
  its soft-argmax after summing over a 15×15 window (a local constant-offset edge search, the strong
  classical competitor) as a 2-channel estimate the head can pass through and refine;
* a head of dilated 3×3 convolutions over [cost volume (1×1-compressed), soft-argmax, map features] that regularizes
  the matches into a smooth field, bounded by ``tanh · range_px``;
* an auxiliary building-segmentation head on the image features (mapalignment used one): it teaches
  the image encoder what a building looks like, independently of the misalignment.

Padding rule: every convolution is 3×3 with "same" zero padding, the cost volume pads the image
features with zeros, so any H×W works and the output has the input's size; the chain
(:mod:`geoalign.model.chain`) pads inputs to a multiple of 2^max_scale.

Memory: without gradients, inputs larger than a block run in overlapping blocks
(``inference_block_px`` plus the receptive radius each side), with the same output; a
2300×2300 tile in one piece takes 14.7 GB.

Size (defaults ``features=12, hidden=16, range_px=2.5``): :func:`count_parameters` gives 17,381
parameters; :func:`flops_per_megapixel` ≈ 36 GFLOP (multiply-adds ×2) per megapixel of the scale's grid.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from geoalign.banded import filter_along
from geoalign.model.threads import torch_threads


@dataclass(frozen=True)
class ScaleNetConfig:
    map_channels: int = 3
    features: int = 12
    hidden: int = 16
    range_px: float = 2.5  # output bound, pixels of the network's own scale

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def search_px(self) -> int:
        return int(math.ceil(self.range_px))


def _encoder(cin: int, f: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, f, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(f, f, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(f, f, 3, padding=2, dilation=2),
    )


def image_gradients(image: torch.Tensor) -> torch.Tensor:
    """Fixed Sobel gradients (gx, gy, magnitude) of the luminance, scaled to about [-1, 1].

    Separable, by shifted slices of the edge-replicated luminance (a 3×3 ``conv2d`` with one
    input channel takes 0.3 s on a 1230² tile): gx = [1 2 1]ᵀ/4 ⊗ [-1 0 1], gy the transpose."""
    lum = F.pad(image.mean(dim=1, keepdim=True), (1, 1, 1, 1), mode="replicate")
    smooth_rows = (lum[..., :-2, :] + 2.0 * lum[..., 1:-1, :] + lum[..., 2:, :]) * 0.25
    smooth_cols = (lum[..., :, :-2] + 2.0 * lum[..., :, 1:-1] + lum[..., :, 2:]) * 0.25
    gx = smooth_rows[..., :, 2:] - smooth_rows[..., :, :-2]
    gy = smooth_cols[..., 2:, :] - smooth_cols[..., :-2, :]
    g = torch.cat([gx, gy], dim=1)
    mag = torch.sqrt((g**2).sum(1, keepdim=True) + 1e-6)
    return torch.cat([g * 4.0, mag * 4.0], dim=1)


def unit_vectors(x: torch.Tensor) -> torch.Tensor:
    """``F.normalize(x, dim=1)`` (same values), ~10× faster on CPU for few channels."""
    return x * torch.rsqrt((x * x).sum(1, keepdim=True).clamp_min(1e-24))


def edge_map(map_: torch.Tensor) -> torch.Tensor:
    """The map's edge channel (channel 1 of ("fill", "edges", "vertices")), or the fill's outline."""
    if map_.shape[1] > 1:
        return map_[:, 1:2]
    return (map_[:, :1] - F.avg_pool2d(map_[:, :1], 3, 1, 1, count_include_pad=False)).abs() * 4


def mean_gradient(image: torch.Tensor) -> torch.Tensor:
    """Mean luminance gradient magnitude over the patch, (N, 1, 1, 1): the scale of :func:`edge_image`."""
    return image_gradients(image)[:, 2:3].mean(dim=(2, 3), keepdim=True)


def edge_image(image: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
    """Luminance gradient magnitude, normalized by its mean over the patch (contrast-invariant);
    ``mean`` (:func:`mean_gradient` of the whole patch) when ``image`` is a strip of it."""
    return normalized_magnitude(image_gradients(image), mean)


def normalized_magnitude(gradients: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`edge_image` from already computed :func:`image_gradients`."""
    mag = gradients[:, 2:3]
    return mag / ((mag.mean(dim=(2, 3), keepdim=True) if mean is None else mean) + 1e-3)


def box_sum(x: torch.Tensor, half_px: int, dim: int) -> torch.Tensor:
    """Sum over [i - h, i + h] ∩ grid along ``dim`` (-2 or -1), as banded matrix products
    (:mod:`geoalign.banded`: 2.5× faster along rows than a cumulative sum, and exact)."""
    h = min(half_px, x.shape[dim] - 1)
    return filter_along(x, x.new_ones(2 * h + 1), dim, edges="zero")


def box_count(n: int, half_px: int, like: torch.Tensor) -> torch.Tensor:
    """How many grid cells :func:`box_sum` adds at each of ``n`` positions."""
    h = min(half_px, n - 1)
    i = torch.arange(n, device=like.device)
    return ((i + h + 1).clamp(max=n) - (i - h).clamp(min=0)).to(like.dtype)


def local_offset_estimate(corr: torch.Tensor, offsets: torch.Tensor, half_window_px: int,
                          temperature: torch.Tensor) -> torch.Tensor:
    """Soft-argmax offset of a cost volume summed over a (2h+1)² window: a local constant-offset
    search (the classical per-window edge correlation) as a dense 2-channel estimate."""
    h, w = corr.shape[-2:]
    total = box_sum(box_sum(corr, half_window_px, -2), half_window_px, -1)
    count = box_count(h, half_window_px, corr)[:, None] * box_count(w, half_window_px, corr)[None, :]
    return window_soft_offset(total, count, offsets, temperature)


def window_soft_offset(total: torch.Tensor, count: torch.Tensor | float, offsets: torch.Tensor,
                       temperature: torch.Tensor) -> torch.Tensor:
    """:func:`local_offset_estimate` from the window sums ``total`` of ``count`` cells each.

    The window means are taken relative to their mean over offsets, so the per-pixel window size
    cancels: ``mean_k / (mean over k + ε) = sum_k / (sum over k + ε·count)``; only the one-channel
    denominator carries the count (one division of 49 channels fewer)."""
    scale = temperature / (total.mean(dim=1, keepdim=True) + 1e-3 * count)
    prob = torch.softmax(total * scale, dim=1)
    return torch.einsum("nkhw,ck->nchw", prob, offsets)


def expected_offset(corr: torch.Tensor, temperature: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Soft-argmax ``sum_k softmax(T·corr)_k d_k`` of a cost volume of unit-vector correlations.

    |corr| ≤ 1, so while T < 80 the exponentials cannot overflow float32 and the softmax's max
    pass and division of every channel are skipped: one ``exp``, one sum and one small matrix
    product (the division applies to the 2-channel result)."""
    if float(temperature.detach()) >= 80.0:
        prob = torch.softmax(corr * temperature, dim=1)
        return torch.einsum("nkhw,ck->nchw", prob, offsets)
    e = torch.exp(corr * temperature)
    return torch.einsum("nkhw,ck->nchw", e, offsets) / e.sum(dim=1, keepdim=True)


def cost_volume(f_map: torch.Tensor, f_img: torch.Tensor, search_px: int) -> torch.Tensor:
    """``corr[:, k](q) = <f_map(q), f_img(q + d_k)>`` for offsets d_k in [-R, R]², row-major (dy, dx).

    Without gradients each offset's channel is accumulated in place into one preallocated volume
    (1.4× faster than a product and a channel sum per offset); with gradients the same sums are
    built out of place, which autograd needs."""
    r = search_px
    n, c, h, w = f_map.shape
    padded = F.pad(f_img, (r, r, r, r))
    shifts = [(r + dy, r + dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    if torch.is_grad_enabled():
        return torch.stack([(f_map * padded[:, :, a:a + h, b:b + w]).sum(1) for a, b in shifts], dim=1)
    out = f_map.new_empty((n, len(shifts), h, w))
    f_map, padded = f_map.contiguous(), padded.contiguous()
    for k, (a, b) in enumerate(shifts):
        acc = out[:, k]
        torch.mul(f_map[:, 0], padded[:, 0, a:a + h, b:b + w], out=acc)
        for ch in range(1, c):
            acc.addcmul_(f_map[:, ch], padded[:, ch, a:a + h, b:b + w])
    return out


class ScaleNet(nn.Module):
    """Predicts ``(field (N,2,H,W) px of this scale, building logits (N,1,H,W))``."""

    def __init__(self, config: ScaleNetConfig = ScaleNetConfig()) -> None:
        super().__init__()
        self.config = config
        f, hd, r = config.features, config.hidden, config.search_px
        self.image_encoder = _encoder(3 + 3, f)
        self.map_encoder = _encoder(config.map_channels, f)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(10.0)))
        self.log_edge_temperature = nn.Parameter(torch.tensor(math.log(5.0)))
        self.edge_window_px = 7  # half-width of the window over which edge matches are summed
        n_off = (2 * r + 1) ** 2
        offs = torch.arange(-r, r + 1, dtype=torch.float32)
        dy, dx = torch.meshgrid(offs, offs, indexing="ij")
        self.register_buffer("offsets", torch.stack([dx.reshape(-1), dy.reshape(-1)]), persistent=False)
        self.compress = nn.Sequential(nn.Conv2d(2 * n_off, hd, 1), nn.ReLU(inplace=True))
        self.head = nn.Sequential(
            nn.Conv2d(hd + 4 + f, hd, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hd, hd, 3, padding=2, dilation=2), nn.ReLU(inplace=True),
            nn.Conv2d(hd, hd, 3, padding=4, dilation=4), nn.ReLU(inplace=True),
            nn.Conv2d(hd, 2, 3, padding=1),
        )
        self.segmentation = nn.Conv2d(f, 1, 1)
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    @property
    def receptive_radius_px(self) -> int:
        """Pixels (of this scale) of context one output pixel depends on: the head's 8 (3×3
        convolutions dilated 1, 2, 4, 1) plus the longer of its two matching paths, the learned
        features (Sobel 1 + encoder 4, at offsets up to R) and the edge window (Sobel 1, offsets
        up to R, window half-width)."""
        r = self.config.search_px
        return 8 + max(1 + 4 + r, 1 + r + self.edge_window_px)

    def forward(self, image: torch.Tensor, map_: torch.Tensor,
                mean_grad: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``mean_grad``: the :func:`mean_gradient` the edge image is normalized by (default: the
        input's own), when the input is a crop of a larger patch."""
        h, w = image.shape[-2:]
        if torch.is_grad_enabled() or max(h, w) <= self.inference_block_px + 2 * self.receptive_radius_px:
            return self._forward(image, map_, mean_grad)
        return self._forward_in_blocks(image, map_, mean_grad)

    # Block side without gradients: 256 px (294² with the halo) keeps the cost volumes in cache;
    # a 2408² tile's scale-1 pass takes 3.3-3.4 s with 256-px blocks, 5.0-5.2 s with 448, 5.8 with 640.
    inference_block_px = 256

    def _forward_in_blocks(self, image: torch.Tensor, map_: torch.Tensor,
                           mean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The same output, computed in square blocks overlapping by the receptive radius, so memory
        is bounded by the block, not the tile (a 2300×2300 tile takes 14.7 GB in one piece).
        Every operation is local except the edge normalization, whose mean is taken once.

        With n > 1 torch threads, n blocks run at once, one thread each: most operations here
        are short and memory-bound, and one block split over 2 threads runs only 1.3× faster than
        on one."""
        h, w = image.shape[-2:]
        halo = self.receptive_radius_px
        mean = mean_gradient(image) if mean is None else mean
        field = image.new_empty((image.shape[0], 2, h, w))
        logits = image.new_empty((image.shape[0], 1, h, w))
        step_r, step_c = (-(-n // -(-n // self.inference_block_px)) for n in (h, w))  # even blocks
        blocks = [(r0, min(h, r0 + step_r), c0, min(w, c0 + step_c))
                  for r0 in range(0, h, step_r) for c0 in range(0, w, step_c)]

        def run(block: tuple[int, int, int, int]) -> None:
            r0, r1, c0, c1 = block
            a, b, c, d = max(0, r0 - halo), min(h, r1 + halo), max(0, c0 - halo), min(w, c1 + halo)
            with torch.inference_mode():  # grad mode is per thread
                f, g = self._forward(image[..., a:b, c:d], map_[..., a:b, c:d], mean)
                field[..., r0:r1, c0:c1] = f[..., r0 - a:r1 - a, c0 - c:c1 - c]
                logits[..., r0:r1, c0:c1] = g[..., r0 - a:r1 - a, c0 - c:c1 - c]

        threads = torch.get_num_threads()
        if threads < 2 or len(blocks) < 2:
            for block in blocks:
                run(block)
            return field, logits
        with torch_threads(1), ThreadPoolExecutor(min(threads, len(blocks))) as pool:
            list(pool.map(run, blocks))
        return field, logits

    def _compress(self, corr: torch.Tensor, edge_corr: torch.Tensor) -> torch.Tensor:
        """``compress(cat([corr, edge_corr]))`` as two matrix products: a 1×1 convolution is
        linear, so its weight splits by input channel and no 98-channel concatenation is built;
        ``matmul`` is 7× faster than oneDNN's 1×1 convolution here."""
        conv = self.compress[0]
        n = corr.shape[1]
        weight = conv.weight[:, :, 0, 0]
        y = (torch.matmul(weight[:, :n], corr.flatten(2)) + torch.matmul(weight[:, n:], edge_corr.flatten(2))
             + conv.bias[:, None])
        return self.compress[1](y.view(corr.shape[0], -1, *corr.shape[-2:]))

    def _forward(self, image: torch.Tensor, map_: torch.Tensor,
                 mean_grad: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        # The 3×3 convolutions run channels-last (oneDNN: 2-3.5× faster than NCHW at these
        # widths); the cost volumes and the 1×1 compress, per-channel work, run NCHW.
        cl = torch.channels_last
        grads = image_gradients(image)  # once: the encoder's input and the edge image
        feats_img = self.image_encoder(torch.cat([image, grads], dim=1).contiguous(memory_format=cl))
        feats_map = self.map_encoder(map_.contiguous(memory_format=cl))
        fi = unit_vectors(feats_img).contiguous()
        fm = unit_vectors(feats_map).contiguous()
        corr = cost_volume(fm, fi, self.config.search_px)
        edge_corr = cost_volume(edge_map(map_), normalized_magnitude(grads, mean_grad), self.config.search_px)
        edge_soft = local_offset_estimate(edge_corr, self.offsets, self.edge_window_px,
                                          self.log_edge_temperature.exp()) / self.config.range_px
        soft = expected_offset(corr, self.log_temperature.exp(), self.offsets) / self.config.range_px
        x = torch.cat([self._compress(corr, edge_corr), soft, edge_soft, fm], dim=1).contiguous(memory_format=cl)
        field = torch.tanh(self.head(x)) * self.config.range_px
        return field.contiguous(), self.segmentation(feats_img).contiguous()


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def flops_per_megapixel(config: ScaleNetConfig = ScaleNetConfig()) -> float:
    """Floating-point operations (2 per multiply-add) per megapixel of the scale's grid."""
    net = ScaleNet(config)
    macs = 0
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            macs += m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
    n_off = (2 * config.search_px + 1) ** 2
    macs += n_off * config.features + n_off * 2  # cost volume + soft-argmax
    return 2.0 * macs * 1e6
