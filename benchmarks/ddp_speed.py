"""Training speed (steps/s) with 1 and 2 DistributedDataParallel processes, one torch thread each.

The default chain and training config (global batch 12, 64-px crops) on a synthetic dataset
(:mod:`geoalign.synthetic`, 96-px pairs); with 2 processes each computes 6 rows of every batch and
the gradients are all-reduced over gloo. The timed span is the training loop (train_chain's
``time_s`` at its last step: process start-up and the step-0 validation are outside it). The
process counts alternate, ``--repeats`` times each, because the machine is shared: the load
average is recorded with every run, and so is rank 0's CPU time per step (its own work and its
share of the all-reduce, whatever the other jobs take: 1-process CPU s/step over the 2-process one
is the speed-up on two idle cores). Writes ``benchmarks/results/ddp_speed.json``.

    python -m benchmarks.ddp_speed [--steps 40] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results"


def timed_run(synth: Path, run_dir: Path, steps: int) -> dict:
    """One run on every rank; rank 0's loop time and final loss."""
    import time

    import torch

    from geoalign.model.chain import Chain
    from geoalign.train import TrainConfig, TrainSet, train_chain

    torch.manual_seed(0)
    cfg = TrainConfig(steps=steps, checkpoint_every=10**6, val_every=10**6, val_pairs=8, threads=1)
    cpu_s = time.process_time()
    history = train_chain(Chain(), [TrainSet(synth)], run_dir, cfg, progress=False)
    cpu_s = time.process_time() - cpu_s  # with the step-0 and last validations (8 pairs, under 2 %)
    last = history[-1]
    return {"steps": steps, "loop_s": last["time_s"], "steps_per_s": steps / last["time_s"],
            "rank0_cpu_s_per_step": cpu_s / steps, "last_loss": last["loss"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the spawned ranks

    from geoalign.synthetic import build_synthetic_dataset
    from geoalign.train.distributed import launch

    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared with "
                          "other jobs (load average per run)",
               "global_batch": 12, "threads_per_process": 1, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        synth = build_synthetic_dataset(Path(tmp) / "synth", n_train=240, n_val=8, patch_px=96, progress=False)
        for i in range(args.repeats):
            for nproc in (1, 2):
                load_before = os.getloadavg()[0]
                r = launch(timed_run, nproc, synth, Path(tmp) / f"run{i}_{nproc}", args.steps)
                r.update(processes=nproc, load_avg_1min=[round(load_before, 2), round(os.getloadavg()[0], 2)])
                results["runs"].append(r)
                print(json.dumps(r))
    for nproc in (1, 2):
        rates = [r["steps_per_s"] for r in results["runs"] if r["processes"] == nproc]
        results[f"best_steps_per_s_{nproc}"] = max(rates)
    results["speedup_best"] = results["best_steps_per_s_2"] / results["best_steps_per_s_1"]
    cpu = {n: min(r["rank0_cpu_s_per_step"] for r in results["runs"] if r["processes"] == n) for n in (1, 2)}
    results["cpu_s_per_step_rank0"] = cpu
    results["speedup_on_idle_cores"] = cpu[1] / cpu[2]
    print(f"best steps/s: 1 process {results['best_steps_per_s_1']:.2f}, 2 processes "
          f"{results['best_steps_per_s_2']:.2f} ({results['speedup_best']:.2f}x); CPU s/step of rank 0: "
          f"{cpu[1]:.2f} and {cpu[2]:.2f} ({results['speedup_on_idle_cores']:.2f}x on idle cores)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ddp_speed.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
