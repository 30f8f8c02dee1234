"""geoalign.model.warp is geoalign.deform's math in torch: each function against its numpy twin."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from geoalign.deform import compose_fields, invert_field, random_smooth_field, sample_field, warp_raster
from geoalign.model.warp import (
    compose_fields_torch, gaussian_blur_torch, invert_field_torch, move_map_torch, resize_field,
    sample_field_torch, smooth_field_at_edges, warp_raster_torch,
)

INNER = (slice(None), slice(5, -5), slice(5, -5))  # away from the borders, where padding rules differ


def _field(shape, amp=3.0, seed=0):
    return random_smooth_field(shape, max_amplitude_px=amp, correlation_length_px=12.0,
                               rng=np.random.default_rng(seed))


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None]


def test_warp_raster_matches_numpy():
    raster = np.random.default_rng(1).random((3, 40, 50)).astype(np.float32)
    phi = _field((40, 50))
    ref = warp_raster(raster, phi)
    got = warp_raster_torch(_t(raster), _t(phi))[0].numpy()
    assert np.abs(got - ref)[:, 4:-4, 4:-4].max() < 1e-4


def test_sample_field_matches_numpy_bilinear_sampling():
    """``sample_field_torch(f, a)`` at pixel q is deform's ``sample_field(f, centre(q) + a(q))``."""
    f, a = _field((32, 36), seed=4), _field((32, 36), amp=2.0, seed=5)
    rows, cols = np.mgrid[0:32, 0:36]
    points = np.column_stack([(cols + 0.5 + a[0]).ravel(), (rows + 0.5 + a[1]).ravel()])
    ref = sample_field(f, points).T.reshape(2, 32, 36)
    got = sample_field_torch(_t(f), _t(a))[0].numpy()
    assert np.abs(got - ref)[INNER].max() < 1e-4


def test_invert_and_compose_match_numpy():
    a, b = _field((48, 48), seed=2), _field((48, 48), amp=2.0, seed=3)
    assert np.abs(invert_field_torch(_t(a), 20)[0].numpy() - invert_field(a))[INNER].max() < 1e-3
    assert np.abs(compose_fields_torch(_t(a), _t(b))[0].numpy() - compose_fields(a, b))[INNER].max() < 1e-3


def test_move_map_is_the_warp_by_the_inverse_field():
    raster = np.zeros((1, 48, 48), np.float32)
    raster[0, 16:32, 12:30] = 1.0
    phi = _field((48, 48), seed=6)
    ref = warp_raster(raster, invert_field(phi, iterations=20))
    got = move_map_torch(_t(raster), _t(phi), iterations=20)[0].numpy()
    assert np.abs(got - ref)[INNER].max() < 1e-3


def test_move_map_on_a_coarser_inversion_grid_stays_within_a_hundredth_of_a_pixel():
    """A building moved by a smooth 6 px field with the inverse solved on a 2× coarser grid lands
    where the full-resolution inverse puts it: its moved fill's centroid within 0.01 px."""
    raster = np.zeros((1, 96, 96), np.float32)
    raster[0, 30:62, 24:60] = 1.0
    phi = random_smooth_field((96, 96), max_amplitude_px=6.0, correlation_length_px=32.0,
                              rng=np.random.default_rng(8))
    exact = move_map_torch(_t(raster), _t(phi))[0, 0].numpy()
    coarse = move_map_torch(_t(raster), _t(phi), step_px=2)[0, 0].numpy()
    shift = np.subtract(ndimage.center_of_mass(exact), ndimage.center_of_mass(coarse))
    assert np.abs(shift).max() < 0.01
    assert 0 < np.abs(exact - coarse).max() < 0.1  # a different, close computation


def test_large_warps_split_across_threads_give_the_same_values_bit_for_bit():
    """Without gradients a warp of ≥ 1 MP runs in row bands on torch's threads."""
    from geoalign.model.threads import torch_threads
    from geoalign.model.warp import SPLIT_SAMPLE_MIN_PX

    side = int(np.ceil(np.sqrt(SPLIT_SAMPLE_MIN_PX))) + 8
    raster = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    phi = resize_field(torch.randn(1, 2, 16, 16, generator=torch.Generator().manual_seed(1)) * 5, (side, side))
    with torch.inference_mode():
        with torch_threads(1):
            one = warp_raster_torch(raster, phi)
        with torch_threads(2):
            two = warp_raster_torch(raster, phi)
    assert torch.equal(one, two)
    assert one.abs().sum() > 0


def test_resize_field_rescales_its_pixel_units():
    f = torch.ones(1, 2, 8, 8)
    assert torch.allclose(resize_field(f, (32, 32)), torch.full((1, 2, 32, 32), 4.0))
    assert torch.allclose(resize_field(torch.full((1, 2, 8, 8), 6.0), (4, 2)), torch.stack(
        [torch.full((4, 2), 1.5), torch.full((4, 2), 3.0)])[None])


def test_gaussian_blur_matches_scipy_with_replicated_edges():
    x = np.random.default_rng(7).random((2, 30, 40)).astype(np.float32)
    ref = np.stack([ndimage.gaussian_filter(c, 2.0, mode="nearest", truncate=3.0) for c in x])
    got = gaussian_blur_torch(_t(x), 2.0)[0].numpy()
    assert np.abs(got - ref).max() < 1e-5


def test_edge_weighted_smoothing_is_the_normalized_convolution():
    field = _field((32, 32), seed=8)
    edges = np.zeros((1, 32, 32), np.float32)
    edges[0, 10, :] = 1.0
    w = edges[0] + 1e-3
    blur = lambda a: ndimage.gaussian_filter(a, 3.0, mode="nearest", truncate=3.0)  # noqa: E731
    ref = np.stack([blur(c * w) / blur(w) for c in field])
    got = smooth_field_at_edges(_t(field), _t(edges), 3.0)[0].numpy()
    assert np.abs(got - ref).max() < 1e-4
