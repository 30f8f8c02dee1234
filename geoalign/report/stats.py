"""Training statistics that travel with a model: what the trust report needs from the training set.

For each learned scale s that ``align`` runs, the network of that scale is seen as a function of
one training patch (image + misaligned map at scale s, ``patch_px`` square, as in the dataset)
whose output is the 2-D displacement at the patch centre (d = 2). Over the training patches
:func:`similarity.reference_stats` keeps Ĝ = Σ Ĵ, G = Σ J, the kernel sums of the predictions,
the labels and the training error (kernel means: ŷ, y, ‖ŷ − y‖), a 256-bucket count-sketch Gram
matrix (denoising factor) and row sketches of 128 exemplar patches (nearest training patches,
rotation-invariant k^{C,rot}); the training patches are then scored against those sums, so the
distribution of training densities (N_S) is known, and new tiles are placed in it.

Stored as ``training_stats.npz`` in the model folder (plain arrays, ``allow_pickle=False``;
about 2.6 MB for the shipped 17,381-parameter network, see :func:`stats_size_bytes`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import similarity as sim
from geoalign.errors import GeoalignError
from geoalign.io.atomic import atomic_path

STATS_FILE = "training_stats.npz"
FORMAT_VERSION = 1
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)
THUMB_PX = 32
VALUE_NAMES = ("pred_dx", "pred_dy", "label_dx", "label_dy", "train_error_px")


class StatsError(GeoalignError):
    """Training statistics missing, unreadable or of another model."""


class PatchNet(nn.Module):
    """One scale's network as a function of a patch: (N, 3 + C, P, P) → field (N, 2, P, P).

    Includes the chain's parameter-free edge smoothing of that scale, so the output is the
    correction the chain applies."""

    def __init__(self, net: nn.Module, smooth_sigma_px: float = 0.0) -> None:
        super().__init__()
        self.net = net
        self.smooth_sigma_px = float(smooth_sigma_px)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from geoalign.model.scale_net import edge_map
        from geoalign.model.warp import smooth_field_at_edges

        image, map_ = x[:, :3], x[:, 3:]
        field, _ = self.net(image, map_)
        if self.smooth_sigma_px > 0:
            field = smooth_field_at_edges(field, edge_map(map_), self.smooth_sigma_px)
        return field


class CentreNet(PatchNet):
    """:class:`PatchNet` computed only on the part of the patch its centre pixel depends on.

    The centre's displacement depends on the inputs within :func:`cone_radius_px` of it, and on
    the rest of the patch only through the edge normalization's mean (no parameter in it), so
    the network runs on a crop of ``2 × (radius + 1)`` px around the centre (76 of the shipped
    model's 96 px), with the whole patch's mean, and each of its stages only where the centre
    depends on it (:func:`geoalign.report.cone.cone_field`): the same centre value and the same
    parameter gradients, float rounding aside. The output is a small field window whose centre
    pixel is the patch's (:func:`centre`); patches smaller than the crop run whole.

    At construction the cone's field is compared with the network's own forward on a random
    crop; if they differ (a network whose forward the cone does not follow) the crop runs the
    network's own forward."""

    def __init__(self, net: nn.Module, smooth_sigma_px: float = 0.0) -> None:
        super().__init__(net, smooth_sigma_px)
        self.blur_px = _blur_radius_px(smooth_sigma_px)
        self.half_px = int(net.receptive_radius_px) + self.blur_px + 1
        self.use_cone = True
        self.use_cone = self._cone_matches()

    def _cone_matches(self) -> bool:
        side = 2 * self.half_px
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(2, 3 + self.net.config.map_channels, side + 8, side + 8, generator=gen,
                       dtype=next(self.net.parameters()).dtype)
        x[:, 3:] = (x[:, 3:] > 0.7).to(x.dtype)
        with torch.no_grad():
            try:
                mine = centre(self.forward(x))
            except (RuntimeError, AttributeError, TypeError):
                return False
            self.use_cone = False
            plain = centre(self.forward(x))
        return bool(torch.allclose(mine, plain, rtol=1e-4, atol=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from geoalign.model.scale_net import edge_map, mean_gradient
        from geoalign.model.warp import smooth_field_at_edges
        from geoalign.report.cone import cone_field

        h = self.half_px
        cy, cx = x.shape[2] // 2, x.shape[3] // 2
        if cy < h or cx < h or cy + h > x.shape[2] or cx + h > x.shape[3]:
            return super().forward(x)
        image, map_ = x[:, :3], x[:, 3:]
        mean = mean_gradient(image)  # of the whole patch, as the uncropped network normalizes
        crop = (Ellipsis, slice(cy - h, cy + h), slice(cx - h, cx + h))
        image, map_ = image[crop], map_[crop]
        if self.use_cone:
            field = cone_field(self.net, image, map_, mean, self.blur_px)
            m = h - self.blur_px - 1
            map_ = map_[..., m:2 * h - m, m:2 * h - m]
        else:
            field, _ = self.net._forward(image, map_, mean)
        if self.smooth_sigma_px > 0:
            field = smooth_field_at_edges(field, edge_map(map_), self.smooth_sigma_px)
        return field


def _blur_radius_px(smooth_sigma_px: float) -> int:
    """The edge smoothing's Gaussian radius (3σ, :func:`geoalign.model.warp.gaussian_blur_torch`)."""
    return max(1, int(round(3 * smooth_sigma_px))) if smooth_sigma_px > 0 else 0


def cone_radius_px(net: nn.Module, smooth_sigma_px: float) -> int:
    """Pixels around an output pixel of :class:`PatchNet` its value depends on: the network's
    receptive radius plus the edge smoothing's Gaussian radius."""
    return int(net.receptive_radius_px) + _blur_radius_px(smooth_sigma_px)


def centre(y: torch.Tensor) -> torch.Tensor:
    """The displacement at the centre pixel: (N, 2, H, W) → (N, 2)."""
    return y[:, :, y.shape[2] // 2, y.shape[3] // 2]


def patch_net(chain, scale: int) -> PatchNet:
    return PatchNet(chain.net(scale), chain.config.smooth_sigma_px).eval()


def centre_net(chain, scale: int) -> CentreNet:
    """:func:`patch_net` computed on its centre's cone only (the scorer's model: same values)."""
    return CentreNet(chain.net(scale), chain.config.smooth_sigma_px).eval()


@dataclass
class ScaleStats:
    """The statistics of one learned scale (see module docstring)."""

    scale: int
    patch_px: int
    reference: sim.ReferenceStats
    density_quantiles: np.ndarray  # (101,) N_S of training patches at QUANTILE_LEVELS
    densities: np.ndarray  # (N,) N_S of every training patch (histogram)
    uncertainty_quantiles: np.ndarray
    denoising_quantiles: np.ndarray
    exemplar_thumbs: np.ndarray  # (n_ex, 4, THUMB_PX, THUMB_PX) uint8: RGB + map fill
    exemplar_meta: np.ndarray  # (n_ex, 6) dataset meta rows (source, col, row, w, h, amplitude)

    def quantile_of(self, density: np.ndarray) -> np.ndarray:
        """Fraction of training patches whose N_S is below ``density`` (0–1)."""
        sorted_d = np.sort(self.densities)
        return np.searchsorted(sorted_d, np.asarray(density, np.float64), side="right") / max(1, len(sorted_d))


@dataclass
class TrainingStats:
    scales: dict[int, ScaleStats]
    meta: dict

    def save(self, model_dir: str | Path) -> Path:
        arrays: dict[str, np.ndarray] = {"meta_json": np.array(json.dumps(self.meta))}
        for s, st in self.scales.items():
            p = f"s{s}/"
            arrays.update(st.reference.to_arrays(prefix=p, dtype=np.float32))
            arrays[p + "patch_px"] = np.array(st.patch_px)
            for name in ("density_quantiles", "densities", "uncertainty_quantiles", "denoising_quantiles",
                         "exemplar_thumbs", "exemplar_meta"):
                arrays[p + name] = getattr(st, name)
        path = Path(model_dir) / STATS_FILE
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **arrays)
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> "TrainingStats":
        path = Path(model_dir) / STATS_FILE
        if not path.exists():
            raise StatsError(f"{path}: no training statistics; compute them with "
                             f"`geoalign model stats {model_dir} DATASET`.")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta_json"]))
                if meta.get("format_version") != FORMAT_VERSION:
                    raise StatsError(f"{path}: statistics format {meta.get('format_version')} is not "
                                     f"{FORMAT_VERSION}; recompute them with `geoalign model stats`.")
                scales = {}
                for s in meta["scales"]:
                    p = f"s{s}/"
                    scales[int(s)] = ScaleStats(
                        int(s), int(z[p + "patch_px"]), sim.ReferenceStats.from_arrays(z, prefix=p),
                        *(np.array(z[p + n]) for n in ("density_quantiles", "densities", "uncertainty_quantiles",
                                                       "denoising_quantiles", "exemplar_thumbs", "exemplar_meta")))
        except (OSError, KeyError, ValueError) as err:
            raise StatsError(f"{path}: unreadable training statistics ({err}); recompute them.") from None
        return cls(scales, meta)


def stats_size_bytes(model_dir: str | Path) -> int:
    return (Path(model_dir) / STATS_FILE).stat().st_size


def learned_scales(model_dir: str | Path) -> list[int]:
    """The scales ``align``'s default pipeline runs: the card's ``combination.learned_scales``,
    else every scale of the chain."""
    from geoalign.model.card import read_card

    card = read_card(model_dir)
    scales = card.get("combination", {}).get("learned_scales") or card.get("scales") or []
    return [int(s) for s in scales]


def _patch_inputs(items) -> torch.Tensor:
    return torch.stack([torch.cat([it["image"], it["map"]]) for it in items])


def _thumbs(x: torch.Tensor) -> np.ndarray:
    """(n, 3 + C, P, P) patches → (n, 4, THUMB_PX, THUMB_PX) uint8: RGB and the map's fill."""
    small = F.interpolate(x[:, :4], size=(THUMB_PX, THUMB_PX), mode="area")
    return np.round(small.clamp(0, 1).numpy() * 255).astype(np.uint8)


def compute_scale_stats(chain, dataset_dir: str | Path, scale: int, *, max_patches: int = 4000,
                        exemplars: int = 128, sketch_dim: int = 256, exemplar_dim: int = 1024,
                        seed: int = 0, chunk_size: int = 16) -> ScaleStats:
    """Statistics of scale ``scale`` over the dataset's training patches of that scale (a random
    subset of ``max_patches`` when there are more)."""
    from geoalign.dataset.torch_dataset import PairDataset

    ds = PairDataset(dataset_dir, scale, "train")
    if len(ds) == 0:
        raise StatsError(f"{dataset_dir}: no training patches at scale {scale}; build the dataset with "
                         f"--scales including {scale}.")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(ds), size=min(len(ds), max_patches), replace=False))
    items = [ds[int(i)] for i in idx]
    x = _patch_inputs(items)
    labels = torch.stack([centre(it["field"][None])[0] for it in items]).double()
    model = patch_net(chain, scale)
    with torch.no_grad():
        preds = torch.cat([centre(model(x[i:i + 64])) for i in range(0, len(x), 64)]).double()
    values = torch.cat([preds, labels, (preds - labels).norm(dim=1, keepdim=True)], dim=1)
    ex = np.sort(rng.choice(len(x), size=min(len(x), exemplars), replace=False))
    ref = sim.reference_stats(model, x, values, centre, sketch_dim=sketch_dim, exemplars=ex.tolist(),
                              exemplar_dim=exemplar_dim, seed=seed, chunk_size=chunk_size)
    own = sim.score(model, x, ref, centre, chunk_size=chunk_size)
    dens = own["density"].numpy()
    return ScaleStats(
        scale=scale, patch_px=int(x.shape[-1]), reference=ref,
        density_quantiles=np.quantile(dens, QUANTILE_LEVELS), densities=dens.astype(np.float64),
        uncertainty_quantiles=np.quantile(own["uncertainty"].numpy(), QUANTILE_LEVELS),
        denoising_quantiles=np.quantile(own["denoising_factor"].numpy(), QUANTILE_LEVELS),
        exemplar_thumbs=_thumbs(x[torch.as_tensor(ex)]),
        exemplar_meta=np.stack([items[i]["meta"].numpy() for i in ex]),
    )


def compute_training_stats(model_dir: str | Path, dataset_dir: str | Path, *,
                           scales: list[int] | None = None, max_patches: int = 4000, seed: int = 0,
                           threads: int | None = None, sketch_dim: int = 256,
                           exemplar_dim: int = 1024) -> TrainingStats:
    """Compute and save the statistics of ``model_dir``'s learned scales over ``dataset_dir``."""
    from geoalign.model.checkpoint import load_model

    t0 = time.perf_counter()
    chain, _ = load_model(model_dir)
    chain = chain.eval()
    if not scales:  # the learned scales align runs, those the dataset holds patches of
        from geoalign.dataset.torch_dataset import PairDataset

        scales = [s for s in learned_scales(model_dir) if len(PairDataset(dataset_dir, s, "train"))]
        if not scales:
            raise StatsError(f"{dataset_dir}: no training patches at the model's scales "
                             f"{learned_scales(model_dir)}; build the dataset with those --scales.")
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        per_scale = {s: compute_scale_stats(chain, dataset_dir, s, max_patches=max_patches, seed=seed,
                                            sketch_dim=sketch_dim, exemplar_dim=exemplar_dim)
                     for s in scales}
    finally:
        torch.set_num_threads(old)
    meta = {"format_version": FORMAT_VERSION, "scales": scales, "dataset": str(dataset_dir),
            "output": "displacement at the patch centre (d = 2), pixels of the scale",
            "value_names": list(VALUE_NAMES), "quantile_levels": "0, 0.01, ..., 1",
            "patches": {str(s): int(st.reference.count) for s, st in per_scale.items()},
            "parameters": int(next(iter(per_scale.values())).reference.num_params) if per_scale else 0,
            "seconds": round(time.perf_counter() - t0, 1),
            "command": f"geoalign model stats {model_dir} {dataset_dir}"}
    stats = TrainingStats(per_scale, meta)
    stats.save(model_dir)
    return stats
