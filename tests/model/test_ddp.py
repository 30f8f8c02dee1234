"""Training on 2 processes (DistributedDataParallel, gloo on CPU) follows the 1-process run of the same
global batch and seed: the same loss and validation curve, the same weights, and a checkpoint of
either resumes in the other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from geoalign.dataset import DatasetConfig, SourcePair, build_dataset
from geoalign.model.chain import Chain, ChainConfig
from geoalign.model.predictor import load_predictor
from geoalign.model.scale_net import ScaleNetConfig
from geoalign.synthetic import build_synthetic_dataset
from geoalign.train import TrainConfig, TrainSet, train_chain
from geoalign.train.augment import augment_batch
from geoalign.train.distributed import DistributedSetupError, Group, augment_rows, launch, rank_rows
from geoalign.train.run import train_model
from geoalign.train.trainer import STATE, load_state

TINY = ChainConfig(scales=(1, 0), net=ScaleNetConfig(features=4, hidden=4, range_px=2.5))
CFG = TrainConfig(steps=6, batch_size=6, crop_px=24, checkpoint_every=3, val_every=1, val_pairs=8)
LOSS_RTOL = 1e-5  # float rounding: the ranks sum their gradients in another order (measured: 2.2e-7)
WEIGHT_ATOL = 1e-6  # measured: 1.5e-8


def _train(run_dir: Path, synth: Path, *, resume: bool = False, max_seconds: float | None = None) -> list[dict]:
    torch.manual_seed(0)
    return train_chain(Chain(TINY), [TrainSet(synth)], run_dir, CFG, progress=False, resume=resume,
                       max_seconds=max_seconds)


def _train_model(ds: Path, out: Path) -> dict:
    """``geoalign train``'s logic: a synthetic pre-training, one round, D0 realigned; returns the card."""
    return train_model(ds, out / "model", work_dir=out / "work", rounds=1, steps=3, pretrain_steps=2,
                       synthetic_pairs=4, batch_size=2, progress=False,
                       chain_config=ChainConfig(scales=(1, 0), net=TINY.net))


def _runs_on_two_processes(synth: Path, ds: Path, tmp: Path) -> dict:
    """Every rank runs this: a whole run, a run stopped after its first step, the resumption of a
    1-process run stopped after its first step, and train_model."""
    full = _train(tmp / "two", synth)
    _train(tmp / "two_stopped", synth, max_seconds=0.0)
    resumed = _train(tmp / "one_stopped", synth, resume=True)
    return {"full": full, "resumed_from_one": resumed, "card": _train_model(ds, tmp / "model_two")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, austin) -> dict:
    tmp = tmp_path_factory.mktemp("ddp")
    synth = build_synthetic_dataset(tmp / "synth", n_train=32, n_val=8, patch_px=32, progress=False)
    ds = tmp / "ds"
    build_dataset([SourcePair(austin["image"], austin["buildings"])], ds,
                  DatasetConfig(scales=(1, 0), patch_px=32, stride_fraction=1.0, gsd_m=1.2, holdout_fraction=0.25),
                  progress=False)
    one = _train(tmp / "one", synth)
    _train(tmp / "one_stopped", synth, max_seconds=0.0)
    card_one = _train_model(ds, tmp / "model_one")
    two = launch(_runs_on_two_processes, 2, synth, ds, tmp)
    return {"tmp": tmp, "one": one, "card_one": card_one, **two,
            "resumed_from_two": _train(tmp / "two_stopped", synth, resume=True)}


def _curve(history: list[dict], key: str) -> np.ndarray:
    return np.array([h[key] for h in history if key in h])


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_state(run_dir / STATE)["model"]


def test_two_processes_give_the_one_process_loss_curve(runs):
    one, two = runs["one"], runs["full"]
    assert [h["step"] for h in two] == [h["step"] for h in one] == list(range(7))
    loss_one, loss_two = _curve(one, "loss"), _curve(two, "loss")
    assert len(loss_one) == 6 and np.ptp(loss_one) > 1e-3  # the loss moves: the curve is a real check
    np.testing.assert_allclose(loss_two, loss_one, rtol=LOSS_RTOL)
    epe_one = _curve(one, "s0_mean_epe_px")  # validation after every step: the weights agree
    assert len(epe_one) == 7
    np.testing.assert_allclose(_curve(two, "s0_mean_epe_px"), epe_one, rtol=LOSS_RTOL)
    w_one, w_two = _weights(runs["tmp"] / "one"), _weights(runs["tmp"] / "two")
    for k in w_one:
        torch.testing.assert_close(w_two[k], w_one[k], atol=WEIGHT_ATOL, rtol=0)


@pytest.mark.parametrize("resumed", ["resumed_from_one", "resumed_from_two"])
def test_a_checkpoint_resumes_with_the_other_process_count(runs, resumed):
    """Stopped after step 1 with 1 (2) processes, resumed with 2 (1): the uninterrupted curve."""
    hist = runs[resumed]
    assert [h["step"] for h in hist] == list(range(7))
    np.testing.assert_allclose(_curve(hist, "loss"), _curve(runs["one"], "loss"), rtol=LOSS_RTOL)
    stopped = "one_stopped" if resumed == "resumed_from_one" else "two_stopped"
    w_one, w_res = _weights(runs["tmp"] / "one"), _weights(runs["tmp"] / stopped)
    for k in w_one:
        torch.testing.assert_close(w_res[k], w_one[k], atol=WEIGHT_ATOL, rtol=0)


def test_train_model_on_two_processes_writes_the_one_process_model(runs):
    """Pre-training, a round and D0's realignment (rank 0), the model folder and card (rank 0)."""
    tmp, one, two = runs["tmp"], runs["card_one"], runs["card"]
    assert two["metrics"]["pretrain_last"]["step"] == 2 and two["metrics"]["rounds"][0]["val"]["step"] == 3
    for card in (one, two):
        assert card["metrics"]["rounds"][0]["mean_shift_px"] > 0
    assert two["metrics"]["rounds"][0]["mean_shift_px"] == pytest.approx(one["metrics"]["rounds"][0]["mean_shift_px"],
                                                                         rel=LOSS_RTOL)
    assert two["metrics"]["pretrain_last"]["loss"] == pytest.approx(one["metrics"]["pretrain_last"]["loss"],
                                                                    rel=LOSS_RTOL)
    written = [sorted(p.relative_to(tmp / d) for p in (tmp / d).rglob("*")) for d in ("model_one", "model_two")]
    assert written[0] == written[1]  # the same files
    assert load_predictor(tmp / "model_two" / "model").gsd_m == 1.2


def test_the_ranks_split_every_batch_into_disjoint_rows():
    for world, batch in [(2, 6), (3, 7), (4, 4)]:
        parts = [rank_rows(batch, Group(r, world)) for r in range(world)]
        rows = np.concatenate([np.arange(batch)[p] for p in parts])
        assert rows.tolist() == list(range(batch))
        assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1
    with pytest.raises(DistributedSetupError, match="smaller than"):
        rank_rows(2, Group(0, 3))


def test_rows_augmented_apart_equal_the_batch_augmented_whole():
    """Rotation, resolution, crop and colour of rows 0-2 and 3-4 equal those of the 5-row batch."""
    g = torch.Generator().manual_seed(0)
    batch = {k: torch.rand((5, c, 32, 32), generator=g) for k, c in (("image", 3), ("map", 3), ("map_true", 3),
                                                                     ("field", 2))}
    batch["valid"] = torch.ones((5, 32, 32))
    kw = dict(crop_px=24, resolution_jitter=1.3)
    whole = augment_batch(batch, np.random.default_rng([7, 3]), **kw)
    for part in (slice(0, 3), slice(3, 5)):
        rows = augment_rows({k: v[part] for k, v in batch.items()}, np.random.default_rng([7, 3]), part, 5, **kw)
        for k in batch:
            torch.testing.assert_close(rows[k], whole[k][part], atol=1e-6, rtol=0)


def _train_cli(ds: Path, out: Path, *extra: str):
    from click.testing import CliRunner

    from cli.main import main

    args = ["-q", "train", str(ds), "-o", str(out / "model"), "--rounds", "1", "--steps", "3", "--pretrain-steps", "0",
            "--batch-size", "2", "--work-dir", str(out / "work"), *extra]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_nproc_under_torchrun_is_a_one_line_error(tmp_path, monkeypatch):
    for var, value in {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(var, value)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "manifest.json").write_text("{}")
    res = _train_cli(tmp_path / "ds", tmp_path, "--nproc", "2")
    assert res.exit_code == 1 and "torchrun" in res.output and "Traceback" not in res.output
