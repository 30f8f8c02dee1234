"""Add the benchmarks' measured figures to a model card (default: the shipped model's).

``python -m benchmarks.record_card [--model DIR]`` reads the results the benchmark commands wrote
under ``benchmarks/results/`` and records a summary of each on the card through
:func:`geoalign.model.card.record_benchmark`, with the command that measures it:

* ``accuracy`` (``make bench-accuracy``): median per-vertex error (px at 0.3 m) of every method on
  the held-out pools at each misalignment amplitude;
* ``align_speed`` (``make bench-align-speed``): megapixels per second and peak memory of the
  default pipeline and of ``--method local`` on a 4000² raster;
* ``self_denoising`` (``make bench-self-denoising``): median error of D0 and of each round's
  realigned labels.

A results file that is missing is skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from geoalign.model.card import record_benchmark
from geoalign.model.predictor import DEFAULT_MODEL_DIR

RESULTS = Path(__file__).resolve().parent / "results"


def accuracy_figures(results: dict) -> dict:
    amplitudes = [f"{a:g}" for a in results["amplitudes_px"]]
    pools = {}
    for pool, entry in results["pools"].items():
        pools[pool] = {
            method: [round(m["per_amplitude"][a]["median_px"], 2) for a in amplitudes]
            for method, m in entry["methods"].items() if method != "before"
        }
        pools[pool]["before"] = [round(entry["methods"]["before"]["per_amplitude"][a]["median_px"], 2)
                                 for a in amplitudes] if "before" in entry["methods"] else None
    return {"metric": results["metric"], "amplitudes_px": results["amplitudes_px"], "seeds": results["seeds"],
            "median_px_per_amplitude": pools, "results": "benchmarks/results/accuracy.json"}


def speed_figures(results: dict) -> dict:
    runs = {name: {"mp_per_s": round(r["mp_per_s"], 2), "peak_rss_gb": round(r["peak_rss_gb"], 2)}
            for name, r in results["runs"].items()}
    return {"raster_px": results["raster_px"], "cpu_cores": results["cpu_cores"], "runs": runs,
            "results": "benchmarks/results/align_speed.json"}


def self_denoising_figures(results: dict) -> dict:
    def medians(rounds: list[dict], key: str, d0_key: str) -> list[float]:
        return [round(m, 2) for m in [rounds[0][d0_key]] + [r[key] for r in rounds]]

    return {"sigma_rms_px": results["sigma_rms_px"], "steps_per_round": results["steps_per_round"],
            "rounds": results["rounds"], "rounds_lr": results["lr"], "average_tail": results["average_tail"],
            "floor_median_px": round(results["floor_median_px"], 2),
            "seeds_meeting_floor": f"{results['seeds_meeting_floor']} of {len(results['runs'])}",
            "median_px_d0_then_each_round_per_seed": {
                str(run["seed"]): medians(run["rounds"], "realigned_median_error_px", "d0_median_error_px")
                for run in results["runs"]},
            "median_px_d0_then_each_round_buildings_inside_image_per_seed": {
                str(run["seed"]): medians(run["rounds"], "realigned_median_error_inside_px", "d0_median_error_inside_px")
                for run in results["runs"]},
            "results": "benchmarks/results/self_denoising.json"}


BENCHMARKS = {
    "accuracy": ("accuracy.json", accuracy_figures, "make bench-accuracy"),
    "align_speed": ("align_speed.json", speed_figures, "make bench-align-speed"),
    "self_denoising": ("self_denoising.json", self_denoising_figures, "make bench-self-denoising"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="model folder whose card to update")
    ap.add_argument("--results", type=Path, default=RESULTS, help="folder of the benchmark results")
    args = ap.parse_args()
    for name, (file, figures, command) in BENCHMARKS.items():
        path = args.results / file
        if path.exists():
            record_benchmark(args.model, name, figures(json.loads(path.read_text())), command=command)
            print(f"recorded {name} from {path}")


if __name__ == "__main__":
    main()
