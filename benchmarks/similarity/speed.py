"""Speed and memory of the similarity library against a plain training pass.

For the sine MLP (d = 1) and a CNN of the alignment network's size (d = 2, p ≈ 2.3·10⁵),
N ∈ {512, 2048, 8192}: time of ``soft_density`` end to end divided by the floor (one plain
batched forward + backward pass over the same N samples, same batch size, same run,
measured before and after), and the peak resident memory above the start of the call.
Then exact vs approximate top-10 neighbours (both within the same 1 GiB Jacobian budget)
for a briefly trained sine MLP and a briefly trained CNN: recall, speed-up, peak memory and
Jacobians recomputed. Where exact over all N queries would take too long (the CNN above
N = 512), it runs on one query block (a random subset: the queries whose Jacobians fill the
budget) against all N references, and its time is extrapolated linearly in the number of
queries; the JSON says so per row (``exact_extrapolated``).

    python -m benchmarks.similarity.speed [--quick] [--topk-only]

Writes benchmarks/results/similarity/speed.{json,png}.
"""

from __future__ import annotations

import argparse
import json
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import similarity as sim  # noqa: E402

from .common import (RESULTS, PeakRSS, alignment_cnn, centre_displacement, num_params,  # noqa: E402
                     sine_mlp, threads, timed, write_json)


def plain_pass(model, x, output, batch_size: int) -> None:
    """The floor: forward and backward of the summed outputs, batch by batch."""
    for i in range(0, x.shape[0], batch_size):
        model.zero_grad(set_to_none=True)
        y = model(x[i:i + batch_size])
        (output(y) if output is not None else y).sum().backward()


def setups():
    torch.manual_seed(0)
    mlp = sine_mlp().eval()
    cnn = alignment_cnn().eval()
    return [
        dict(name="sine_mlp", model=mlp, output=None, batch=1024,
             data=lambda n: torch.rand(n, 1, generator=torch.Generator().manual_seed(n))),
        dict(name="cnn", model=cnn, output=centre_displacement, batch=64,
             data=lambda n: torch.randn(n, 4, 16, 16, generator=torch.Generator().manual_seed(n))),
    ]


def density_rows(sizes: list[int], generic_sizes: list[int]) -> list[dict]:
    rows = []
    for s in setups():
        model, output, batch = s["model"], s["output"], s["batch"]
        warm = s["data"](batch)
        plain_pass(model, warm, output, batch)
        sim.soft_density(model, warm, output=output, batch_size=batch)
        for n in sizes:
            x = s["data"](n)
            reps = 3 if n <= 512 else 2
            floors, times, mems = [], [], []
            for _ in range(reps):
                floors.append(timed(plain_pass, model, x, output, batch)[0])
                with PeakRSS() as mem:
                    times.append(timed(sim.soft_density, model, x, output=output, batch_size=batch)[0])
                mems.append(mem.extra_mb)
            floors.append(timed(plain_pass, model, x, output, batch)[0])
            row = dict(model=s["name"], params=num_params(model), N=n, batch=batch,
                       floor_s=floors, soft_density_s=times, peak_extra_mb=max(mems),
                       ratio_min=min(times) / min(floors),
                       ratio_median=statistics.median(times) / statistics.median(floors))
            if n in generic_sizes:
                row["generic_s"] = timed(sim.soft_density, model, x, output=output,
                                         batch_size=batch, fused=False)[0]
                row["generic_ratio"] = row["generic_s"] / statistics.median(floors)
            print(row, flush=True)
            rows.append(row)
    return rows


def trained_sine_mlp(f: int = 4, steps: int = 600) -> torch.nn.Module:
    """Neighbours of an untrained net are not meaningful: fit sin(2πfx) briefly first."""
    torch.manual_seed(0)
    model = sine_mlp()
    x = torch.rand(2048, 1)
    y = torch.sin(2 * torch.pi * f * x)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        opt.zero_grad()
        (model(x) - y).square().mean().backward()
        opt.step()
    return model.eval()


TOPK_NOTE = ("Top-k: exact (blocked by query blocks) and approx (one Jacobian pass: short-list sketch + "
             "re-ranking from a second count sketch of each whitened Jacobian row, rerank='sketch', m2 = "
             "rerank_dim chosen to fit block_bytes for all N samples) within the same block_bytes budget, "
             "1 thread, same run. Rows with exact_extrapolated=true ran "
             "exact on exact_queries_measured random queries (one query block) against all N references "
             "and report exact_s = exact_measured_s * N / exact_queries_measured (linear in the number of "
             "queries); their recall is over those queries.")


def displacement_patches(n: int, seed: int, size: int = 16, max_shift: float = 2.0):
    """Synthetic alignment patches: smooth random 2-channel texture (image) and the same texture
    shifted by a random sub-pixel (dx, dy) ∈ [−2, 2]² (map), 4 channels; target (dx, dy)."""
    gen = torch.Generator().manual_seed(seed)
    k = torch.exp(-torch.arange(-4, 5, dtype=torch.float32) ** 2 / (2 * 1.5 ** 2))
    k = k / k.sum()
    big = torch.randn(n * 2, 1, size + 12, size + 12, generator=gen)
    big = F.conv2d(F.conv2d(big, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1)).view(n, 2, size + 4, size + 4)
    big = big / big.flatten(1).std(1).view(-1, 1, 1, 1)
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * max_shift
    side = big.shape[-1]
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    base = torch.stack([xs, ys], -1) + (side - size) / 2

    def grid(offset):
        return (base + offset.view(-1, 1, 1, 2)) / (side - 1) * 2 - 1
    image = F.grid_sample(big, grid(torch.zeros(n, 2)), align_corners=True)
    shifted = F.grid_sample(big, grid(shift), align_corners=True)
    return torch.cat([image, shifted], 1), shift


def trained_cnn(steps: int = 300) -> tuple[torch.nn.Module, float]:
    """The alignment-sized CNN trained briefly to predict the centre displacement.

    Neighbours of an untrained CNN on white noise are degenerate (k^C = 0.95 ± 0.008 between
    all pairs: the 10th and the 40th neighbour differ by 0.0014), so retrieval is measured on
    a network that has learnt something. Returns the model and its held-out MSE.
    """
    torch.manual_seed(0)
    model = alignment_cnn()
    x, y = displacement_patches(4096, 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        i = torch.randint(0, x.shape[0], (64,))
        loss = (centre_displacement(model(x[i])) - y[i]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    xt, yt = displacement_patches(512, 99)
    with torch.no_grad():
        mse = (centre_displacement(model.eval()(xt)) - yt).square().mean().item()
    return model.eval(), mse


def topk_setups():
    mlp = trained_sine_mlp()
    cnn, mse = trained_cnn()
    return [
        dict(name="sine_mlp", model=mlp, output=None, chunk=128, sketch_dim=256, shortlist=40,
             data=lambda n: torch.rand(n, 1, generator=torch.Generator().manual_seed(n)),
             full_exact_up_to=8192, note="trained 600 full-batch Adam steps on sin(2π·4x)"),
        dict(name="cnn", model=cnn, output=centre_displacement, chunk=64, sketch_dim=1024, shortlist=30,
             data=lambda n: displacement_patches(n, n)[0], full_exact_up_to=512,
             note=f"trained 300 Adam steps (batch 64) to predict the centre displacement of synthetic "
                  f"shifted-texture patches; held-out MSE {mse:.3f} (target variance 1.33)"),
    ]


def recall_at(exact: torch.Tensor, approx: torch.Tensor) -> float:
    k = exact.shape[1]
    return sum(len(set(a) & set(b)) for a, b in zip(exact.tolist(), approx.tolist())) / (exact.shape[0] * k)


def topk_rows(sizes: list[int], k: int = 10, block_bytes: int = 1 << 30) -> list[dict]:
    """Exact (blocked) vs approximate (sketch short lists + sketch re-rank) top-k, same memory budget.

    Where exact over all N queries would take too long on this machine, it is run on one
    query block (the queries that fit in ``block_bytes``: a random subset) against all N
    references, exactly one block of the full blocked computation, and its time is
    extrapolated linearly in the number of queries (N / subset blocks).
    """
    rows = []
    for s in topk_setups():
        model, output, chunk = s["model"], s["output"], s["chunk"]
        p = num_params(model)
        sim.topk_neighbours(model, s["data"](64), k=k, output=output, chunk_size=chunk)  # warm-up
        for n in sizes:
            x = s["data"](n)
            stats: dict = {}
            with PeakRSS() as mem_a:
                t_approx, (_, approx) = timed(sim.topk_neighbours, model, x, k=k, output=output,
                                              method="approx", sketch_dim=s["sketch_dim"],
                                              shortlist=s["shortlist"], chunk_size=chunk,
                                              block_bytes=block_bytes, stats=stats)
            d = 2 if output is not None else 1
            if n <= s["full_exact_up_to"]:
                queries = torch.arange(n)
                with PeakRSS() as mem_e:
                    t_exact, (_, exact) = timed(sim.topk_neighbours, model, x, k=k, output=output,
                                                chunk_size=chunk, block_bytes=block_bytes)
                t_exact_full = t_exact
            else:
                per_block = max(1, block_bytes // (d * p * 4))
                queries = torch.randperm(n, generator=torch.Generator().manual_seed(1))[:per_block].sort().values
                with PeakRSS() as mem_e:
                    t_exact, (_, ex) = timed(sim.topk_neighbours, model, x[queries], reference=x, k=k + 1,
                                             output=output, exclude_self=False, chunk_size=chunk,
                                             block_bytes=block_bytes)
                exact = torch.stack([r[r != q][:k] for r, q in zip(ex, queries)])
                t_exact_full = t_exact * n / len(queries)
            row = dict(model=s["name"], params=p, d=d, N=n, k=k, sketch_dim=s["sketch_dim"],
                       shortlist=s["shortlist"], block_bytes=block_bytes, approx_s=t_approx,
                       exact_s=t_exact_full, exact_measured_s=t_exact,
                       exact_queries_measured=len(queries),
                       exact_extrapolated=len(queries) < n,
                       speedup=t_exact_full / t_approx, recall=recall_at(exact, approx[queries]),
                       approx_peak_extra_mb=mem_a.extra_mb, exact_peak_extra_mb=mem_e.extra_mb,
                       n_by_p_mb=n * d * p * 4 / 2 ** 20,
                       approx_jacobians_per_sample=stats["jacobians"] / n, approx_rounds=stats["rounds"],
                       cache_rows=stats["capacity"], rerank=stats["rerank"],
                       rerank_dim=stats.get("rerank_dim"),
                       rerank_mb=(n * d * stats["rerank_dim"] * 4 / 2 ** 20
                                  if stats["rerank"] == "sketch" else None),
                       model_note=s["note"])
            print(row, flush=True)
            rows.append(row)
    return rows


def plot(density: list[dict], topk: list[dict]) -> None:
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for name in sorted({r["model"] for r in density}):
        rs = [r for r in density if r["model"] == name]
        ns = [r["N"] for r in rs]
        line, = ax[0].plot(ns, [r["ratio_median"] for r in rs], "o-", label=f"{name} (p={rs[0]['params']:,}), median")
        ax[0].plot(ns, [r["ratio_min"] for r in rs], "x:", color=line.get_color(), label=f"{name}, min/min")
        ax[1].plot(ns, [r["peak_extra_mb"] for r in rs], "o-", label=name)
    ax[0].axhline(5, color="k", ls="--", lw=1, label="floor × 5")
    ax[0].set(xscale="log", xlabel="N", ylabel="soft_density time / plain fwd+bwd", ylim=(0, 8),
              title="soft_density cost in training passes")
    ax[1].set(xscale="log", xlabel="N", ylabel="peak RSS above start (MB)", ylim=(0, None),
              title="memory during soft_density (an N×p matrix: 15 GB at N=8192)")
    for name in sorted({r["model"] for r in topk}):
        rs = [r for r in topk if r["model"] == name]
        ns = [r["N"] for r in rs]
        line, = ax[2].plot(ns, [r["exact_s"] for r in rs], "o-", label=f"{name}: exact blocked (hollow: extrapolated)")
        ax[2].plot(ns, [r["approx_s"] for r in rs], "s--", color=line.get_color(),
                   label=f"{name}: approx (one pass, sketch re-rank)")
        ext = [r for r in rs if r.get("exact_extrapolated")]
        ax[2].plot([r["N"] for r in ext], [r["exact_s"] for r in ext], "o", mfc="white", color=line.get_color())
        for r in rs:
            ax[2].annotate(f"R={r['recall']:.2f} ×{r['speedup']:.1f}", (r["N"], r["approx_s"]), fontsize=7)
    ax[2].set(xscale="log", yscale="log", xlabel="N", ylabel="seconds (1 thread)",
              title="top-10 neighbours, same 1 GiB Jacobian budget")
    for a in ax:
        a.legend(fontsize=8)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "speed.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 512 only (a smoke run)")
    parser.add_argument("--replot", action="store_true", help="redraw the PNG from the JSON")
    parser.add_argument("--topk-only", action="store_true",
                        help="rerun only the top-k part; keep the soft_density rows of the JSON")
    args = parser.parse_args()
    if args.replot:
        payload = json.loads((RESULTS / "speed.json").read_text())
        plot(payload["density"], payload["topk"])
        return
    n_threads = threads()
    sizes = [512] if args.quick else [512, 2048, 8192]
    if args.topk_only:
        old = json.loads((RESULTS / "speed.json").read_text())
        density = old["density"]
    else:
        density = density_rows(sizes, generic_sizes=[512])
    topk = topk_rows(sizes)
    payload = dict(threads=n_threads, torch=torch.__version__, density=density, topk=topk,
                   topk_note=TOPK_NOTE,
                   floors_met=all(r["ratio_min"] <= 5 for r in density),
                   topk_met=all(r["recall"] >= 0.9 and r["speedup"] >= 10 for r in topk if r["N"] == 8192))
    path = write_json("speed", payload)
    plot(density, topk)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
