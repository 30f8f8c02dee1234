"""The evidence each stage of the pipeline leaves on one alignment tile, as numbers per point.

* Classical stage (:class:`~geoalign.baselines.local_offset.LocalOffsetPredictor`): per window
  of each level, the correlation peak's height in standard deviations of its surface
  (sharpness), its ratio to the second peak, the window's map-edge evidence, whether the peak
  sat on the search border, whether the window was rejected as an outlier, and how far its
  offset lies from its neighbours' median. Points take the values of their nearest window.
* Learned stage (a chain scale s): the similarity of patches of the tile to the training set
  (:func:`similarity.score` against :mod:`geoalign.report.stats`): N_S, uncertainty,
  denoising factor, the paper's shift ŷ − E_k[ŷ], and E_k[training error] (the kernel-weighted
  error of the network on the training patches it treats as neighbours).
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

import similarity as sim
from geoalign.baselines.local_offset import LevelWindows
from geoalign.model.threads import one_torch_thread, torch_threads
from geoalign.report.stats import ScaleStats, centre, centre_net


def _disagreement(residual: np.ndarray) -> np.ndarray:
    """|offset − median of the 3×3 neighbours' offsets| per window (px), 0 for a lone window."""
    if residual.shape[1] * residual.shape[2] < 2:
        return np.zeros(residual.shape[1:])
    med = np.stack([ndimage.median_filter(r, size=3, mode="nearest") for r in residual])
    return np.hypot(*(residual - med))


@dataclass
class WindowLevel:
    """One level's windows (centres in the tile's input pixels) and their statistics."""

    cy: np.ndarray
    cx: np.ndarray
    stats: dict[str, np.ndarray]  # name -> (ny, nx)

    @classmethod
    def from_windows(cls, rec: LevelWindows) -> "WindowLevel":
        w, kept = rec.weight, rec.kept_weight
        stats = {
            "log_confidence": np.log1p(np.clip(rec.confidence, 0, None)),
            "log_second_peak_ratio": np.log(np.clip(rec.second_peak_ratio, 1.0, 1e3)),
            "sqrt_evidence": np.sqrt(np.clip(rec.evidence, 0, None)),
            "unused": ((w <= 0) | (kept < 0.5 * w)).astype(np.float64),  # border peak, weak or outlier
            "at_border": rec.at_border.astype(np.float64),
            "log_disagreement": np.log1p(_disagreement(rec.residual)),
        }
        return cls(np.asarray(rec.cy, np.float64), np.asarray(rec.cx, np.float64), stats)

    def at(self, ys: np.ndarray, xs: np.ndarray) -> dict[str, np.ndarray]:
        """Each statistic of the nearest window to each point (input pixels)."""
        iy = np.abs(self.cy[None, :] - np.asarray(ys, np.float64)[:, None]).argmin(1)
        ix = np.abs(self.cx[None, :] - np.asarray(xs, np.float64)[:, None]).argmin(1)
        return {k: v[iy, ix] for k, v in self.stats.items()}


def classical_levels(records) -> list[WindowLevel]:
    """The per-point view of each level's windows (``records``: LevelWindows, coarse first)."""
    return [WindowLevel.from_windows(r) for r in records]


def _pool_image(image: np.ndarray, f: int) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(image, np.float32))[None]
    if f == 1:
        return t
    h, w = t.shape[-2:]
    t = F.pad(t, (0, (-w) % f, 0, (-h) % f), mode="replicate")
    return F.avg_pool2d(t, f)


def _pool_map(map_: np.ndarray, f: int, channels: tuple[str, ...]) -> torch.Tensor:
    from geoalign.model.chain import downsample_map

    t = torch.from_numpy(np.ascontiguousarray(map_, np.float32))[None]
    if f == 1:
        return t
    h, w = t.shape[-2:]
    t = F.pad(t, (0, (-w) % f, 0, (-h) % f))
    return downsample_map(t, f, channels)


class LearnedScorer:
    """Scores patches of a tile against one learned scale's training statistics."""

    def __init__(self, chain, stats: ScaleStats) -> None:
        self.scale = stats.scale
        self.factor = 2 ** stats.scale
        self.patch_px = stats.patch_px
        self.stats = stats
        self.model = centre_net(chain, stats.scale)  # the same values as patch_net, on the centre's cone
        self._copies = [self.model]  # one network per scoring thread
        self.threads = torch.get_num_threads()  # the creator's: scoring may run on a one-thread worker
        self.channels = tuple(chain.config.channels)
        self.dtype = next(self.model.parameters()).dtype

    @property
    def footprint_px(self) -> int:
        """Side of one patch in working pixels (the training patch at the model's GSD)."""
        return self.patch_px * self.factor

    def patches(self, image: np.ndarray, map_: np.ndarray, centres_rc: np.ndarray) -> torch.Tensor:
        """(k, 3 + C, P, P) patches of scale s centred on ``centres_rc`` (working px of the arrays)."""
        f, P = self.factor, self.patch_px
        centres = np.asarray(centres_rc, np.float64).reshape(-1, 2)
        out = torch.zeros(len(centres), 3 + len(self.channels), P, P, dtype=self.dtype)
        if not len(centres):
            return out
        with torch_threads(1):  # small copies: threads only add hand-offs
            img = _pool_image(image, f)
            mp = _pool_map(map_, f, self.channels)
            half = P // 2
            img = F.pad(img, (half, half, half, half), mode="replicate")
            mp = F.pad(mp, (half, half, half, half))
            for k, (r, c) in enumerate(centres):
                rs, cs = int(round(r / f)), int(round(c / f))  # centre at scale s, +half for the pad
                rs = min(max(rs, 0), img.shape[-2] - 2 * half)
                cs = min(max(cs, 0), img.shape[-1] - 2 * half)
                out[k, :3] = img[0, :, rs:rs + P, cs:cs + P]
                out[k, 3:] = mp[0, :, rs:rs + P, cs:cs + P]
        return out

    def score(self, patches: torch.Tensor) -> dict[str, np.ndarray]:
        """Per patch: density, density_quantile, uncertainty, denoising_factor, shift (2, working
        px), neighbour_error_px (working px), nearest exemplars (3) and their k^{C,rot}.

        Patches are scored one by one (one forward, two backward passes each: a per-sample
        Jacobian), each op on one thread: a second thread inside these small convolutions only
        spins. With n > 1 torch threads the patches are split over n Python threads instead,
        each with its own copy of the network (``similarity`` swaps a module's parameters while
        it differentiates): the same values, patch by patch."""
        if len(patches) == 0:
            return {}
        workers = max(1, min(self.threads, len(patches)))
        while len(self._copies) < workers:
            self._copies.append(copy.deepcopy(self.model))
        parts = [idx for idx in np.array_split(np.arange(len(patches)), workers) if len(idx)]

        def run(k: int) -> dict[str, torch.Tensor]:
            if len(parts) > 1:
                one_torch_thread()  # a pool thread of its own
            model, x = self._copies[k], patches[parts[k]]
            return sim.score(model, x, self.stats.reference, centre, chunk_size=8, outputs=True)

        with torch_threads(1):
            if len(parts) == 1:
                done = [run(0)]
            else:
                with ThreadPoolExecutor(len(parts)) as pool:
                    done = list(pool.map(run, range(len(parts))))
        s = {k: torch.cat([d[k] for d in done]) for k in done[0]}
        pred = s["output"]  # the network's centre displacement (scale-s px)
        km = s["kernel_mean"].numpy()  # (k, 5): E_k[ŷ], E_k[y], E_k[err] (scale-s px)
        out = {
            "density": s["density"].numpy(),
            "density_quantile": self.stats.quantile_of(s["density"].numpy()),
            "uncertainty": s["uncertainty"].numpy(),
            "denoising_factor": s["denoising_factor"].numpy(),
            "shift_px": (pred.numpy() - km[:, 0:2]) * self.factor,
            "neighbour_error_px": km[:, 4] * self.factor,
        }
        if "exemplar_rotation_similarity" in s:
            rot = s["exemplar_rotation_similarity"].numpy()
            order = np.argsort(-rot, axis=1)[:, :3]
            out["nearest_exemplars"] = order
            out["nearest_similarity"] = np.take_along_axis(rot, order, axis=1)
        return out


def edge_strength(image: np.ndarray) -> np.ndarray:
    """Luminance gradient magnitude (H, W): where the image has structure to match against."""
    lum = image.mean(axis=0)
    gy, gx = np.gradient(lum)
    return np.hypot(gx, gy)
