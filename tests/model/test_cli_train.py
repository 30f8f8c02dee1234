"""`geoalign train` end to end on a tiny dataset: model folder, card, resume of a finished run."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli.main import main
from geoalign.dataset import DatasetConfig, SourcePair, build_dataset
from geoalign.model.predictor import load_predictor


def test_train_cli_writes_a_loadable_model_and_card(austin, tmp_path):
    ds = tmp_path / "ds"
    build_dataset([SourcePair(austin["image"], austin["buildings"])], ds,
                  DatasetConfig(scales=(1, 0), patch_px=32, stride_fraction=1.0, gsd_m=1.2, holdout_fraction=0.25),
                  progress=False)
    args = ["-q", "train", str(ds), "-o", str(tmp_path / "model"), "--rounds", "1", "--steps", "2",
            "--pretrain-steps", "2", "--synthetic-pairs", "4", "--batch-size", "2", "--work-dir", str(tmp_path / "work")]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    assert card["gsd_m"] == 1.2 and card["parameters"] > 0 and len(card["metrics"]["rounds"]) == 1
    assert load_predictor(tmp_path / "model").gsd_m == 1.2
    res = CliRunner().invoke(main, args + ["--resume"], catch_exceptions=False)  # finished stages are skipped
    assert res.exit_code == 0, res.output


def test_train_cli_missing_dataset_is_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(main, ["train", str(tmp_path / "empty"), "-o", str(tmp_path / "m")])
    assert res.exit_code != 0 and "not a geoalign dataset" in res.output
