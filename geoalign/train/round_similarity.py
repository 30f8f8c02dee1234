"""The similarity module's statistics of the training patches at each realignment round: the
neighbour counts and similarity histograms of Charpiat et al. (NeurIPS 2019).

At the end of each realignment round, for every learned scale that ``align`` runs, a random
sample of the round's training patches is scored with the similarity library
(:mod:`similarity`), the network of that scale seen as a function of one patch whose output is
the 2-D displacement at the patch centre (as in :mod:`geoalign.report.stats`):

* ``density``: N_S(x) = Σ_x' k^C(x, x') over the sample, self included, divided by the
  sample size: the fraction of the sample that counts as a neighbour of each patch;
* ``pair_counts``: histogram of the rotation-invariant similarity k^{C,rot}(x, x') over all
  pairs of distinct sampled patches, ``BINS`` bins on [0, 1] (edges ``pair_edges``).

Written next to the round's model: ``round{r}/model/similarity_round.{npz,png}``; at the end
of ``geoalign train`` every round's pair is copied into the model folder
(``similarity_rounds/round{r}.{npz,png}``) with one figure of all rounds
(``similarity_rounds.png``). Cost: one forward and two backward passes per sampled patch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

import similarity as sim
from geoalign.io.atomic import atomic_path

ROUND_FILE = "similarity_round"
FOLDER = "similarity_rounds"
SUMMARY_PNG = "similarity_rounds.png"
BINS = 40
DEFAULT_PATCHES = 128


def sample_patches(dataset_dir: str | Path, scale: int, n: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """``n`` random training patches of ``scale`` (image + map channels) and their dataset indices."""
    from geoalign.dataset.torch_dataset import PairDataset

    ds = PairDataset(dataset_dir, scale, "train")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(ds), size=min(len(ds), n), replace=False))
    items = [ds[int(i)] for i in idx]
    x = torch.stack([torch.cat([it["image"], it["map"]]) for it in items]) if items else torch.zeros(0)
    return x, idx


def scale_similarity(chain, scale: int, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Densities and the pair-similarity histogram of patches ``x`` under the chain's ``scale`` net.

    One pass of per-sample Jacobians (:func:`similarity.jacobians`, n·d·p numbers held), then
    K^C of every pair (:func:`similarity.correlation`): N_S is the row sum of its trace
    similarity, the histogram bins its rotation-invariant similarity (in [0, 1]; rounding outside
    clamped into the end bins, as :func:`similarity.similarity_histogram` does)."""
    from geoalign.report.stats import centre, patch_net

    model = patch_net(chain, scale)
    J = sim.jacobians(model, x, output=centre)
    KC = sim.correlation(J, J)
    n = len(x)
    density = sim.trace_similarity(KC).sum(1).double().numpy() / n
    rot = sim.rotation_invariant_similarity(KC).double().numpy()[~np.eye(n, dtype=bool)]
    edges = np.linspace(0.0, 1.0, BINS + 1)
    bins = np.clip(np.floor(rot * BINS), 0, BINS - 1).astype(np.int64)
    return {"density": density, "pair_counts": np.bincount(bins, minlength=BINS).astype(np.int64),
            "pair_edges": edges}


def write_round_similarity(chain, dataset_dir: str | Path, out_dir: str | Path, round_index: int,
                           scales: Sequence[int], *, patches: int = DEFAULT_PATCHES, seed: int = 0) -> Path:
    """Score a sample of the round's training patches and write ``out_dir/similarity_round.{npz,png}``.

    Arrays (plain, ``allow_pickle=False``): ``s{scale}/density``, ``s{scale}/pair_counts``,
    ``s{scale}/pair_edges``, ``s{scale}/patch_index`` (rows of the round's dataset), and
    ``meta_json`` (round, scales, sample size)."""
    was_training = chain.training
    arrays: dict[str, np.ndarray] = {}
    used = []
    try:
        for s in scales:
            if s not in chain.config.scales:
                continue
            x, idx = sample_patches(dataset_dir, s, patches, seed + 1000 * round_index + s)
            if len(x) < 2:
                continue
            with torch.enable_grad():
                res = scale_similarity(chain, s, x)
            arrays.update({f"s{s}/{k}": v for k, v in res.items()})
            arrays[f"s{s}/patch_index"] = idx.astype(np.int64)
            used.append(int(s))
    finally:
        chain.train(was_training)
    meta = {"round": int(round_index), "scales": used, "patches": int(patches), "bins": BINS,
            "density": "N_S / sample size (self included)", "pairs": "k^{C,rot}, distinct pairs"}
    arrays["meta_json"] = np.array(json.dumps(meta))
    out_dir = Path(out_dir)
    npz = out_dir / f"{ROUND_FILE}.npz"
    with atomic_path(npz) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    plot_rounds({round_index: arrays}, out_dir / f"{ROUND_FILE}.png")
    return npz


def load_round(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: np.array(z[k]) for k in z.files}


def plot_rounds(rounds: dict[int, dict[str, np.ndarray]], path: str | Path) -> Path:
    """Per scale, the density histogram and the pair-similarity histogram of each round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = sorted({int(s) for a in rounds.values() for s in json.loads(str(a["meta_json"]))["scales"]})
    fig, axes = plt.subplots(max(1, len(scales)), 2, figsize=(11, 3.6 * max(1, len(scales))), squeeze=False)
    for row, s in zip(axes, scales):
        for r in sorted(rounds):
            a = rounds[r]
            if f"s{s}/density" not in a:
                continue
            dens = a[f"s{s}/density"]
            row[0].hist(dens, bins=np.linspace(0, 1, 41), histtype="step", lw=1.5,
                        label=f"round {r} (median {np.median(dens):.2f})")
            counts, edges = a[f"s{s}/pair_counts"], a[f"s{s}/pair_edges"]
            row[1].stairs(counts / max(1, counts.sum()), edges, lw=1.5, label=f"round {r}")
        row[0].set(xlabel="N_S / patches sampled (share of neighbours)", ylabel="patches",
                   title=f"scale {s}: density of each training patch")
        row[1].set(xlabel="k^{C,rot} between two training patches", ylabel="share of pairs",
                   title=f"scale {s}: pairwise similarity")
        for ax in row:
            ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def collect_rounds(rounds_dir: str | Path, model_dir: str | Path, rounds: int) -> list[Path]:
    """Copy each round's files into ``model_dir/similarity_rounds/`` and draw all rounds together."""
    rounds_dir, model_dir = Path(rounds_dir), Path(model_dir)
    found: dict[int, dict[str, np.ndarray]] = {}
    written = []
    for r in range(rounds):
        src = rounds_dir / f"round{r}" / "model"
        if not (src / f"{ROUND_FILE}.npz").exists():
            continue
        found[r] = load_round(src / f"{ROUND_FILE}.npz")
        for ext in ("npz", "png"):
            dst = model_dir / FOLDER / f"round{r}.{ext}"
            with atomic_path(dst) as tmp:
                shutil.copyfile(src / f"{ROUND_FILE}.{ext}", tmp)
            written.append(dst)
    if found:
        written.append(plot_rounds(found, model_dir / SUMMARY_PNG))
    return written
