"""Scoring new inputs against a reference set that is not at hand.

Every streamed estimator of the library is linear in a few sums over the reference set
(Ĝ = Σ Ĵ(x'), G = Σ J(x'), S_v = Σ v(x') Ĵ(x')) or, for the denoising factor, in the Gram
matrix of count sketches of the whitened Jacobians. ``reference_stats`` walks the reference
once and keeps only those sums (a few d×p arrays and an m×m matrix, whatever N); ``score``
then gives N_S, the uncertainty, kernel means and the denoising factor of new inputs from
them alone — e.g. a trained network shipped with the statistics of its training set.
Optional *exemplars* (a few chosen reference samples) keep row sketches of their whitened
Jacobians, so the nearest exemplars of a new input can be named (exact when the sketch
dimension is at least p).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor, nn

from ._model import Data, Output, Params, make_problem
from ._sketch import CountSketch
from .jacobians import DEFAULT_CHUNK, iter_jacobians, iter_outputs_jacobians, normalize_jacobians
from .kernels import rotation_invariant_similarity


@dataclass(frozen=True)
class ReferenceStats:
    """Sums over a reference set of N samples (float64), enough to score new inputs.

    ``whitened_sum`` Ĝ (d, p); ``raw_sum`` G (d, p); ``value_sums`` (q, d, p), S_i = Σ_j v_ji Ĵ_j;
    ``sketch_gram`` (m, m) = Σ_j z_j z_jᵀ with z = sketch(vec Ĵ / √d) and ``sketch_norm_sum``
    Σ_j ‖vec Ĵ_j / √d‖²; ``exemplar_rows`` (n_ex, d, m2): row sketches of the exemplars' Ĵ.
    """

    count: int
    whitened_sum: Tensor
    raw_sum: Tensor
    value_sums: Tensor
    sketch_gram: Tensor
    sketch_norm_sum: float
    sketch_seed: int
    exemplar_rows: Tensor
    exemplar_seed: int

    @property
    def out_dim(self) -> int:
        return int(self.whitened_sum.shape[0])

    @property
    def num_params(self) -> int:
        return int(self.whitened_sum.shape[1])

    def to_arrays(self, prefix: str = "", dtype=None) -> dict[str, np.ndarray]:
        """Plain numpy arrays (``np.savez`` them; they load with ``allow_pickle=False``);
        ``dtype`` (e.g. ``np.float32``, half the size) for the sums and sketches."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Tensor):
                v = v.detach().cpu().numpy()
                out[prefix + f.name] = v if dtype is None else v.astype(dtype)
            else:
                out[prefix + f.name] = np.asarray(v)
        return out

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "") -> "ReferenceStats":
        kw = {}
        for f in fields(cls):
            v = np.asarray(arrays[prefix + f.name])
            if f.name in ("count", "sketch_seed", "exemplar_seed"):
                kw[f.name] = int(v)
            elif f.name == "sketch_norm_sum":
                kw[f.name] = float(v)
            else:
                kw[f.name] = torch.from_numpy(np.array(v, dtype=np.float64))
        return cls(**kw)


def _row_sketch(Jn: Tensor, sketch: CountSketch) -> Tensor:
    """(n, d, p) -> (n, d, m2): each row of each whitened Jacobian sketched alike."""
    n, d, p = Jn.shape
    return sketch(Jn.reshape(n * d, p).double()).reshape(n, d, -1)


def reference_stats(model: nn.Module, reference: Data, values: Tensor | None = None,
                    output: Output | None = None, *, sketch_dim: int = 256,
                    exemplars: Sequence[int] | Tensor | None = None, exemplar_dim: int = 1024,
                    seed: int = 0, chunk_size: int = DEFAULT_CHUNK, params: Params = None,
                    rtol: float | None = None) -> ReferenceStats:
    """One pass over ``reference``: the sums :func:`score` needs (see :class:`ReferenceStats`).

    ``values`` (N, q) are attached to the reference samples for kernel means (e.g. the
    network's predictions and the labels). ``exemplars``: indices of reference samples whose
    row sketches are kept (``exemplar_dim`` buckets per row; exact when ≥ p).
    """
    problem = make_problem(model, output, params)
    vals = None if values is None else values.reshape(values.shape[0], -1).double()
    wanted = torch.as_tensor([] if exemplars is None else list(exemplars), dtype=torch.long)
    G_hat = G = S = C = None
    norm_sum, start = 0.0, 0
    sketch = row_sketch = None
    rows: dict[int, Tensor] = {}
    for J in iter_jacobians(problem, reference, chunk_size):
        n, d, p = J.shape
        if sketch is None:
            sketch = CountSketch(d * p, sketch_dim, seed)
            row_sketch = CountSketch(p, min(exemplar_dim, p), seed + 1)
            G_hat = torch.zeros(d, p, dtype=torch.float64)
            G = torch.zeros(d, p, dtype=torch.float64)
            S = torch.zeros(0 if vals is None else vals.shape[1], d, p, dtype=torch.float64)
            C = torch.zeros(sketch.dim_out, sketch.dim_out, dtype=torch.float64)
        Jn = normalize_jacobians(J, rtol)[0].double()
        G_hat += Jn.sum(0)
        G += J.double().sum(0)
        if vals is not None:
            S += torch.einsum("nq,ndp->qdp", vals[start:start + n], Jn)
        u = Jn.reshape(n, -1) / d ** 0.5
        z = sketch(u)
        C += z.T @ z
        norm_sum += float(u.square().sum())
        here = wanted[(wanted >= start) & (wanted < start + n)]
        if len(here):
            sk = _row_sketch(Jn[here - start], row_sketch)
            for k, i in enumerate(here.tolist()):
                rows[i] = sk[k]
        start += n
    if G_hat is None:
        raise ValueError("the reference set is empty")
    if vals is not None and vals.shape[0] != start:
        raise ValueError(f"values has {vals.shape[0]} rows for {start} reference samples")
    missing = sorted(set(wanted.tolist()) - set(rows))
    if missing:
        raise ValueError(f"exemplar indices out of range: {missing[:5]}")
    ex = (torch.stack([rows[i] for i in wanted.tolist()]) if len(wanted)
          else torch.zeros(0, G_hat.shape[0], row_sketch.dim_out, dtype=torch.float64))
    return ReferenceStats(start, G_hat, G, S, C, norm_sum, seed, ex, seed + 1)


def score(model: nn.Module, data: Data, stats: ReferenceStats, output: Output | None = None, *,
          chunk_size: int = DEFAULT_CHUNK, params: Params = None,
          rtol: float | None = None, outputs: bool = False) -> dict[str, Tensor]:
    """The reference set's view of every sample of ``data``, from ``stats`` alone.

    Returns float64 tensors: ``density`` N_S(x) = Tr(Ĵ(x)Ĝᵀ)/d (N,); ``uncertainty``
    Tr K(x,x) / Tr(J(x)Gᵀ) (N,); ``kernel_mean`` E_k[v](x) (N, q); ``denoising_factor``
    sqrt(Σ_j k^C(x,x_j)²)/N_S(x) from the sketch (N,) (exact when the sketch dimension is at
    least d·p, else with the bias of :func:`similarity.denoising_factor`'s sketch removed);
    ``exemplar_similarity`` k^C and, for d = 2, ``exemplar_rotation_similarity`` k^{C,rot}
    against the exemplars (N, n_ex), exact when the row sketch dimension is p. With
    ``outputs``, also ``output`` f(x) (N, d), from the passes that differentiate it (no forward
    pass of its own). Same conventions as the estimators computed with the reference at hand.
    """
    problem = make_problem(model, output, params)
    d, p = stats.out_dim, stats.num_params
    if problem.num_params != p:
        raise ValueError(f"the statistics are of a model with {p} parameters, this one has {problem.num_params}")
    m = stats.sketch_gram.shape[0]
    sketch = CountSketch(d * p, m, stats.sketch_seed)
    exact_sketch = m >= d * p
    row_sketch = CountSketch(p, stats.exemplar_rows.shape[-1], stats.exemplar_seed) if p else None
    out: dict[str, list[Tensor]] = {k: [] for k in ("density", "uncertainty", "kernel_mean",
                                                     "denoising_factor", "exemplar_similarity",
                                                     "exemplar_rotation_similarity", "output")}
    for y, J in iter_outputs_jacobians(problem, data, chunk_size):
        if outputs:
            out["output"].append(y.double())
        J = J.double()
        n = J.shape[0]
        Jn = normalize_jacobians(J, rtol)[0]
        ns = torch.einsum("ndp,dp->n", Jn, stats.whitened_sum) / d
        out["density"].append(ns)
        out["uncertainty"].append(J.square().sum((1, 2)) / torch.einsum("ndp,dp->n", J, stats.raw_sum))
        T = torch.einsum("ndp,qdp->nq", Jn, stats.value_sums) / d
        out["kernel_mean"].append(T / ns[:, None])
        u = Jn.reshape(n, -1) / d ** 0.5
        z = sketch(u)
        raw = torch.einsum("nm,mk,nk->n", z, stats.sketch_gram, z)
        if not exact_sketch:
            un = u.square().sum(-1)
            raw = ((raw - un * stats.sketch_norm_sum / m) / (1 + 1 / m)).clamp_min(0)
        out["denoising_factor"].append(raw.clamp_min(0).sqrt() / ns)
        if stats.exemplar_rows.shape[0]:
            R = _row_sketch(Jn, row_sketch)
            KC = torch.einsum("nam,ebm->neab", R, stats.exemplar_rows)  # (n, n_ex, d, d)
            out["exemplar_similarity"].append(torch.diagonal(KC, dim1=-2, dim2=-1).sum(-1) / d)
            if d == 2:
                out["exemplar_rotation_similarity"].append(rotation_invariant_similarity(KC))
    result = {}
    for k, parts in out.items():
        if parts:
            result[k] = torch.cat(parts)
    return result
