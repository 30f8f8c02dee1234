"""Speed-up of ``geoalign align`` on a Dask ``LocalCluster`` from 1 to 2 workers, memory per
worker, and the Dask path's overhead with 1 worker against the single-process path, on a
4000×4000 raster (the mosaic of :mod:`benchmarks.align_speed`).

Three configurations take turns ``--repeats`` times (plain, dask-1, dask-2, plain, … : the shared
machine's speed drifts over minutes) and the medians are reported:

* ``plain`` — :func:`geoalign.align.run.align_raster` in this process with torch, OpenMP and BLAS
  on one thread (one core: what one Dask worker gets);
* ``dask-1``, ``dask-2`` — :func:`geoalign.distributed.align_distributed` on a fresh
  ``LocalCluster`` of 1 or 2 worker processes (one thread each); the cluster's start-up is timed
  apart (``cluster_start_s``); each worker's peak RSS is read in the worker at the end.

All runs use ``--tile-px`` (default 1024: 16 tiles, so 2 workers stay busy to the end). Floors in
the JSON: speed-up ≥ 1.7, overhead ≤ 10 %. Writes ``benchmarks/results/scale.json`` and
``scale.png``.

    python -m benchmarks.scale [--tiles 4] [--method default] [--tile-px 1024] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os

# One thread per library in this process too, as in every Dask worker (the nanny sets these): the
# single-process run then uses one core, and "per core" means the same on both sides.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.align_speed import RESULTS, make_mosaic  # noqa: E402
from geoalign.align.run import align_raster  # noqa: E402
from geoalign.io.writers import write_json  # noqa: E402

FLOORS = {"speedup_2_over_1": 1.7, "overhead_dask1_vs_plain": 0.10}


def _peak_rss_gb() -> float:
    """This process's peak RSS (VmHWM: ``ru_maxrss`` would carry the parent's over fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def _cpu_s() -> float:
    """CPU seconds (user + system) this process has used."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_plain(image: Path, vec: Path, out: Path, spec, tile_px: int) -> dict:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        c0, t0 = _cpu_s(), time.perf_counter()
        predictor, name, note = spec.resolve()
        align_raster(image, vec, out, predictor, method=name, tile_px=tile_px, show_progress=False)
        return {"work_s": time.perf_counter() - t0, "cpu_s": _cpu_s() - c0, "client_peak_rss_gb": _peak_rss_gb()}
    finally:
        torch.set_num_threads(threads)


def run_dask(image: Path, vec: Path, out: Path, spec, tile_px: int, workers: int) -> dict:
    import distributed

    from geoalign.distributed import align_distributed
    from geoalign.distributed.cluster import local_cluster

    t0 = time.perf_counter()
    with local_cluster(workers) as cluster, distributed.Client(cluster) as client:
        start_s = time.perf_counter() - t0
        worker_cpu0 = sum(client.run(_cpu_s).values())  # the workers' start-up, not counted
        c1, t1 = _cpu_s(), time.perf_counter()
        result = align_distributed(image, vec, out, spec, scheduler=cluster.scheduler_address, tile_px=tile_px,
                                   show_progress=False)
        work_s = time.perf_counter() - t1
        client_cpu = _cpu_s() - c1
        worker_cpu = sum(client.run(_cpu_s).values()) - worker_cpu0
        rss = client.run(_peak_rss_gb)
    return {"work_s": work_s, "cpu_s": client_cpu + worker_cpu, "worker_cpu_s": worker_cpu,
            "cluster_start_s": start_s, "worker_peak_rss_gb": sorted(rss.values()),
            "client_peak_rss_gb": _peak_rss_gb(), "note": result.note}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=4, help="mosaic of N×N sample crops (4 → 4000×4000 px)")
    ap.add_argument("--method", default="default", help="'default' or an align --method")
    ap.add_argument("--tile-px", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    from geoalign.distributed import PredictorSpec

    spec = PredictorSpec(None if args.method == "default" else args.method)
    configs = ["plain", "dask-1", "dask-2"]
    results: dict = {"cpu_cores": os.cpu_count(), "load_average_1min_at_start": os.getloadavg()[0],
                     "method": args.method, "tile_px": args.tile_px, "runs": {c: [] for c in configs}}
    with tempfile.TemporaryDirectory() as tdir:
        tmp = Path(tdir)
        image, vec, side = make_mosaic(tmp, args.tiles)
        mp = side * side / 1e6
        results.update(raster_px=[side, side], megapixels=mp)
        import geopandas

        results["n_features"] = len(geopandas.read_file(vec))
        for k in range(args.repeats):
            for c in configs:
                out = tmp / f"out-{c}-{k}"
                r = (run_plain(image, vec, out, spec, args.tile_px) if c == "plain"
                     else run_dask(image, vec, out, spec, args.tile_px, int(c.split("-")[1])))
                r["mp_per_s"] = mp / r["work_s"]
                r["displacement_tif_bytes"] = (out / "displacement.tif").stat().st_size
                r["aligned_gpkg_bytes"] = (out / "aligned.gpkg").stat().st_size
                r["load_average_1min"] = os.getloadavg()[0]
                results["runs"][c].append(r)
                print(f"run {k + 1}/{args.repeats} {c}: {r['work_s']:.1f} s ({r['mp_per_s']:.2f} MP/s), "
                      f"CPU {r['cpu_s']:.1f} s, "
                      f"load {r['load_average_1min']:.1f}", {key: v for key, v in r.items() if "rss" in key}, flush=True)
    med = {c: float(np.median([r["work_s"] for r in rs])) for c, rs in results["runs"].items()}
    pair = lambda a, b: [x["work_s"] / y["work_s"] for x, y in zip(results["runs"][a], results["runs"][b])]  # noqa: E731
    results["median_work_s"] = med
    results["speedup_2_over_1"] = float(np.median(pair("dask-1", "dask-2")))
    results["overhead_dask1_vs_plain"] = float(np.median(pair("dask-1", "plain"))) - 1.0
    results["median_cpu_s"] = {c: float(np.median([r["cpu_s"] for r in rs])) for c, rs in results["runs"].items()}
    results["cpu_overhead_dask1_vs_plain"] = results["median_cpu_s"]["dask-1"] / results["median_cpu_s"]["plain"] - 1.0
    results["mp_per_cpu_s"] = mp / results["median_cpu_s"]["plain"]  # MP per core-second of CPU time
    results["mp_per_s_per_core"] = mp / med["plain"]
    results["worker_peak_rss_gb"] = max(max(r["worker_peak_rss_gb"]) for c in ("dask-1", "dask-2")
                                        for r in results["runs"][c])
    results["cluster_start_s"] = float(np.median([r["cluster_start_s"] for c in ("dask-1", "dask-2")
                                                  for r in results["runs"][c]]))
    last = results["runs"]["dask-2"][-1]
    results["displacement_bytes_per_px"] = last["displacement_tif_bytes"] / (side * side)
    results["aligned_gpkg_bytes_per_feature"] = last["aligned_gpkg_bytes"] / results["n_features"]
    results["floors"] = FLOORS
    print(f"speed-up 1 → 2 workers {results['speedup_2_over_1']:.2f}× (floor {FLOORS['speedup_2_over_1']}), "
          f"overhead of dask-1 vs plain {100 * results['overhead_dask1_vs_plain']:+.1f} % (ceiling 10 %), "
          f"CPU time dask-1 vs plain {100 * results['cpu_overhead_dask1_vs_plain']:+.1f} %, "
          f"{results['mp_per_cpu_s']:.2f} MP per CPU second, "
          f"{results['mp_per_s_per_core']:.2f} MP/s per core, worker peak RSS {results['worker_peak_rss_gb']:.2f} GB, "
          f"cluster start {results['cluster_start_s']:.1f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(results, args.out / "scale.json")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=110)
    a1.bar(configs, [med[c] for c in configs])
    a1.set_ylabel("work time (s), median")
    a2.bar(["dask-1", "dask-2"], [max(max(r["worker_peak_rss_gb"]) for r in results["runs"][c])
                                   for c in ("dask-1", "dask-2")])
    a2.set_ylabel("peak RSS per worker (GB)")
    fig.suptitle(f"align {args.method} on {side}×{side} px, {os.cpu_count()} cores: speed-up "
                 f"{results['speedup_2_over_1']:.2f}×, overhead {100 * results['overhead_dask1_vs_plain']:+.0f} %",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out / "scale.png")
    plt.close(fig)


if __name__ == "__main__":
    main()
