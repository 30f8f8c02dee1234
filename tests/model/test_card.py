"""The model card is written by commands: `geoalign train` writes it (selecting the pipeline
`geoalign align` runs), benchmark commands add figures; the shipped card agrees with the code."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from cli.main import main
from geoalign.align import resolve_predictor
from geoalign.dataset import DatasetConfig, SourcePair, build_dataset
from geoalign.model.card import read_card, record_benchmark
from geoalign.model.chain import chain_alone_scales
from geoalign.model.predictor import DEFAULT_MODEL_DIR, load_predictor
from geoalign.model.scale_net import count_parameters, flops_per_megapixel

ROOT = Path(__file__).resolve().parents[2]
PIPELINE_KEYS = ("align_pipeline", "combination", "realign_with", "smooth_sigma_px")


def _train_default_options() -> list[str]:
    """The options `make train-default` passes to `geoalign train` (its DEFAULT_TRAIN_OPTIONS)."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    return shlex.split(re.search(r"^DEFAULT_TRAIN_OPTIONS :=(.*)$", text, re.M).group(1))


def test_the_card_geoalign_train_writes_selects_the_shipped_pipeline(austin, tmp_path):
    ds = tmp_path / "ds"
    build_dataset([SourcePair(austin["image"], austin["buildings"])], ds,
                  DatasetConfig(scales=(1, 0), patch_px=32, stride_fraction=1.0, gsd_m=1.2, holdout_fraction=0.25),
                  progress=False)
    options = _train_default_options()
    assert "--align-pipeline" in options and "--learned-scales" in options
    tiny = ["--rounds", "1", "--steps", "2", "--pretrain-steps", "2", "--synthetic-pairs", "4", "--batch-size", "2"]
    args = ["-q", "train", str(ds), "-o", str(tmp_path / "model"), "--work-dir", str(tmp_path / "work"), *options, *tiny]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    card, shipped = read_card(tmp_path / "model"), read_card(DEFAULT_MODEL_DIR)
    assert {k: card.get(k) for k in PIPELINE_KEYS} == {k: shipped.get(k) for k in PIPELINE_KEYS}
    # no entry of the shipped card is hand-written: "trust_calibration" comes from `geoalign model calibrate`
    assert set(card) == set(shipped) - {"benchmarks", "trust_calibration"}
    assert card["context_px"] == load_predictor(tmp_path / "model").context_px
    predictor, name, _ = resolve_predictor(None, tmp_path / "model")
    assert name == shipped["align_pipeline"] == "local+learned"
    picked = predictor.stages[1]
    assert list(picked.first.chain.config.scales) == shipped["combination"]["learned_scales"]
    assert list(picked.second.chain.config.scales) == shipped["combination"]["pick_scales"]


def test_the_chain_alone_runs_the_cards_chain_scales_a_scale_given_twice_twice(austin, tmp_path):
    ds = tmp_path / "ds"
    build_dataset([SourcePair(austin["image"], austin["buildings"])], ds,
                  DatasetConfig(scales=(1, 0), patch_px=32, stride_fraction=1.0, gsd_m=1.2, holdout_fraction=0.25),
                  progress=False)
    tiny = ["--rounds", "1", "--steps", "2", "--pretrain-steps", "0", "--batch-size", "2"]
    args = ["-q", "train", str(ds), "-o", str(tmp_path / "model"), "--work-dir", str(tmp_path / "work"),
            "--align-pipeline", "learned", "--chain-scales", "1,1,0", *tiny]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert read_card(tmp_path / "model")["chain_scales"] == [1, 1, 0]
    predictor, name, _ = resolve_predictor(None, tmp_path / "model")
    assert name == "learned" and predictor.chain.config.scales == (1, 1, 0)
    once, _, _ = resolve_predictor("learned", tmp_path / "model", learned_scales=(1, 0))
    assert once.chain.config.scales == (1, 0) and once.context_px < predictor.context_px


def test_a_card_without_chain_scales_runs_each_scale_coarser_than_1_twice_in_the_chain_alone():
    assert "chain_scales" not in read_card(DEFAULT_MODEL_DIR)
    predictor, name, _ = resolve_predictor("learned")
    assert name == "learned" and predictor.chain.config.scales == (3, 3, 2, 2, 1, 0)
    assert predictor.context_px > load_predictor().context_px
    assert chain_alone_scales((0, 2, 1)) == (2, 2, 1, 0) and chain_alone_scales((1, 0)) == (1, 0)


def test_the_shipped_cards_figures_agree_with_the_code():
    card, predictor = read_card(DEFAULT_MODEL_DIR), load_predictor()
    chain = predictor.chain
    assert card["context_px"] == predictor.context_px
    assert card["parameters"] == count_parameters(chain)
    assert card["gsd_m"] == predictor.gsd_m
    assert card["scales"] == list(chain.config.scales)
    assert card["smooth_sigma_px"] == chain.config.smooth_sigma_px
    assert card["flops_per_megapixel_per_scale"] == flops_per_megapixel(chain.config.net)


def test_the_shipped_card_states_what_is_and_which_command_measured_it():
    card = read_card(DEFAULT_MODEL_DIR)
    assert all(entry["command"].startswith("make bench-") for entry in card["benchmarks"].values())
    assert card["training_command"].startswith("geoalign train ")


def test_a_benchmark_adds_its_figures_beside_the_training_entries(tmp_path):
    (tmp_path / "model_card.json").write_text(json.dumps({"gsd_m": 0.3}))
    record_benchmark(tmp_path, "speed", {"mp_per_s": 0.65}, command="make bench-align-speed")
    record_benchmark(tmp_path, "speed", {"mp_per_s": 0.7}, command="make bench-align-speed")
    assert read_card(tmp_path) == {"gsd_m": 0.3, "benchmarks": {"speed": {"command": "make bench-align-speed",
                                                                          "mp_per_s": 0.7}}}
