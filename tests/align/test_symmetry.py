"""The field averaged over rotations / flips: the numpy turns match the training augmentations,
an equivariant predictor is unchanged, a fixed-direction error averages out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geoalign.inference.symmetry import SYMMETRIES, SymmetryAveragedPredictor, turn, unturn_field
from geoalign.train.augment import hflip_batch, rot90_batch

ALL = SYMMETRIES[8]


@pytest.mark.parametrize("k,flip", ALL)
def test_turns_match_the_training_augmentations(k, flip):
    rng = np.random.default_rng(k + 4 * flip)
    x = rng.normal(size=(2, 5, 7)).astype(np.float32)
    for is_field in (False, True):
        t = rot90_batch(torch.from_numpy(x)[None], k, is_field=is_field)
        want = (hflip_batch(t, is_field=is_field) if flip else t)[0].numpy()
        np.testing.assert_array_equal(turn(x, k, flip, is_field=is_field), want)
    np.testing.assert_array_equal(unturn_field(turn(x, k, flip, is_field=True), k, flip), x)


class Gradient:
    """Equivariant: the field is the gradient of the map's fill (x east, y south), plus a fixed
    ``bias`` vector that is not (it points east whatever the tile's orientation)."""

    name, gsd_m, context_px, channels = "toy", None, 0, ("fill",)

    def __init__(self, bias: tuple[float, float] = (0.0, 0.0)):
        self.bias = np.array(bias, np.float32)[:, None, None]

    def predict(self, image, valid, map_):
        gy, gx = np.gradient(map_[0].astype(np.float64))
        return (np.stack([gx, gy]) + self.bias).astype(np.float32)


def _inputs(h: int = 24, w: int = 32):
    yy, xx = np.mgrid[0:h, 0:w]
    fill = np.exp(-((xx - 11.0) ** 2 + (yy - 9.0) ** 2) / 30.0) + 0.3 * (xx > 20)
    return np.zeros((3, h, w), np.float32), np.ones((h, w), bool), fill[None].astype(np.float32)


@pytest.mark.parametrize("n", sorted(SYMMETRIES))
def test_an_equivariant_predictor_is_unchanged(n):
    image, valid, map_ = _inputs()
    inner = Gradient()
    got = SymmetryAveragedPredictor(inner, n).predict(image, valid, map_)
    np.testing.assert_allclose(got, inner.predict(image, valid, map_), atol=1e-6)
    assert np.abs(got).max() > 0.1


@pytest.mark.parametrize("n", [2, 4, 8])
def test_an_error_that_does_not_turn_with_the_tile_averages_out(n):
    image, valid, map_ = _inputs()
    exact = Gradient().predict(image, valid, map_)
    biased = Gradient(bias=(1.5, 0.0))
    assert np.abs(biased.predict(image, valid, map_) - exact).max() == pytest.approx(1.5)
    got = SymmetryAveragedPredictor(biased, n).predict(image, valid, map_)
    np.testing.assert_allclose(got, exact, atol=1e-6)


def test_one_symmetry_is_the_predictor_itself_and_others_are_refused():
    image, valid, map_ = _inputs()
    biased = Gradient(bias=(0.5, -0.25))
    np.testing.assert_array_equal(SymmetryAveragedPredictor(biased, 1).predict(image, valid, map_),
                                  biased.predict(image, valid, map_))
    with pytest.raises(ValueError, match="1, 2, 4, 8"):
        SymmetryAveragedPredictor(biased, 3)


def test_align_with_symmetries_averages_the_learned_stage_and_refuses_a_classical_method(austin, align_austin,
                                                                                         tmp_path):
    from click.testing import CliRunner

    from cli.main import main
    from geoalign.distributed import PredictorSpec

    assert "averaged over 2 rotations/flips" in align_austin(tmp_path / "sym", "--symmetries", "2")
    for extra, message in ((["--method", "local"], "not the classical local search"),
                           (["--symmetries", "3"], "'3' is not one of")):
        res = CliRunner().invoke(main, ["align", str(austin["image"]), str(austin["buildings"]), "-o",
                                        str(tmp_path / "no"), "--symmetries", "2", *extra])
        assert res.exit_code != 0 and message in res.output and "Traceback" not in res.output
        assert not (tmp_path / "no").exists()
    predictor, name, note = PredictorSpec(None, pick_passes=2, symmetries=4).resolve()
    passes = predictor.stages[1].chain.stages
    assert name == "local+learned" and "2 passes picked by edges, averaged over 4 rotations/flips" in note
    assert all(isinstance(s, SymmetryAveragedPredictor) and len(s.symmetries) == 4 for s in passes)
    assert passes[0].inner.chain.config.scales == (1,)
    chain, _, note = PredictorSpec("learned", passes=2, symmetries=2).resolve()
    assert note == "2 passes, averaged over 2 rotations/flips" and len(chain.stages[0].symmetries) == 2
