"""`geoalign train` end to end on a tiny dataset: model folder, card, resume of a finished run."""

from __future__ import annotations

import json

import pytest

from click.testing import CliRunner

from cli.main import main
from geoalign.dataset import DatasetConfig, SourcePair, build_dataset
from geoalign.model.predictor import load_predictor
from geoalign.train.trainer import STATE, load_state


def test_train_cli_writes_a_loadable_model_and_card(austin, tmp_path):
    ds = tmp_path / "ds"
    build_dataset([SourcePair(austin["image"], austin["buildings"])], ds,
                  DatasetConfig(scales=(1, 0), patch_px=32, stride_fraction=1.0, gsd_m=1.2, holdout_fraction=0.25),
                  progress=False)
    args = ["-q", "train", str(ds), "-o", str(tmp_path / "model"), "--rounds", "1", "--steps", "2",
            "--pretrain-steps", "2", "--synthetic-pairs", "4", "--batch-size", "2", "--work-dir", str(tmp_path / "work"),
            "--average-tail", "0.5", "--rounds-lr", "0.001"]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    assert card["training"]["average_tail"] == 0.5  # the round's last step of two is averaged, pretraining's not
    round0_state, pretrain_state = (load_state(tmp_path / "work" / p / STATE) for p in ("rounds/round0/train", "pretrain"))
    assert round0_state["average"]["count"] == 1 and "average" not in pretrain_state
    assert card["training"]["rounds_lr"] == 0.001 and json.loads(round0_state["train_config"])["lr"] == 0.001
    assert json.loads(pretrain_state["train_config"])["lr"] == 3e-3
    assert card["gsd_m"] == 1.2 and card["parameters"] > 0 and len(card["metrics"]["rounds"]) == 1
    pre, round0 = card["metrics"]["pretrain_last"]["time_s"], card["metrics"]["rounds"][0]["val"]["time_s"]
    assert card["training"]["train_steps_s_total"] == pytest.approx(pre + round0) and pre > 0 and round0 > 0
    assert load_predictor(tmp_path / "model").gsd_m == 1.2
    res = CliRunner().invoke(main, args + ["--resume"], catch_exceptions=False)  # finished stages are skipped
    assert res.exit_code == 0, res.output


def test_fine_tune_with_per_scale_nets_trains_only_the_given_scales(austin, tmp_path):
    """--init-from a shared chain, --per-scale-nets --train-scales 1: scale 1's network moves,
    the others keep the shared weights it started from, and the card says which scales trained."""
    import torch

    from geoalign.model.checkpoint import load_model

    ds = tmp_path / "ds"
    build_dataset([SourcePair(austin["image"], austin["buildings"])], ds,
                  DatasetConfig(scales=(1, 0), patch_px=32, stride_fraction=1.0, gsd_m=1.2, holdout_fraction=0.25),
                  progress=False)
    common = ["-q", "train", str(ds), "--rounds", "1", "--steps", "3", "--batch-size", "2"]
    res = CliRunner().invoke(main, common + ["-o", str(tmp_path / "base"), "--pretrain-steps", "0",
                                             "--work-dir", str(tmp_path / "w0")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, common + ["-o", str(tmp_path / "ft"), "--pretrain-steps", "0", "--init-from",
                                             str(tmp_path / "base"), "--per-scale-nets", "--train-scales", "1",
                                             "--work-dir", str(tmp_path / "w1")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    base, ft = load_model(tmp_path / "base")[0], load_model(tmp_path / "ft")[0]
    assert base.config.shared and not ft.config.shared and set(ft.nets) == {"3", "2", "1", "0"}
    shared = base.net(0).state_dict()
    for s in (3, 2, 0):
        assert all(torch.equal(v, shared[k]) for k, v in ft.net(s).state_dict().items())
    moved = max(float((v - shared[k]).abs().max()) for k, v in ft.net(1).state_dict().items()
                if v.is_floating_point())
    assert moved > 1e-4
    card = json.loads((tmp_path / "ft" / "model_card.json").read_text())
    assert card["training"]["train_scales"] == [1] and not card["shared_weights"]
    assert card["training"]["init_model_training_command"].startswith("geoalign ")
    res = CliRunner().invoke(main, common + ["-o", str(tmp_path / "x"), "--train-scales", "5",
                                             "--init-from", str(tmp_path / "base")])
    assert res.exit_code != 0 and "not scales of the chain" in res.output and "Traceback" not in res.output


def test_widen_net_pretrains_the_wider_scale_on_rendered_cities(austin, tmp_path):
    """--widen-net 1 F H with --train-scales 1: the rendered cities (one scale, random ground
    sampling) train scale 1's own network; the other scales keep their weights; the card
    records the sizes."""
    import torch

    from geoalign.model.checkpoint import load_model

    ds = tmp_path / "ds"
    build_dataset([SourcePair(austin["image"], austin["buildings"])], ds,
                  DatasetConfig(scales=(1, 0), patch_px=32, stride_fraction=1.0, gsd_m=1.2, holdout_fraction=0.25),
                  progress=False)
    common = ["-q", "train", str(ds), "--rounds", "1", "--steps", "2", "--batch-size", "2", "--synthetic-pairs", "4"]
    res = CliRunner().invoke(main, common + ["-o", str(tmp_path / "base"), "--pretrain-steps", "0",
                                             "--work-dir", str(tmp_path / "w0")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, common + ["-o", str(tmp_path / "wide"), "--pretrain-steps", "3", "--init-from",
                                             str(tmp_path / "base"), "--train-scales", "1", "--widen-net", "1", "16",
                                             "20", "--synthetic-weight", "0", "--work-dir", str(tmp_path / "w1")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    base, wide = load_model(tmp_path / "base")[0], load_model(tmp_path / "wide")[0]
    assert wide.net(1).config.features == 16 and wide.net(1).config.hidden == 20
    shared = base.net(0).state_dict()
    for s in (3, 2, 0):
        assert all(torch.equal(v, shared[k]) for k, v in wide.net(s).state_dict().items())
    history = (tmp_path / "w1" / "pretrain" / "history.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["step"] == 3  # the rendered cities trained scale 1's network
    card = json.loads((tmp_path / "wide" / "model_card.json").read_text())
    assert card["scale_nets"]["1"]["hidden"] == 20 and card["training"]["widen_nets"] == [[1, 16, 20]]
    assert card["scale_nets"]["1"]["parameters"] > card["parameters_per_scale_net"]
    res = CliRunner().invoke(main, common + ["-o", str(tmp_path / "narrower"), "--pretrain-steps", "0",
                                             "--init-from", str(tmp_path / "base"), "--widen-net", "1", "2", "2"])
    assert res.exit_code != 0 and "only features and hidden may grow" in res.output and "Traceback" not in res.output


def test_train_cli_missing_dataset_is_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(main, ["train", str(tmp_path / "empty"), "-o", str(tmp_path / "m")])
    assert res.exit_code != 0 and "not a geoalign dataset" in res.output
