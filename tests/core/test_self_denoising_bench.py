"""The self-denoising benchmark resumes a seed's rounds only from a folder run with the same settings."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from benchmarks.self_denoising import rounds_settings, work_dir_of

SHIPPED = Path(__file__).resolve().parents[2] / "geoalign/model/default"


def options(work_dir: Path | None, **changes) -> argparse.Namespace:
    base = {"sigma": 4.0, "rounds": 4, "steps": 600, "pretrained": SHIPPED, "work_dir": work_dir, "threads": 1,
            "seeds": [0, 1], "average_tail": 0.5, "lr": 0.001, "name": "x", "smooth_sigma": None, "scales": None,
            "realign_with": "learned", "realign_smooth_px": 0.0, "realign_symmetries": 1, "learned_scales": [1]}
    return argparse.Namespace(**{**base, **changes})


def test_rounds_settings_change_with_the_seed_the_options_and_the_starting_weights(tmp_path):
    args = options(None)
    assert rounds_settings(args, 0) == rounds_settings(options(None, rounds=5, name="y", threads=2), 0)
    assert rounds_settings(args, 0) != rounds_settings(args, 1)
    assert rounds_settings(args, 0) != rounds_settings(options(None, lr=0.003), 0)
    copy = tmp_path / "model"
    shutil.copytree(SHIPPED, copy)
    same = rounds_settings(options(None, pretrained=copy), 0)
    (copy / "weights.pt").write_bytes((copy / "weights.pt").read_bytes() + b"\0")
    assert rounds_settings(options(None, pretrained=copy), 0)["pretrained_weights_sha256"] != \
        same["pretrained_weights_sha256"]


def test_a_work_folder_of_other_settings_is_refused(tmp_path):
    first = work_dir_of(options(tmp_path), 0)
    assert first == tmp_path / "seed0" and (first / "settings.json").exists()
    assert work_dir_of(options(tmp_path, rounds=6), 0) == first  # more rounds resume the same ones
    with pytest.raises(SystemExit, match="holds rounds of other settings"):
        work_dir_of(options(tmp_path, lr=0.003), 0)
