"""Classical baselines on real imagery: known global shift, known smooth field."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geoalign.baselines import GlobalShiftPredictor, LocalOffsetPredictor, TVL1Predictor
from geoalign.deform import correct_points
from geoalign.rasterize import rasterize_map, translate_geoms

from .conftest import median_error, smooth_misalignment


@pytest.mark.parametrize("shift_xy", [(3.7, -5.2), (-17.3, 11.6)])
def test_global_shift_recovered_within_half_a_pixel(kampala_px, shift_xy):
    image, valid, _, geoms = kampala_px

    def estimate(t):
        # Map drawn shifted by -t: what it shows at q belongs at q + t, so the field is t.
        mis = translate_geoms(geoms, -t[0], -t[1])
        field = GlobalShiftPredictor().predict(image, valid, rasterize_map(mis, image.shape[1:]))
        assert np.allclose(field, field[:, :1, :1])  # constant
        return field[:, 0, 0].astype(np.float64)

    # The labels themselves sit a little off the roofs (traced on this imagery at 7.5 cm/px): the
    # added shift is recovered relative to the labels' own offset, which is itself about 1 px.
    own = estimate((0.0, 0.0))
    assert np.hypot(*own) < 1.5
    assert np.hypot(*(estimate(shift_xy) - own - shift_xy)) < 0.5


def test_global_shift_by_summed_tiles_equals_whole(austin_px):
    image, valid, _, geoms = austin_px
    m = rasterize_map(translate_geoms(geoms, -6.0, 4.0), image.shape[1:])
    whole = GlobalShiftPredictor().predict(image, valid, m)[:, 0, 0]
    p = GlobalShiftPredictor()
    for r in (0, 500):  # two halves, each with its own context margin of zeros
        p.accumulate(image[:, r:r + 500], valid[r:r + 500], m[:, r:r + 500])
    tiled = p.finish()
    assert np.hypot(*(tiled - whole)) < 0.5
    assert np.hypot(*(whole - (6.0, -4.0))) < 1.5  # this crop's labels sit ~0.7 px off the roofs


@pytest.mark.parametrize("predictor,ratio", [(LocalOffsetPredictor(), 0.5), (TVL1Predictor(), 0.9)])
def test_smooth_field_mostly_recovered(austin_px, predictor, ratio):
    image, valid, _, geoms = austin_px
    mis, _ = smooth_misalignment(geoms, image.shape[1:], 12.0, seed=5)
    truth, q = shapely.get_coordinates(geoms), shapely.get_coordinates(mis)
    field = predictor.predict(image, valid, rasterize_map(mis, image.shape[1:]))
    before, after = median_error(q, truth), median_error(correct_points(q, field), truth)
    assert before > 3.0
    assert after < ratio * before, (before, after)


def test_no_buildings_gives_zero_field(austin_px):
    image, valid, _, _ = austin_px
    empty = np.zeros((3, *image.shape[1:]), np.float32)
    for p in (GlobalShiftPredictor(), LocalOffsetPredictor(), TVL1Predictor()):
        assert not np.any(p.predict(image, valid, empty))
