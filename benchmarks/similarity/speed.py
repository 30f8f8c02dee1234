"""Speed and memory of the similarity library against a plain training pass.

For the sine MLP (d = 1) and a CNN of the alignment network's size (d = 2, p ≈ 2.3·10⁵),
N ∈ {512, 2048, 8192}: time of ``soft_density`` end to end divided by the floor (one plain
batched forward + backward pass over the same N samples, same batch size, same run,
measured before and after), and the peak resident memory above the start of the call.
Then exact vs approximate top-10 neighbours: recall and speed-up.

    python -m benchmarks.similarity.speed [--quick]

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


def topk_rows(sizes: list[int], k: int = 10) -> list[dict]:
    rows = []
    s = setups()[0]
    model = trained_sine_mlp()
    for n in sizes:
        x = s["data"](n)
        t_exact, (_, exact) = timed(sim.topk_neighbours, model, x, k=k, chunk_size=128)
        t_approx, (_, approx) = timed(sim.topk_neighbours, model, x, k=k, method="approx",
                                      sketch_dim=256, shortlist=4 * k, chunk_size=128)
        recall = sum(len(set(a) & set(b)) for a, b in zip(exact.tolist(), approx.tolist())) / (n * k)
        row = dict(model=s["name"], params=num_params(model), N=n, k=k, exact_s=t_exact,
                   approx_s=t_approx, speedup=t_exact / t_approx, recall=recall,
                   sketch_dim=256, shortlist=4 * k)
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
    ns = [r["N"] for r in topk]
    ax[2].plot(ns, [r["exact_s"] for r in topk], "o-", label="exact pairwise")
    ax[2].plot(ns, [r["approx_s"] for r in topk], "o-", label="sketch + exact re-rank")
    for r in topk:
        ax[2].annotate(f"recall {r['recall']:.2f}, ×{r['speedup']:.0f}", (r["N"], r["approx_s"]), fontsize=8)
    ax[2].set(xscale="log", yscale="log", xlabel="N", ylabel="seconds", title="top-10 neighbours (sine MLP)")
    for a in ax:
        a.legend(fontsize=8)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "speed.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 512 only (a smoke run)")
    parser.add_argument("--replot", action="store_true", help="redraw the PNG from the JSON")
    args = parser.parse_args()
    if args.replot:
        payload = json.loads((RESULTS / "speed.json").read_text())
        plot(payload["density"], payload["topk"])
        return
    n_threads = threads()
    sizes = [512] if args.quick else [512, 2048, 8192]
    density = density_rows(sizes, generic_sizes=[512])
    topk = topk_rows(sizes)
    payload = dict(threads=n_threads, torch=torch.__version__, density=density, topk=topk,
                   floors_met=all(r["ratio_min"] <= 5 for r in density),
                   topk_met=all(r["recall"] >= 0.9 and r["speedup"] >= 10 for r in topk if r["N"] == 8192))
    path = write_json("speed", payload)
    plot(density, topk)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
