"""A building layer with 10^7 vertices: refused clearly, in bounded time and memory.

``python -m benchmarks.huge_geometry`` writes one ring of N vertices (a circle of 50 m radius in the
Austin sample) as GeoJSON and as GeoPackage, runs ``geoalign misalign`` on each in a subprocess
and records its exit code, its error line, the wall time and the peak resident memory
(``ru_maxrss`` of the child). Results: ``benchmarks/results/huge_geometry.json``.

Too slow for the test suite (writing 10^7 vertices takes tens of seconds); the suite checks a
10^6-vertex ring (tests/safety/test_hostile_files.py).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

REPO = Path(__file__).resolve().parents[1]
IMAGE = REPO / "sample_data" / "austin_inria" / "austin1_crop_nw_rgb.tif"
GEOALIGN = str(Path(sys.executable).parent / "geoalign")


def ring(n_vertices: int) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, n_vertices, endpoint=False)
    xy = np.column_stack([616950 + 50 * np.cos(t), 3344550 + 50 * np.sin(t)]).round(3)
    return np.vstack([xy, xy[:1]])


def write_geojson(path: Path, xy: np.ndarray) -> None:
    """Streamed, so the benchmark itself never holds the text whole."""
    with open(path, "w") as f:
        f.write('{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":'
                '"urn:ogc:def:crs:EPSG::26914"}},"features":[{"type":"Feature","properties":{"id":1},'
                '"geometry":{"type":"Polygon","coordinates":[[')
        for i in range(0, len(xy), 100_000):
            f.write(",".join(f"[{x:.3f},{y:.3f}]" for x, y in xy[i:i + 100_000]))
            if i + 100_000 < len(xy):
                f.write(",")
        f.write("]]}}]}")


def measure(layer: Path, out: Path) -> dict:
    t0 = time.monotonic()
    proc = subprocess.run([GEOALIGN, "-q", "misalign", str(IMAGE), str(layer), "-o", str(out)],
                          capture_output=True, text=True)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines = proc.stderr.strip().splitlines()
    return {"exit_code": proc.returncode, "seconds": round(time.monotonic() - t0, 1),
            "peak_rss_mb_max_so_far": round(peak_kb / 1024), "stderr_lines": len(lines),
            "last_line": lines[-1][:300] if lines else "", "output_written": out.exists()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vertices", type=int, default=10_000_000)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "huge_geometry.json")
    args = parser.parse_args()
    xy = ring(args.vertices)
    results = {"vertices": int(len(xy))}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        gpkg = tmp / "ring.gpkg"
        gpd.GeoDataFrame({"id": [1]}, geometry=[shapely.Polygon(xy)], crs=26914).to_file(gpkg, driver="GPKG")
        # GeoPackage first: ru_maxrss of children only grows, so the smaller run is measured alone
        results["gpkg"] = measure(gpkg, tmp / "m1.gpkg")
        geojson = tmp / "ring.geojson"
        write_geojson(geojson, xy)
        results["geojson"] = measure(geojson, tmp / "m2.gpkg")
        results["file_mb"] = {"gpkg": round(gpkg.stat().st_size / 2**20), "geojson": round(geojson.stat().st_size / 2**20)}
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
