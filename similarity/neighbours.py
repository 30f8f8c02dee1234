"""Nearest neighbours by network similarity, and similarity histograms.

Exact top-k scans every pair block by block. The approximate search sketches the whitened
Jacobians to m numbers (count sketch), renormalizes the sketches so that each has unit norm
(an estimate of k^C(x,x) = 1), ranks all pairs by the sketched similarity, keeps a short list
of candidates per query and re-ranks that list exactly: the cost of the exact pairwise scan,
N²·d²·p, becomes N²·m + N·L·d²·p.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import _fused
from ._linalg import inv_sqrt_psd
from ._model import Data, Output, Params, iter_batches, make_problem, num_samples
from ._pairwise import DEFAULT_BLOCK_BYTES, similarity_blocks
from ._sketch import CountSketch
from .jacobians import DEFAULT_CHUNK, iter_jacobians, normalize_jacobians
from .kernels import gram, scalar_similarity


def _merge_topk(best: tuple[Tensor, Tensor] | None, scores: Tensor, index: Tensor,
                k: int) -> tuple[Tensor, Tensor]:
    if best is not None:
        scores = torch.cat([best[0], scores], 1)
        index = torch.cat([best[1], index], 1)
    top = scores.topk(min(k, scores.shape[1]), dim=1)
    return top.values, index.gather(1, top.indices)


def topk_neighbours(model: nn.Module, queries: Data, reference: Data | None = None,
                    k: int = 10, output: Output | None = None, *, method: str = "exact",
                    kind: str = "correlation", sketch_dim: int = 512, shortlist: int | None = None,
                    seed: int = 0, exclude_self: bool | None = None,
                    chunk_size: int = DEFAULT_CHUNK, block_bytes: int = DEFAULT_BLOCK_BYTES,
                    params: Params = None, rtol: float | None = None) -> tuple[Tensor, Tensor]:
    """The k most similar reference samples of each query: (scores (N, k), indices (N, k)).

    ``reference=None`` searches the queries themselves and, by default, leaves each query
    out of its own list. ``method='exact'`` is blocked over all pairs (memory
    ``block_bytes``); ``method='approx'`` holds the whitened Jacobians of both sets in memory
    (N·d·p numbers), ranks pairs by sketched similarity (``sketch_dim`` numbers per sample)
    and re-ranks ``shortlist`` candidates (default 4k) exactly. Scores are exact in both.
    """
    problem = make_problem(model, output, params)
    same = reference is None
    exclude = same if exclude_self is None else exclude_self
    if method == "exact":
        best: dict[int, tuple[Tensor, Tensor]] = {}
        for row, col, S in similarity_blocks(problem, queries, reference, kind=kind,
                                             chunk_size=chunk_size, block_bytes=block_bytes,
                                             rtol=rtol):
            idx = torch.arange(col, col + S.shape[1]).expand(S.shape[0], -1)
            if exclude:
                rows = torch.arange(row, row + S.shape[0]).unsqueeze(1)
                S = S.masked_fill(idx == rows, float("-inf"))
            best[row] = _merge_topk(best.get(row), S, idx, k)
        rows = sorted(best)
        return torch.cat([best[r][0] for r in rows]), torch.cat([best[r][1] for r in rows])
    if method != "approx":
        raise ValueError(f"method must be 'exact' or 'approx', got {method!r}")
    return _approx_topk(problem, queries, reference, k, kind, sketch_dim,
                        shortlist or 4 * k, seed, exclude, chunk_size, rtol)


def _whitened_all(problem, data: Data, chunk_size: int, rtol: float | None,
                  sketch_dim: int | None = None, seed: int = 0) -> tuple[Tensor, Tensor | None]:
    """All whitened Jacobians (N, d, p), and optionally their unit-norm sketches (N, m).

    Chunks are written in place into one preallocated tensor when N is known, and sketched
    while still fresh, so the N·d·p numbers are written once and read once here.
    """
    n = num_samples(data)
    sketch: list[CountSketch] = []
    zs: list[Tensor] = []

    def done(J: Tensor) -> None:
        if sketch_dim is None:
            return
        if not sketch:
            sketch.append(CountSketch(J[0].numel(), sketch_dim, seed))
        zs.append(_sketches(J, sketch[0]))

    def finish(out: Tensor) -> tuple[Tensor, Tensor | None]:
        return out, (torch.cat(zs) if zs else None)

    if n is None:
        chunks = []
        for J in iter_jacobians(problem, data, chunk_size):
            chunks.append(normalize_jacobians(J, rtol)[0])
            done(chunks[-1])
        return finish(torch.cat(chunks))
    layers = _fused._layers(problem)
    out, start = None, 0
    if layers is not None:
        try:
            engine = _fused._Pass(problem, layers)
            for x in iter_batches(data, chunk_size):
                if out is None:
                    d = problem(problem.params, x[:1].detach()).shape[1]
                    out = x.new_empty(n, d, problem.num_params, dtype=next(iter(problem.params.values())).dtype)
                J = engine.jacobians(x, out[start:start + x.shape[0]])
                W = inv_sqrt_psd(J @ J.transpose(1, 2), rtol)
                if J.shape[1] == 1:
                    J.mul_(W)  # whiten in place: no second copy of the chunk
                else:
                    J.copy_(W @ J)
                done(J)
                start += x.shape[0]
            return finish(out)
        except _fused.Unsupported:
            out, start = None, 0
            zs.clear()
    for J in iter_jacobians(problem, data, chunk_size, fused=False):
        if out is None:
            out = J.new_empty(n, *J.shape[1:])
        out[start:start + J.shape[0]] = normalize_jacobians(J, rtol)[0]
        done(out[start:start + J.shape[0]])
        start += J.shape[0]
    return finish(out)


def _sketches(Jn: Tensor, sketch: CountSketch) -> Tensor:
    """Unit-norm sketches of whitened Jacobians (n, d, p) -> (n, m), in cache-sized blocks."""
    block = max(1, (1 << 22) // sketch.dim_in)  # ≤ 16 MB temporaries: reused, not page-faulted
    z = torch.cat([sketch(Jn[i:i + block].reshape(-1, sketch.dim_in)) for i in range(0, Jn.shape[0], block)])
    return z / z.norm(dim=1, keepdim=True).clamp_min(torch.finfo(z.dtype).tiny)


def _leading_order(z: Tensor, iters: int = 20) -> Tensor:
    """Order samples along the leading principal direction of their sketches.

    Samples that are neighbours tend to sit next to each other in this order, so a block of
    consecutive queries shares most of its candidates and re-ranking becomes a few dense
    matrix products instead of N·L scattered row reads.
    """
    zc = z - z.mean(0)
    v = torch.ones(z.shape[1], dtype=z.dtype)
    for _ in range(iters):
        v = zc.T @ (zc @ v)
        v = v / v.norm().clamp_min(torch.finfo(z.dtype).tiny)
    return (zc @ v).argsort()


def _approx_topk(problem, queries: Data, reference: Data | None, k: int, kind: str,
                 sketch_dim: int, shortlist: int, seed: int, exclude: bool, chunk_size: int,
                 rtol: float | None) -> tuple[Tensor, Tensor]:
    Jq, zq = _whitened_all(problem, queries, chunk_size, rtol, sketch_dim, seed)
    Jr, zr = (Jq, zq) if reference is None else _whitened_all(problem, reference, chunk_size, rtol,
                                                              sketch_dim, seed)
    nq, nr = Jq.shape[0], Jr.shape[0]
    L = min(shortlist, nr - int(exclude))
    k = min(k, L)
    scores = torch.empty(nq, k, dtype=Jq.dtype)
    indices = torch.empty(nq, k, dtype=torch.long)
    block = int(min(128, max(8, (1 << 22) // Jr[0].numel())))  # gathered rows ≤ ~16 MB
    order = _leading_order(zq)
    for i in range(0, nq, block):
        rows = order[i:i + block]
        approx = zq[rows] @ zr.T  # (b, N_ref)
        if exclude:
            approx[torch.arange(len(rows)), rows] = float("-inf")
        cand = approx.topk(L, dim=1).indices  # (b, L)
        # Exact scores against the union of the block's candidates: one dense product.
        union, pos = torch.unique(cand, return_inverse=True)
        KC = gram(Jq.index_select(0, rows), Jr.index_select(0, union))
        exact = scalar_similarity(KC, kind).gather(1, pos)  # (b, L)
        top = exact.topk(k, dim=1)
        scores[rows] = top.values
        indices[rows] = cand.gather(1, top.indices)
    return scores, indices


def similarity_histogram(model: nn.Module, data: Data, reference: Data | None = None,
                         output: Output | None = None, *, bins: int = 50,
                         range: tuple[float, float] = (-1.0, 1.0), per_sample: bool = False,
                         kind: str = "correlation", exclude_self: bool | None = None,
                         chunk_size: int = DEFAULT_CHUNK, block_bytes: int = DEFAULT_BLOCK_BYTES,
                         params: Params = None, rtol: float | None = None) -> tuple[Tensor, Tensor]:
    """Histogram of k(x,x') over all pairs: (counts (bins,) or (N, bins), bin edges (bins+1,)).

    The paper compares such histograms per realignment round: a mass near 1 means many
    near-duplicates from the network's point of view. Values outside ``range`` are clamped
    into the end bins. Self-pairs are left out by default when ``reference`` is None.
    """
    problem = make_problem(model, output, params)
    exclude = reference is None if exclude_self is None else exclude_self
    lo, hi = range
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    rows: dict[int, Tensor] = {}
    for row, col, S in similarity_blocks(problem, data, reference, kind=kind,
                                         chunk_size=chunk_size, block_bytes=block_bytes, rtol=rtol):
        b = ((S.double() - lo) / (hi - lo) * bins).floor().clamp(0, bins - 1).long()
        valid = torch.ones_like(b, dtype=torch.bool)
        if exclude:
            r = torch.arange(row, row + S.shape[0]).unsqueeze(1)
            c = torch.arange(col, col + S.shape[1]).unsqueeze(0)
            valid = r != c
        counts = torch.zeros(S.shape[0], bins, dtype=torch.long)
        counts.scatter_add_(1, b, valid.long())
        rows[row] = rows[row] + counts if row in rows else counts
    per_row = torch.cat([rows[r] for r in sorted(rows)])
    return (per_row if per_sample else per_row.sum(0)), edges
