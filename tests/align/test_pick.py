"""Two learned proposals behind the classical stage, picked building by building by the image's edges."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from cli.main import main
from geoalign.inference.pick import EdgePickedPredictor, PassesPickedPredictor
from geoalign.rasterize import MAP_CHANNELS


class FixedField:
    """A FieldPredictor whose field is given: the proposals whose pick is under test."""

    name = "fixed"
    gsd_m = 0.3
    channels = MAP_CHANNELS

    def __init__(self, field: np.ndarray, context_px: int = 0) -> None:
        self.field, self.context_px = field, context_px

    def predict(self, image, valid, map_):
        h, w = image.shape[-2:]
        r0, c0 = (self.field.shape[1] - h) // 2, (self.field.shape[2] - w) // 2
        return self.field[:, r0:r0 + h, c0:c0 + w].copy()


def _scene(side: int = 160):
    """Two bright roofs; the map has both 6 px east of them."""
    image = np.full((3, side, side), 0.2, np.float32)
    roofs = [(30, 30), (30, 110)]
    for r, c in roofs:
        image[:, r:r + 24, c:c + 24] = 0.8
    map_ = np.zeros((len(MAP_CHANNELS), side, side), np.float32)
    for r, c in roofs:
        map_[0, r:r + 24, c + 6:c + 30] = 1.0
        map_[1, r:r + 24, c + 6:c + 30] = 1.0
        map_[1, r + 1:r + 23, c + 7:c + 29] = 0.0
    return image, np.ones((side, side), bool), map_


def test_each_building_takes_the_proposal_that_puts_it_on_the_image_edges():
    image, valid, map_ = _scene()
    zero = np.zeros((2, *image.shape[-2:]), np.float32)
    second = zero.copy()
    second[0, :, :80] = -6.0  # right for the west building
    second[0, :, 80:] = +6.0  # wrong for the east one: further off its roof
    picker = EdgePickedPredictor(FixedField(zero), FixedField(second))
    field = picker.predict(image, valid, map_)
    assert picker.last_second_share == 0.5
    west = map_[0, :, :80] > 0
    east = map_[0, :, 80:] > 0
    assert np.allclose(field[0, :, :80][west], -6.0, atol=0.05)
    assert np.allclose(field[0, :, 80:][east], 0.0, atol=0.05)
    both_wrong = picker.__class__(FixedField(zero), FixedField(np.full_like(zero, 6.0)))
    assert np.abs(both_wrong.predict(image, valid, map_)).max() < 1e-6 and both_wrong.last_second_share == 0.0


def test_each_building_keeps_the_pass_that_lands_it_on_its_roof():
    """A stage that moves everything 4 px west per pass: the building 8 px east of its roof
    needs two passes, the one 4 px east of its roof one (a second takes it 4 px past)."""
    image = np.full((3, 160, 160), 0.2, np.float32)
    map_ = np.zeros((len(MAP_CHANNELS), 160, 160), np.float32)
    for (r, c), off in zip([(30, 30), (30, 110)], (8, 4)):
        image[:, r:r + 24, c:c + 24] = 0.8
        map_[0, r:r + 24, c + off:c + off + 24] = 1.0
        map_[1, r:r + 24, c + off:c + off + 24] = 1.0
        map_[1, r + 1:r + 23, c + off + 1:c + off + 23] = 0.0
    step = np.zeros((2, 160, 160), np.float32)
    step[0] = -4.0
    picker = PassesPickedPredictor(FixedField(step), 2)
    field = picker.predict(image, np.ones((160, 160), bool), map_)
    assert picker.last_shares.tolist() == [0.5, 0.5] and picker.context_px == 0
    west, east = map_[0, :, :80] > 0, map_[0, :, 80:] > 0
    assert np.allclose(field[0, :, :80][west], -8.0, atol=0.05)
    assert np.allclose(field[0, :, 80:][east], -4.0, atol=0.05)


def test_each_proposal_runs_on_its_own_context_window():
    image, valid, map_ = _scene()
    wide = FixedField(np.zeros((2, 160, 160), np.float32), context_px=40)
    seen = []

    class Narrow(FixedField):
        def predict(self, image, valid, map_):
            seen.append(image.shape[-2:])
            return super().predict(image, valid, map_)

    EdgePickedPredictor(Narrow(np.zeros((2, 160, 160), np.float32), context_px=10), wide).predict(image, valid, map_)
    assert seen == [(100, 100)]  # the tile less the wide proposal's extra 30 px per side


def test_align_with_pick_scales_moves_buildings_and_refuses_a_pipeline_without_the_classical_stage(austin, align_austin,
                                                                                                   tmp_path):
    assert "scales 3,2,1 picked by edges" in align_austin(tmp_path / "picked", "--pick-scales", "3,2,1")
    res = CliRunner().invoke(main, ["align", str(austin["image"]), str(austin["buildings"]), "-o",
                                    str(tmp_path / "no"), "--method", "local", "--pick-scales", "3,2,1"])
    assert res.exit_code != 0 and "--pick-scales works behind the classical stage" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "no").exists()


def test_the_dask_workers_spec_builds_the_same_picked_pipeline():
    from geoalign.distributed import PredictorSpec

    predictor, name, note = PredictorSpec(None, pick_scales=(3, 2, 1)).resolve()
    picked = predictor.stages[1]
    assert name == "local+learned" and "scales 3,2,1 picked by edges" in note
    assert isinstance(picked, EdgePickedPredictor)
    assert picked.first.chain.config.scales == (1,) and picked.second.chain.config.scales == (3, 2, 1)
    assert predictor.context_px == predictor.stages[0].context_px + picked.second.context_px


def test_the_default_picks_the_cards_second_proposal_and_none_turns_it_off(austin, align_austin, tmp_path):
    from geoalign.distributed import PredictorSpec
    from geoalign.model.card import read_card
    from geoalign.model.predictor import DEFAULT_MODEL_DIR

    assert read_card(DEFAULT_MODEL_DIR)["combination"]["pick_scales"] == [3, 2, 1]
    predictor, name, note = PredictorSpec(None).resolve()
    assert name == "local+learned" and note == "shipped default model, scales 3,2,1 picked by edges"
    assert isinstance(predictor.stages[1], EdgePickedPredictor)
    assert predictor.stages[1].second.chain.config.scales == (3, 2, 1)
    alone, _, note = PredictorSpec(None, pick_scales=()).resolve()
    assert note == "shipped default model" and alone.stages[1].chain.config.scales == (1,)
    assert alone.context_px < predictor.context_px
    summary = align_austin(tmp_path / "scale1", "--pick-scales", "none")
    assert "with local+learned (shipped default model) on" in summary


def test_align_with_pick_passes_moves_buildings_and_refuses_what_it_cannot_pick(austin, align_austin, tmp_path):
    assert "2 passes picked by edges" in align_austin(tmp_path / "passes", "--pick-passes", "2")
    for extra, message in ((["--method", "local"], "not with local"),
                           (["--method", "learned", "--passes", "2"], "not both"),
                           (["--pick-scales", "3,2,1"], "not both")):
        res = CliRunner().invoke(main, ["align", str(austin["image"]), str(austin["buildings"]), "-o",
                                        str(tmp_path / "no"), "--pick-passes", "2", *extra])
        assert res.exit_code != 0 and message in res.output and "Traceback" not in res.output
        assert not (tmp_path / "no").exists()
    from geoalign.distributed import PredictorSpec

    predictor, name, note = PredictorSpec(None, pick_passes=2).resolve()
    assert name == "local+learned" and isinstance(predictor.stages[1], PassesPickedPredictor)
    assert predictor.stages[1].chain.stages[0].chain.config.scales == (1,)
    alone, name, note = PredictorSpec("learned", pick_passes=3).resolve()
    assert name == "learned" and note == "3 passes picked by edges" and isinstance(alone, PassesPickedPredictor)
    assert len(alone.chain.stages) == 3 and alone.chain.stages[0].chain.config.scales == (3, 3, 2, 2, 1, 0)
