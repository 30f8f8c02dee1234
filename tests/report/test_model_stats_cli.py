"""`geoalign model stats` and `geoalign train` leave training statistics loadable without pickle."""

from __future__ import annotations

import shutil

import numpy as np
from click.testing import CliRunner

from cli.main import main
from geoalign.report.stats import STATS_FILE, TrainingStats


def test_model_stats_cli_writes_plain_arrays(tiny_model, tiny_dataset, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder)
    (folder / STATS_FILE).unlink()
    res = CliRunner().invoke(main, ["-q", "model", "stats", str(folder), str(tiny_dataset), "--max-patches", "6"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    with np.load(folder / STATS_FILE, allow_pickle=False) as z:  # plain arrays only
        assert z["s1/whitened_sum"].dtype == np.float32 and z["s1/densities"].shape == (6,)
    assert TrainingStats.load(folder).scales[1].reference.count == 6
    assert (folder / STATS_FILE).stat().st_size < 1_000_000


def test_model_stats_bad_inputs_are_one_line_errors(tiny_model, tmp_path):
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(main, ["model", "stats", str(tiny_model), str(tmp_path / "empty")])
    assert res.exit_code != 0 and "not a geoalign dataset" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["model", "stats", str(tiny_model), str(tmp_path / "empty"), "--scales", "x"])
    assert res.exit_code != 0 and "--scales" in res.output


def test_train_stores_the_statistics_with_the_model(tiny_dataset, tmp_path):
    from geoalign.train.run import train_model

    from .conftest import TINY

    train_model(tiny_dataset, tmp_path / "model", work_dir=tmp_path / "work", rounds=1, steps=2, pretrain_steps=0,
                synthetic_weight=0.0, batch_size=2, progress=False, chain_config=TINY)
    stats = TrainingStats.load(tmp_path / "model")
    assert sorted(stats.scales) == [1]  # the scales align's pipeline runs (the card's combination.learned_scales)
    assert all(st.reference.count > 0 for st in stats.scales.values())
