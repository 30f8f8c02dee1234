"""One scale network's field near a patch's centre, computed layer by layer on what it depends on.

The trust report differentiates the network's output at one pixel, the patch centre, with
respect to every parameter (a per-patch Jacobian, two backward passes). That pixel depends on
a cone of the inputs that narrows towards the output: the edge smoothing reads the field within
its Gaussian's radius, the head reads its input within 8 px, the cost volumes their features
within the search range, the encoders their input within 4 px. :func:`cone_field` evaluates
:class:`~geoalign.model.scale_net.ScaleNet`'s forward stage by stage on exactly those windows
(each stage on a centred crop of the previous stage's valid output), so the later, wider
stages run on 54 px instead of 76 px, and the cost volume of the learned features
differentiates by one accumulation per offset (:class:`ValidCostVolume`) instead of autograd's
slice-and-pad chain. The value and the gradients at the centre are those of the whole network
(float rounding aside; tested against it), which :class:`~geoalign.report.stats.CentreNet`
checks once more on the network it is given before using this path.
"""

from __future__ import annotations

import torch


class ValidCostVolume(torch.autograd.Function):
    """``corr[:, k](q) = <f_map(q), f_img(q + d_k)>`` with ``f_img`` given ``r`` px wider on each
    side than ``f_map`` (no padding: every offset reads real features); offsets row-major (dy, dx)
    in [-r, r]², as :func:`geoalign.model.scale_net.cost_volume`."""

    @staticmethod
    def forward(ctx, f_map: torch.Tensor, f_img: torch.Tensor, r: int) -> torch.Tensor:
        n, c, h, w = f_map.shape
        out = f_map.new_empty((n, (2 * r + 1) ** 2, h, w))
        for k, (a, b) in enumerate(_shifts(r)):
            torch.sum(f_map * f_img[:, :, a:a + h, b:b + w], dim=1, out=out[:, k])
        ctx.save_for_backward(f_map, f_img)
        ctx.r = r
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        f_map, f_img = ctx.saved_tensors
        h, w = f_map.shape[-2:]
        g_map = torch.zeros_like(f_map) if ctx.needs_input_grad[0] else None
        g_img = torch.zeros_like(f_img) if ctx.needs_input_grad[1] else None
        for k, (a, b) in enumerate(_shifts(ctx.r)):
            gk = grad[:, k:k + 1]
            if g_map is not None:
                g_map.addcmul_(gk, f_img[:, :, a:a + h, b:b + w])
            if g_img is not None:
                g_img[:, :, a:a + h, b:b + w].addcmul_(gk, f_map)
        return g_map, g_img, None


def _shifts(r: int) -> list[tuple[int, int]]:
    return [(r + dy, r + dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]


def _crop(x: torch.Tensor, m: int) -> torch.Tensor:
    """``x`` less ``m`` px on every side."""
    return x if m == 0 else x[..., m:x.shape[-2] - m, m:x.shape[-1] - m]


def cone_field(net, image: torch.Tensor, map_: torch.Tensor, mean_grad: torch.Tensor,
               field_radius_px: int) -> torch.Tensor:
    """``net._forward(image, map_, mean_grad)[0]`` on the centred window of half-size
    ``field_radius_px + 1`` (centre pixel at index ``field_radius_px + 1``), computed on the
    cone (module docstring). ``image``/``map_`` are a centred crop of even side whose half-size
    is at least ``field_radius_px + 1`` plus the network's receptive radius."""
    from geoalign.model.scale_net import (
        box_sum, edge_map, expected_offset, image_gradients, normalized_magnitude, unit_vectors, window_soft_offset,
    )

    cl = torch.channels_last  # as the network's own forward
    half = image.shape[-1] // 2
    r, win, rng = int(net.config.search_px), int(net.edge_window_px), float(net.config.range_px)
    # radii (around the centre) each quantity is needed at
    r_field = field_radius_px
    r_x = r_field + 8  # the head's input
    r_fi = r_x + r  # image features: the cost volume reads them up to r px away
    r_edge = r_x + win  # the edge cost volume, summed over ±win windows
    r_mag = r_edge + r

    def m(radius: int) -> int:  # margin of the centred window that holds ``radius`` (high side: radius + 1)
        return half - radius - 1

    grads = image_gradients(image)  # local (replicate at the crop's border, 1 px)
    img_in = _crop(torch.cat([image, grads], dim=1), m(r_fi + 4))
    fi = _crop(unit_vectors(net.image_encoder(img_in.contiguous(memory_format=cl))), 4).contiguous()
    fm = _crop(unit_vectors(net.map_encoder(_crop(map_, m(r_x + 4)).contiguous(memory_format=cl))), 4).contiguous()
    corr = ValidCostVolume.apply(fm, fi, r)
    mag = _crop(normalized_magnitude(grads, mean_grad), m(r_mag))
    edge_corr = ValidCostVolume.apply(_crop(edge_map(map_), m(r_edge)), mag, r)
    # the edge windows of the head's pixels only (each lies inside edge_corr: r_edge = r_x + win)
    total = _crop(box_sum(box_sum(edge_corr, win, -2), win, -1), win)
    edge_soft = window_soft_offset(total, float((2 * win + 1) ** 2), net.offsets,
                                   net.log_edge_temperature.exp()) / rng
    edge_corr = _crop(edge_corr, win)
    soft = expected_offset(corr, net.log_temperature.exp(), net.offsets) / rng
    x = torch.cat([net._compress(corr, edge_corr), soft, edge_soft, fm], dim=1).contiguous(memory_format=cl)
    field = torch.tanh(net.head(x)) * rng
    return _crop(field, r_x - r_field).contiguous()
