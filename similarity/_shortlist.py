"""Approximate top-k in bounded memory: sketch pass, short lists, exact re-ranking by groups.

1. *Sketch pass* (one streamed pass over each set). Every chunk's whitened Jacobians, flattened
   to u ∈ R^D (D = d·p), are reduced to a count sketch r = S(u − c) of m numbers plus one exact
   scalar c·u, and then dropped. The centre c is the mean whitened Jacobian of a small pilot
   sample: networks often give every input a large common gradient component (k^C ≈ 0.95
   between white-noise inputs of an untrained CNN), and sketching only the residual u − c
   removes it from the sketch's variance. Each residual sketch is rescaled to the exact norm
   ‖u − c‖ (the renormalization; ‖u‖² is exact, the rank of K(x,x)), and u·v is estimated by
   r_u·r_v + c·u + c·v − ‖c‖². (Renormalized plain sketches already profit from a common
   component; centring cut the error a further 1.4× on that untrained CNN, m = 512.)
   Memory: N·(m + 1) numbers.
2. *Short lists.* For each query the L candidates with the largest estimate (blocks of queries
   against all references; never an N×N matrix).
3. *Exact re-ranking by groups.* The N·L (query, candidate) pairs form a graph. The samples
   are split into groups of at most ``capacity`` (recursive median bisection of the sketches
   along their principal directions, so similar samples share a group). One round per group:
   its whitened Jacobians are recomputed into the cache, every pair inside it is scored, then
   the samples outside it that still share a pair with it are streamed past, chunk by chunk,
   in group order. Jacobians live only in the cache and the streamed chunk, so memory is
   capacity·D + chunk·D numbers whatever N; the price is recomputation: each sample is
   computed once in its own group plus once per other group it still shares a pair with
   (1–3 times per sample in the benchmarks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from ._model import Data, Problem, iter_batches
from ._sketch import CountSketch
from ._linalg import inv_sqrt_psd
from .jacobians import iter_jacobians, normalize_jacobians
from .kernels import gram, scalar_similarity


def as_tensor(data: Data, batch_size: int = 1 << 14) -> Tensor:
    """The inputs as one tensor (N × input size: loaders are gathered once, never N×p)."""
    if isinstance(data, Tensor):
        return data
    return torch.cat(list(iter_batches(data, batch_size)))


class Whitener:
    """Flattened whitened Jacobians (n, D) of any input tensor, chunk by chunk."""

    def __init__(self, problem: Problem, chunk_size: int, rtol: float | None) -> None:
        self.problem, self.chunk_size, self.rtol = problem, chunk_size, rtol
        self.loads = 0  # samples whose Jacobians were computed: the cost counter
        self.d: int | None = None

    def __call__(self, x: Tensor) -> Iterator[Tensor]:
        for J in iter_jacobians(self.problem, x, self.chunk_size):
            self.d = J.shape[1]
            self.loads += J.shape[0]
            if J.shape[1] == 1:  # whiten in place: no second copy of the chunk
                W = inv_sqrt_psd(torch.linalg.vector_norm(J, dim=2, keepdim=True).square(), self.rtol)
                yield J.mul_(W).reshape(J.shape[0], -1)
            else:
                yield normalize_jacobians(J, self.rtol)[0].reshape(J.shape[0], -1)


def pair_scores(A: Tensor, B: Tensor, d: int, kind: str) -> Tensor:
    """Scalar similarities (a, b) between rows of flattened whitened Jacobians."""
    if kind == "correlation":  # Tr(Ĵ Ĵ'ᵀ)/d is the flattened dot product: no d×d blocks
        return (A @ B.T) / d
    return scalar_similarity(gram(A.view(A.shape[0], d, -1), B.view(B.shape[0], d, -1)), kind)


class Sketches:
    """Residual sketches r (N, m), c·u (N,) of one set, from one streamed pass.

    With ``rows`` (a count sketch R^p -> R^m2), the same pass also keeps, per sample, the
    count sketch of each of the d rows of its centred whitened Jacobian, ``R`` (N, d·m2),
    rescaled row by row to the exact norms ‖û_a − c_a‖, and the exact d×d products
    ``P`` = Û Cᵀ (N, d, d), C the centre as d rows: the re-ranking estimate of
    K^C(x,x') = Û Û'ᵀ is R Rᵀ + P + P'ᵀ − C Cᵀ (``sketch_rerank``), with no Jacobian computed
    again. The short-list sketch r is then taken of the (uncentred) row sketches instead of
    u: a count sketch of a count sketch is a count sketch of u (hashes composed), and it
    gathers d·m2 numbers a sample instead of d·p.
    """

    def __init__(self, whiten: Whitener, x: Tensor, sketch: CountSketch | None, centre: Tensor | None,
                 dim: int, seed: int, keep: int = 0, rows: CountSketch | None = None) -> None:
        """``keep`` > 0 also keeps the whitened Jacobians of the last ``keep`` samples
        (``self.kept``, rows for ids N − keep … N − 1), for re-ranking without recomputing."""
        rs, cus = [], []
        sc = rc = None
        n, start, self.kept = x.shape[0], 0, None
        self.R = self.P = None
        tiny = None
        for U in whiten(x):
            m = U.shape[0]
            tiny = torch.finfo(U.dtype).tiny
            if keep > 0:
                first = max(start, n - keep)
                if self.kept is None:
                    self.kept = U.new_empty(keep, U.shape[1])
                if first < start + m:
                    self.kept[first - (n - keep):start + m - (n - keep)] = U[first - start:]
            if centre is None:
                centre = torch.zeros(U.shape[1], dtype=U.dtype)
            cu = U @ centre
            if rows is None:
                sq = torch.linalg.vector_norm(U, dim=1).square()
                src, csrc = U, centre
            else:
                d = whiten.d
                C = centre.view(d, -1)
                if self.R is None:
                    self.R = U.new_empty(n, d * rows.dim_out)
                    self.P = U.new_empty(n, d, d)
                    rc = rows(C).view(1, -1)  # (1, d·m2): the centre's row sketches
                Ur = U.view(m * d, -1)
                Rc = self.R[start:start + m]
                Rf = Rc.view(m * d, -1)
                blk = max(1, (1 << 22) // Ur.shape[1])  # ≤ 16 MB temporaries
                for i in range(0, Ur.shape[0], blk):
                    Rf[i:i + blk] = rows(Ur[i:i + blk])
                P = U.view(m, d, -1) @ C.T  # (m, d, d): P[a, b] = û_a · c_b
                self.P[start:start + m] = P
                rsq = torch.linalg.vector_norm(U.view(m, d, -1), dim=2).square()  # (m, d), exact
                sq = rsq.sum(1)
                src, csrc = Rc, rc[0]
            if sketch is None:
                sketch = CountSketch(src.shape[1], dim, seed)
            if sc is None:
                sc = sketch(csrc.unsqueeze(0))  # the sketch is linear: S(u − c) = S(u) − S(c)
            target = (sq - 2 * cu + centre @ centre).clamp_min(0).sqrt()
            block = max(1, (1 << 22) // src.shape[1])
            r = torch.cat([sketch(src[i:i + block]) for i in range(0, m, block)]).sub_(sc)
            r *= (target / r.norm(dim=1).clamp_min(tiny)).unsqueeze(1)
            rs.append(r)
            cus.append(cu)
            if rows is not None:
                Rc -= rc
                Rv = Rc.view(m, d, -1)
                res = (rsq - 2 * torch.diagonal(P, dim1=1, dim2=2) + C.square().sum(1)).clamp_min(0).sqrt()
                Rv *= (res / Rv.norm(dim=2).clamp_min(tiny)).unsqueeze(2)
            start += m
        self.sketch, self.centre, self.rows = sketch, centre, rows
        self.r, self.cu = torch.cat(rs), torch.cat(cus)


def pilot_centre(whiten: Whitener, x: Tensor, size: int, seed: int) -> Tensor:
    """Mean whitened Jacobian of ``size`` random samples of x (the sketch's centre)."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(x.shape[0], generator=gen)[:size].sort().values
    total, n = None, 0
    for U in whiten(x[idx]):
        total = U.sum(0) if total is None else total + U.sum(0)
        n += U.shape[0]
    return total / n


def shortlists(q: Sketches, r: Sketches, length: int, exclude: bool, block: int = 256) -> Tensor:
    """(Nq, L) candidates per query by estimated similarity, in blocks of queries."""
    cc = q.centre @ q.centre
    out = torch.empty(q.r.shape[0], length, dtype=torch.long)
    for i in range(0, q.r.shape[0], block):
        est = q.r[i:i + block] @ r.r.T + q.cu[i:i + block, None] + r.cu[None, :] - cc
        if exclude:  # leave out reference j == query i
            rows = torch.arange(est.shape[0])
            keep = rows + i < est.shape[1]
            est[rows[keep], rows[keep] + i] = float("-inf")
        out[i:i + block] = est.topk(length, dim=1).indices
    return out


def partition(z: Tensor, size: int, leaf: int = 16, iters: int = 12) -> list[Tensor]:
    """Groups of at most ``size`` consecutive samples of a locality order of the rows of z.

    The order comes from recursive median bisection along each part's leading principal
    direction down to parts of ``leaf`` (a kd-tree order on the sketches): similar samples
    are close in it at every scale, so a group holds similar samples and, inside a group or a
    streamed chunk, neighbours sit in nearby rows (re-ranking reads contiguous slices).
    """
    order, todo = [], [torch.arange(z.shape[0])]
    while todo:
        idx = todo.pop()
        if idx.numel() <= leaf:
            order.append(idx)
            continue
        zc = z[idx] - z[idx].mean(0)
        v = zc[zc.norm(dim=1).argmax()].clone()
        for _ in range(iters):
            v = zc.T @ (zc @ v)
            v = v / v.norm().clamp_min(torch.finfo(z.dtype).tiny)
        o = (zc @ v).argsort()
        half = idx.numel() // 2
        todo += [idx[o[half:]], idx[o[:half]]]  # popped low half first: order is preserved
    return list(torch.cat(order).split(size))


def _permute_rows_(X: Tensor, perm: Tensor) -> None:
    """X[i] ← X[perm[i]] for every row, in place (cycle by cycle, one spare row)."""
    p = perm.tolist()
    done = [False] * len(p)
    spare = X.new_empty(X.shape[1:])
    for start in range(len(p)):
        if done[start] or p[start] == start:
            done[start] = True
            continue
        spare.copy_(X[start])
        j = start
        while True:
            done[j] = True
            k = p[j]
            if k == start:
                X[j].copy_(spare)
                break
            X[j].copy_(X[k])
            j = k


def rerank(whiten: Whitener, fetch: Callable[[Tensor], Tensor], num_vertices: int, u: Tensor,
           v: Tensor, kind: str, groups: list[Tensor],
           preloaded: list[tuple[Tensor, Tensor]] | None = None) -> tuple[Tensor, dict]:
    """Exact scores of the pairs (u_i, v_i) of vertex ids, in bounded memory.

    One round per group of vertices (``partition``: at most ``capacity`` each): load the
    group's whitened Jacobians, score the pairs inside it, then stream, chunk by chunk, the
    vertices outside it that still share a pair with it. ``fetch(ids)`` returns the inputs
    of vertex ids, in their order. Returns the scores and bookkeeping (rounds, Jacobians computed).
    """
    scores = torch.empty(u.shape[0], dtype=torch.float64)
    todo = torch.ones(u.shape[0], dtype=torch.bool)
    rounds, dtype = 0, None
    rank = torch.empty(num_vertices, dtype=torch.long)  # position in partition order
    rank[torch.cat(groups)] = torch.arange(num_vertices)
    pre = preloaded.pop() if preloaded else None  # popped: only this frame holds the rows
    if pre is not None:  # a first group whose Jacobians are already there (ids, rows)
        ids, rows = pre
        order = rank[ids].argsort()
        _permute_rows_(rows, order)  # rows in locality order, without a second copy
        mine = torch.zeros(num_vertices, dtype=torch.bool)
        mine[ids] = True
        groups = [ids[order]] + [g[~mine[g]] for g in groups if not bool(mine[g].all())]
    for gi, group in enumerate(groups):
        live = todo.nonzero().squeeze(1)
        if live.numel() == 0:
            break
        pu, pv = u[live], v[live]
        slot = torch.full((num_vertices,), -1, dtype=torch.long)
        slot[group] = torch.arange(group.numel())
        su, sv = slot[pu], slot[pv]
        touching = (su >= 0) | (sv >= 0)
        if not bool(touching.any()):
            continue
        rounds += 1
        if pre is not None and gi == 0:
            members, cache = group, pre[1]
            del rows
            pre = None
        else:
            members = group[rank[group].argsort()]
            cache = torch.cat(list(whiten(fetch(members))))
        slot[members] = torch.arange(members.numel())
        su, sv = slot[pu], slot[pv]
        dtype, d = cache.dtype, whiten.d
        both = (su >= 0) & (sv >= 0)
        scores[live[both]] = _grouped(cache, su[both], cache, sv[both], d, kind).double()
        todo[live[both]] = False
        one = (su >= 0) ^ (sv >= 0)
        inside = torch.where(su >= 0, su, sv)[one]  # cache slot
        outside = torch.where(su >= 0, pv, pu)[one]  # vertex id to stream
        pairs = live[one]
        streamed = torch.unique(outside)
        streamed = streamed[rank[streamed].argsort()]  # similar samples in the same chunk
        at = 0
        for U in whiten(fetch(streamed)):
            ids = streamed[at:at + U.shape[0]]
            at += U.shape[0]
            local = torch.full((num_vertices,), -1, dtype=torch.long)
            local[ids] = torch.arange(ids.numel())
            mine = local[outside] >= 0
            if bool(mine.any()):
                s = _grouped(U, local[outside[mine]], cache, inside[mine], d, kind)
                scores[pairs[mine]] = s.double()
                todo[pairs[mine]] = False
        del cache
    return scores.to(dtype or torch.get_default_dtype()), dict(rounds=rounds, jacobians=whiten.loads)


def sketch_rerank(q: Sketches, r: Sketches, u: Tensor, v: Tensor, kind: str, d: int) -> Tensor:
    """Estimated scores of the pairs (query u_i, reference v_i) from the re-ranking sketches.

    K^C(x,x') ≈ R Rᵀ + P + P'ᵀ − C Cᵀ (d×d, exact when the row sketch is injective, m2 ≥ p),
    then the scalar ``kind``. Both sets' rows are read in a locality order of their short-list
    sketches (recursive bisection, ``partition``), so that a group of queries and the union of
    its candidates are two dense slices: one product per group instead of one row per pair.
    Rows are permuted in place and put back afterwards; no copy of R is made.
    """
    C = q.centre.view(d, -1)
    CC = C @ C.T
    sets = [q] if r is q else [q, r]
    ranks = []
    for s in sets:
        order = torch.cat(partition(s.r, s.r.shape[0], iters=4))
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel())
        _permute_rows_(s.R, order)
        ranks.append((order, rank))
    try:
        a = ranks[0][1][u]
        b = ranks[-1][1][v]
        Pq, Pr = q.P[u], r.P[v]  # (n, d, d), exact
        if kind == "correlation":  # only the trace: flattened dot products
            corr = (torch.diagonal(Pq, dim1=1, dim2=2).sum(1) + torch.diagonal(Pr, dim1=1, dim2=2).sum(1)
                    - torch.trace(CC))
            dots = _grouped(q.R, a, r.R, b, d, kind, pair=lambda X, Y: X @ Y.T)
            return (dots + corr) / d
        G = _grouped(q.R, a, r.R, b, d, kind,
                     pair=lambda X, Y: gram(X.view(X.shape[0], d, -1), Y.view(Y.shape[0], d, -1)))
        return scalar_similarity(G + Pq + Pr.transpose(1, 2) - CC, kind)
    finally:
        for s, (order, rank) in zip(sets, ranks):
            _permute_rows_(s.R, rank)  # back to sample order


def _grouped(A: Tensor, a: Tensor, B: Tensor, b: Tensor, d: int, kind: str,
             group: int | None = None,
             pair: Callable[[Tensor, Tensor], Tensor] | None = None) -> Tensor:
    """Scores of pairs (A[a_i], B[b_i]): groups of rows of A against the union of their B rows.

    Rows of A come in partition order (similar samples adjacent), so a group of A rows shares
    most of its partners and each group is one dense product. B is read in place (a slice of
    consecutive rows) or its needed rows copied out, whichever a simple cost model prefers.
    """
    if pair is None:
        def pair(X: Tensor, Y: Tensor) -> Tensor:
            return pair_scores(X, Y, d, kind)
    out = None
    if a.numel() == 0:
        return torch.empty(0, dtype=A.dtype)
    if group is None:  # rows of A per product: ~32 MB of them (16 CNN-sized rows, 64 small ones)
        group = max(16, min(64, (1 << 23) // A.shape[1]))
    perm = torch.argsort(a, stable=True)
    rows, first = torch.unique_consecutive(a[perm], return_counts=True)
    bounds = torch.cumsum(first, 0)
    begin = 0
    for g in range(0, rows.numel(), group):
        end = int(bounds[min(g + group, rows.numel()) - 1])
        sel = perm[begin:end]
        ra, pa = torch.unique(a[sel], return_inverse=True)
        rb, pb = torch.unique(b[sel], return_inverse=True)
        lo, hi = int(ra[0]), int(ra[-1]) + 1
        if hi - lo <= 2 * ra.numel():
            Ablk, ia = A[lo:hi], ra[pa] - lo
        else:
            Ablk, ia = A.index_select(0, ra), pa
        lo, hi = int(rb[0]), int(rb[-1]) + 1
        # Cost in dot products, reading a row ≈ 10 of them (memory vs arithmetic on one core):
        # a slice of B read in place, or the needed rows copied out (read, write, read).
        n_a = Ablk.shape[0]
        if (n_a + hi - lo) * 10 + n_a * (hi - lo) <= (n_a + 3 * rb.numel()) * 10 + n_a * rb.numel():
            Bblk, ib = B[lo:hi], rb[pb] - lo
        else:
            Bblk, ib = B.index_select(0, rb), pb
        S = pair(Ablk, Bblk)[ia, ib]
        if out is None:
            out = S.new_empty(a.shape[0], *S.shape[1:])
        out[sel] = S
        begin = end
    return out
