"""Fixed-point test: a good aligner leaves an already aligned map where it is.

Runs the model on maps that already sit on their image and measures how far it moves them, pass
after pass (each pass aligns the previous pass's output). Two inputs: procedurally rendered cities
(:mod:`geoalign.synthetic`, labels exact by construction) and the bundled Austin sample with its
own labels (which sit ≈ 0.9 px off the roofs, benchmarks/label_offset.py). Reported per model
variant (``smooth_sigma`` = the chain's edge-weighted smoothing layer, same weights):

* per scale, the median |correction| at map edges of that scale's network alone, in pixels of the
  scale and in full-resolution pixels (×2^s): the network's noise floor;
* per pass, the mean vector and the median length of the vertices' total move.

A perfect aligner gives ≈ 0 on the synthetic cities; a move that grows pass after pass is a bias.
Writes ``benchmarks/results/fixed_point.json``.

    python -m benchmarks.fixed_point [--model DIR] [--smooth 0 6] [--passes 3]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import shapely
import torch
import torch.nn.functional as F

from geoalign.deform import correct_geometries
from geoalign.grid import PixelGrid, reproject_to
from geoalign.io.raster import RasterReader
from geoalign.io.vectors import read_buildings
from geoalign.model.chain import Chain, downsample_map
from geoalign.model.checkpoint import load_model
from geoalign.model.predictor import DEFAULT_MODEL_DIR, ChainPredictor
from geoalign.model.scale_net import edge_map
from geoalign.rasterize import rasterize_map
from geoalign.synthetic.render import render_city

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results"
AUSTIN = ROOT / "sample_data/austin_inria"


def inputs(n_synthetic: int) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    rng = np.random.default_rng(5)
    synth = []
    for _ in range(n_synthetic):
        image, _, geoms = render_city((512, 512), rng)
        synth.append((image.astype(np.float32), np.asarray(geoms, dtype=object)))
    with RasterReader(AUSTIN / "austin1_crop_nw_rgb.tif") as r:
        image, _ = r.read()
        grid = PixelGrid.of(r)
        gdf = reproject_to(read_buildings(AUSTIN / "austin1_crop_nw_buildings.geojson"), r.crs)
    geoms = np.asarray(grid.to_pixels(gdf.geometry.values), dtype=object)
    return {"synthetic": synth, "austin": [(image.astype(np.float32), geoms)]}


def per_scale_noise(chain: Chain, cases) -> dict:
    out: dict = {}
    for image, geoms in cases:
        full = torch.from_numpy(rasterize_map(geoms, image.shape[1:], channels=chain.config.channels))[None]
        img = torch.from_numpy(image)[None]
        for s in chain.config.scales:
            f = 2**s
            img_s = F.avg_pool2d(img, f) if f > 1 else img
            map_s = downsample_map(full, f, chain.config.channels)
            with torch.inference_mode():
                corr, _ = chain.net(s)(img_s, map_s)
            at = edge_map(map_s)[0, 0] > 0
            out.setdefault(s, []).append(np.median(corr[0][:, at].norm(dim=0).numpy()))
    return {str(s): {"median_px_of_scale": float(np.mean(v)), "median_full_res_px": float(np.mean(v) * 2**s)}
            for s, v in out.items()}


def drift(predictor: ChainPredictor, cases, passes: int) -> list[dict]:
    rows = []
    current = [g for _, g in cases]
    start = [shapely.get_coordinates(g) for g in current]
    for k in range(passes):
        moves = []
        for i, (image, _) in enumerate(cases):
            m = rasterize_map(current[i], image.shape[1:], channels=predictor.channels)
            field = predictor.predict(image, np.ones(image.shape[1:], bool), m)
            current[i] = correct_geometries(current[i], field)
            moves.append(shapely.get_coordinates(current[i]) - start[i])
        d = np.concatenate(moves)
        rows.append({"pass": k + 1, "mean_move_px": d.mean(0).tolist(),
                     "median_move_px": float(np.median(np.hypot(d[:, 0], d[:, 1])))})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    ap.add_argument("--smooth", type=float, nargs="+", default=[0.0, 6.0])
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--synthetic", type=int, default=3, help="rendered 512×512 cities")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    chain, config = load_model(args.model)
    chain.eval()
    cases = inputs(args.synthetic)
    result: dict = {"model": str(args.model), "per_scale_noise_at_alignment": {}, "drift": {}}
    for name, cs in cases.items():
        result["per_scale_noise_at_alignment"][name] = per_scale_noise(chain, cs)
    for sm in args.smooth:
        predictor = ChainPredictor(chain.copy_with(smooth_sigma_px=sm), config.get("gsd_m"))
        result["drift"][f"smooth_sigma={sm:g}"] = {name: drift(predictor, cs, args.passes) for name, cs in cases.items()}
        print(f"smooth {sm:g}: " + "; ".join(f"{n} pass medians " + " ".join(
            f"{r['median_move_px']:.2f}" for r in rows) for n, rows in result["drift"][f"smooth_sigma={sm:g}"].items()),
            flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fixed_point.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result["per_scale_noise_at_alignment"], indent=1))


if __name__ == "__main__":
    main()
