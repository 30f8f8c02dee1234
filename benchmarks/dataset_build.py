"""Dataset-build throughput (pairs/s) and peak memory on the Kampala mosaic (3072×2048, 7.5 cm).

Each configuration runs in a fresh subprocess so its peak RSS is its own. Writes
``benchmarks/results/dataset_build.json``.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KAMPALA = ROOT / "sample_data/kampala_oam_osm"
RESULTS = ROOT / "benchmarks/results"

CONFIGS = {
    "native 7.5 cm, scales 3,2,1,0, patch 96": "DatasetConfig()",
    "resampled to 0.3 m, scales 2,1,0, patch 96": "DatasetConfig(gsd_m=0.3, scales=(2, 1, 0))",
    "native, scale 0 only, 4 samples per patch": "DatasetConfig(scales=(0,), samples_per_patch=4)",
}


def run_one(config_expr: str, out: Path) -> dict:
    script = textwrap.dedent(f"""
        import json, resource, time
        from geoalign.dataset import DatasetConfig, SourcePair, build_dataset
        src = [SourcePair({str(KAMPALA / "kampala_z21_suburb_rgb.tif")!r}, {str(KAMPALA / "labels_osm.geojson")!r})]
        t = time.perf_counter()
        s = build_dataset(src, {str(out)!r}, {config_expr}, progress=False)
        dt = time.perf_counter() - t
        print(json.dumps({{"pairs": s.total, "seconds": dt, "pairs_per_s": s.total / dt,
                          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
    """)
    res = subprocess.run([sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    results = {"machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores",
               "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, expr) in enumerate(CONFIGS.items()):
            r = run_one(expr, Path(tmp) / f"ds{i}")
            results["runs"][name] = r
            print(f"{name}: {r['pairs']} pairs, {r['pairs_per_s']:.1f} pairs/s, peak RSS {r['peak_rss_mb']:.0f} MB")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dataset_build.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
