"""Nearest neighbours by network similarity, and similarity histograms.

Exact top-k scans every pair block by block. The approximate search sketches the whitened
Jacobians to m numbers (count sketch), renormalizes the sketches so that each has unit norm
(an estimate of k^C(x,x) = 1), ranks all pairs by the sketched similarity, keeps a short list
of candidates per query and re-ranks that list, by default from a second, larger sketch of the
same single Jacobian pass (``rerank='sketch'``) or exactly (``rerank='exact'``, recomputing
Jacobians): the cost of the exact pairwise scan, N²·d²·p, becomes N·d·p (one pass) +
N²·m + N·L·d²·m2.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from collections.abc import Iterator

from ._model import Data, Output, Params, make_problem, num_samples
from ._pairwise import DEFAULT_BLOCK_BYTES, similarity_blocks
from ._shortlist import (Sketches, Whitener, as_tensor, pair_scores, partition, pilot_centre, rerank,
                         shortlists, sketch_rerank)
from ._sketch import CountSketch
from .jacobians import DEFAULT_CHUNK


# Default cap on the re-ranking sketch: its cosine error 1/√m2 is then ≤ 0.6% of the centred
# residual, while scoring a short-listed pair costs d²·m2 (at m2 = p = 232,514 the CNN's
# N = 512 re-ranking took longer than its Jacobian pass).
MAX_RERANK_DIM = 1 << 15


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
                    params: Params = None, rtol: float | None = None, centre: bool = True,
                    pilot_size: int = 64, rerank: str = "auto", rerank_dim: int | None = None,
                    stats: dict | None = None) -> tuple[Tensor, Tensor]:
    """The k most similar reference samples of each query: (scores (N, k), indices (N, k)).

    ``reference=None`` searches the queries themselves and, by default, leaves each query
    out of its own list. Scores are exact in the exact method and in ``rerank='exact'``,
    estimates in ``rerank='sketch'`` (exact when m2 ≥ p); memory is bounded by
    ``block_bytes`` of whitened Jacobians (plus one chunk) whatever N:

    - ``method='exact'`` holds a block of queries and streams the reference past it (the
      reference's Jacobians are recomputed once per query block; computed once when the
      queries fit in one block and ``reference=None``).
    - ``method='approx'`` streams each set once, keeping a ``sketch_dim``-number sketch per
      sample (of u − c, c the mean whitened Jacobian of ``pilot_size`` random samples, when
      ``centre``), short-lists ``shortlist`` candidates per query (default 4k) by sketched
      similarity and re-ranks them (below; ``rerank='exact'`` recomputes the candidates'
      Jacobians in rounds within the ``block_bytes`` cache). Memory: N·(sketch_dim + 2) +
      N·shortlist·4 numbers beside the cache or the re-ranking sketches, and the inputs
      gathered once when they come from a loader.

    Re-ranking of the short lists (``method='approx'``):

    - ``rerank='sketch'``: no Jacobian is computed twice. The sketch pass also keeps a count
      sketch of each of the d rows of every centred whitened Jacobian, of ``rerank_dim`` = m2
      numbers (default: the largest that fits ``block_bytes`` for all N samples, at most p),
      rescaled to the exact row norms, and the exact d×d products with the centre (default
      m2: at most 32,768, and at most what fits ``block_bytes``); each
      short-listed pair is scored by the resulting estimate of K^C (exact self-normalization,
      cross terms with a standard error of about ‖û − c‖‖û' − c'‖/√m2 per entry; exact when
      m2 ≥ p). The returned scores are these estimates. Memory: N·d·(m2 + d) numbers.
    - ``rerank='exact'``: exact scores, recomputing the candidates' Jacobians in rounds within
      the ``block_bytes`` cache (above).
    - ``rerank='auto'`` (default): 'sketch' when ``block_bytes`` holds m2 ≥ min(p, 1024) for
      every sample, else 'exact'.

    ``stats``, when given a dict, receives what the search cost (Jacobians computed, rounds,
    the re-ranking used and m2).
    """
    problem = make_problem(model, output, params)
    exclude = (reference is None) if exclude_self is None else exclude_self
    if method == "exact":
        return _exact_topk(problem, queries, reference, k, kind, exclude, chunk_size, block_bytes,
                           rtol, stats)
    if method != "approx":
        raise ValueError(f"method must be 'exact' or 'approx', got {method!r}")
    if rerank not in ("auto", "sketch", "exact"):
        raise ValueError(f"rerank must be 'auto', 'sketch' or 'exact', got {rerank!r}")
    return _approx_topk(problem, queries, reference, k, kind, sketch_dim, shortlist or 4 * k, seed,
                        exclude, chunk_size, block_bytes, rtol, centre, pilot_size, rerank,
                        rerank_dim, stats)


def _exact_topk(problem, queries: Data, reference: Data | None, k: int, kind: str, exclude: bool,
                chunk_size: int, block_bytes: int, rtol: float | None,
                stats: dict | None) -> tuple[Tensor, Tensor]:
    """Blocked exact search: query blocks of ``block_bytes``, the reference streamed past each."""
    whiten = Whitener(problem, chunk_size, rtol)
    ref = queries if reference is None else reference
    out_s, out_i = [], []
    blocks = 0
    for q0, Q in _blocks(whiten, queries, block_bytes):
        blocks += 1
        d = whiten.d
        best = None
        if reference is None and q0 == 0 and Q.shape[0] == num_samples(queries):
            stream = ((i, Q[i:i + chunk_size]) for i in range(0, Q.shape[0], chunk_size))
        else:
            stream = _offsets(whiten(ref))
        for c0, R in stream:
            S = pair_scores(Q, R, d, kind)
            idx = torch.arange(c0, c0 + R.shape[0]).expand(S.shape[0], -1)
            if exclude:
                rows = torch.arange(q0, q0 + S.shape[0]).unsqueeze(1)
                S = S.masked_fill(idx == rows, float("-inf"))
            best = _merge_topk(best, S, idx, k)
        out_s.append(best[0])
        out_i.append(best[1])
    if stats is not None:
        stats.update(jacobians=whiten.loads, query_blocks=blocks)
    return torch.cat(out_s), torch.cat(out_i)


def _offsets(chunks) -> Iterator[tuple[int, Tensor]]:
    start = 0
    for U in chunks:
        yield start, U
        start += U.shape[0]


def _blocks(whiten: Whitener, data: Data, block_bytes: int) -> Iterator[tuple[int, Tensor]]:
    """(offset, flattened whitened Jacobians) of consecutive blocks of at most ``block_bytes``."""
    block, size, offset = [], 0, 0
    for U in whiten(data):
        block.append(U)
        size += U.numel() * U.element_size()
        if size >= block_bytes:
            cat = torch.cat(block)
            block.clear()
            yield offset, cat
            offset += cat.shape[0]
            size = 0
    if block:
        yield offset, torch.cat(block)


def _output_dim(problem, x: Tensor) -> int:
    with torch.no_grad():
        return problem(problem.params, x[:1]).shape[1]


def _approx_topk(problem, queries: Data, reference: Data | None, k: int, kind: str,
                 sketch_dim: int, shortlist: int, seed: int, exclude: bool, chunk_size: int,
                 block_bytes: int, rtol: float | None, centre: bool, pilot_size: int,
                 rerank_mode: str, rerank_dim: int | None,
                 stats: dict | None) -> tuple[Tensor, Tensor]:
    whiten = Whitener(problem, chunk_size, rtol)
    xq = as_tensor(queries)
    xr = xq if reference is None else as_tensor(reference)
    c = pilot_centre(whiten, xr, pilot_size, seed) if centre and pilot_size > 0 else None
    dtype = next(iter(problem.params.values())).dtype
    d_out, p = _output_dim(problem, xq), problem.num_params
    elem = torch.finfo(dtype).bits // 8
    row_bytes = d_out * p * elem
    capacity = max(chunk_size, block_bytes // row_bytes)
    nq = xq.shape[0]
    nr = xr.shape[0]
    if rerank_mode != "exact":
        n_all = nq + (0 if reference is None else nr)
        fits = min(p, block_bytes // (n_all * d_out * elem))
        # Default: the largest m2 that fits, at most MAX_RERANK_DIM, lowered to ⌈p / ⌈p / m2⌉⌉
        # so that the balanced count sketch has no padding (m2 = 32,768 for p = 33,409 would
        # gather 2·p numbers a row for 2% more buckets than m2 = 16,705).
        top = max(1, min(fits, MAX_RERANK_DIM))
        m2 = -(-p // -(-p // top)) if rerank_dim is None else min(p, rerank_dim)
        if rerank_mode == "auto":
            rerank_mode = "sketch" if fits >= min(p, 1024) else "exact"
        if rerank_mode == "sketch":
            return _approx_sketch_topk(whiten, xq, xr, reference is None, c, k, kind, sketch_dim,
                                       shortlist, seed, exclude, max(1, m2), capacity, stats)
    # When at least half the set fits in the cache, keep the sketch pass's last Jacobians as
    # the first re-ranking group instead of computing them again.
    keep = min(capacity, nq) if reference is None and 2 * capacity >= nq else 0
    sq = Sketches(whiten, xq, None, c, sketch_dim, seed, keep=keep)
    sr = sq if reference is None else Sketches(whiten, xr, sq.sketch, sq.centre, sketch_dim, seed)
    L = min(shortlist, nr - int(exclude))
    k = min(k, L)
    cand = shortlists(sq, sr, L, exclude)
    u = torch.arange(nq).repeat_interleave(L)
    if reference is None:
        v, nv, z = cand.reshape(-1), nq, sq.r

        def fetch(ids: Tensor) -> Tensor:
            return xq[ids]
    else:
        v, nv, z = cand.reshape(-1) + nq, nq + nr, torch.cat([sq.r, sr.r])

        def fetch(ids: Tensor) -> Tensor:
            out = xq.new_empty(ids.numel(), *xq.shape[1:])
            isq = ids < nq
            out[isq] = xq[ids[isq]]
            out[~isq] = xr[ids[~isq] - nq].to(xq.dtype)
            return out
    preloaded = [(torch.arange(nq - keep, nq), sq.kept)] if keep else None
    sq.kept = None
    exact, info = rerank(whiten, fetch, nv, u, v, kind, partition(z, capacity), preloaded)
    top = exact.view(nq, L).topk(k, dim=1)
    if stats is not None:
        stats.update(info, shortlist=L, sketch_dim=sketch_dim, capacity=capacity, rerank="exact")
    return top.values, cand.gather(1, top.indices)


def _approx_sketch_topk(whiten: Whitener, xq: Tensor, xr: Tensor, same: bool, c: Tensor | None,
                        k: int, kind: str, sketch_dim: int, shortlist: int, seed: int, exclude: bool,
                        m2: int, capacity: int, stats: dict | None) -> tuple[Tensor, Tensor]:
    """One Jacobian pass per set: short lists and re-ranking both from what the pass keeps."""
    p = whiten.problem.num_params
    rows = CountSketch(p, m2, seed + 1)
    sq = Sketches(whiten, xq, None, c, sketch_dim, seed, rows=rows)
    sr = sq if same else Sketches(whiten, xr, sq.sketch, sq.centre, sketch_dim, seed, rows=rows)
    nq, nr = xq.shape[0], xr.shape[0]
    L = min(shortlist, nr - int(exclude))
    k = min(k, L)
    cand = shortlists(sq, sr, L, exclude)
    u = torch.arange(nq).repeat_interleave(L)
    est = sketch_rerank(sq, sr, u, cand.reshape(-1), kind, whiten.d)
    top = est.view(nq, L).topk(k, dim=1)
    if stats is not None:
        stats.update(jacobians=whiten.loads, rounds=0, shortlist=L, sketch_dim=sketch_dim,
                     capacity=capacity, rerank="sketch", rerank_dim=m2)
    return top.values, cand.gather(1, top.indices)


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
