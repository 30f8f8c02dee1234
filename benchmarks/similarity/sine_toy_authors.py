"""The sine toy of Charpiat et al. NeurIPS 2019 (Fig. 4) with the authors' training protocol.

Same data and network as :mod:`benchmarks.similarity.sine_toy` (α ∈ [0, 1] fed as
(cos 2πα, sin 2πα), y = sin(2πfα), N = 2048, the ReLU MLP ``Simple1DInputNet`` with 6 hidden
layers of 64), trained as in the authors' code (Lydorn/netsimilarity): L1 loss, Adam at
lr 10⁻⁴, shuffled mini-batches of 64, 5000 epochs (160,000 steps), several runs, the median
over runs. The networks of every (frequency, seed) pair are trained together as one stacked
ensemble (batched matrix products; Adam is elementwise, so each member follows exactly the
updates it would get alone). At the listed epochs the neighbour counts of every member are
measured on its training set (N_S, N_τ; self included, as in the authors' counts) and the
log-log slope of the median-over-runs mean count against f is fitted (the paper: about −1).

    python -m benchmarks.similarity.sine_toy_authors [--epochs 5000] [--seeds 1] [--state runs/sine_toy_authors.pt]

Writes benchmarks/results/similarity/sine_toy_authors[_TAG].{json,png}; one torch thread.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

import similarity as sim  # noqa: E402

from .common import RESULTS, threads, write_json  # noqa: E402
from .sine_toy import N, sine_net  # noqa: E402

TAUS = [0.5, 0.75, 0.9, 0.99]
BATCH = 64


def circle_data(n: int, f: float, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """α sorted uniform draws on [0, 1], inputs (cos 2πα, sin 2πα), targets sin(2πfα)."""
    gen = torch.Generator().manual_seed(seed)
    alpha = torch.rand(n, generator=gen).sort().values
    x = torch.stack([torch.cos(2 * math.pi * alpha), torch.sin(2 * math.pi * alpha)], 1)
    return alpha, x, torch.sin(2 * math.pi * f * alpha)[:, None]


class Ensemble:
    """K copies of ``sine_net`` as stacked weights: one batched forward for all members."""

    def __init__(self, nets: list[nn.Sequential]):
        linears = [[m for m in net if isinstance(m, nn.Linear)] for net in nets]
        self.weights = [torch.stack([ls[i].weight.detach().T for ls in linears]).requires_grad_()
                        for i in range(len(linears[0]))]  # (K, in, out)
        self.biases = [torch.stack([ls[i].bias.detach()[None] for ls in linears]).requires_grad_()
                       for i in range(len(linears[0]))]  # (K, 1, out)

    def parameters(self) -> list[Tensor]:
        return self.weights + self.biases

    def __call__(self, x: Tensor) -> Tensor:
        """(K, B, 2) → (K, B, 1)."""
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = torch.relu(h)
        return h

    def member(self, k: int, width: int, depth: int) -> nn.Sequential:
        """Member ``k`` as a plain ``sine_net`` (for the similarity library)."""
        net = sine_net(width, depth)
        linears = [m for m in net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for lin, w, b in zip(linears, self.weights, self.biases):
                lin.weight.copy_(w[k].T)
                lin.bias.copy_(b[k, 0])
        return net.eval()


def measure(net: nn.Module, x: Tensor) -> dict[str, float]:
    """Mean neighbour counts of the training set against itself."""
    out = {"N_S": float(sim.soft_density(net, x).mean())}
    counts = sim.threshold_density(net, x, TAUS).to(torch.float64).mean(1)
    out.update({f"N_{t:g}": float(c) for t, c in zip(TAUS, counts)})
    return out


def circular_gap(alpha: Tensor) -> Tensor:
    """|α − α'| on the circle, (N, N), in [0, ½]."""
    d = (alpha[:, None] - alpha[None]).abs()
    return torch.minimum(d, 1 - d)


def local_neighbourhood(net: nn.Module, x: Tensor, alpha: Tensor, far: float = 0.25) -> dict[str, float]:
    """Split N_S into a floor every input shares and a local peak around each input.

    ``floor``: median k^C over pairs farther apart than ``far`` on the circle; ``N_S_local`` =
    mean over x of Σ_x' (k^C(x,x') − floor) (N_S minus what the floor gives, N·floor);
    ``half_width``: the gap |α − α'| at which the mean k^C profile falls halfway from 1 to the floor.
    """
    k = sim.similarity(net, x).double()
    gap = circular_gap(alpha.double())
    floor = float(k[gap > far].median())
    edges = torch.linspace(0, 0.5, 201, dtype=torch.float64)
    which = torch.bucketize(gap.flatten(), edges).clamp(1, 200) - 1
    prof = torch.zeros(200, dtype=torch.float64).scatter_add_(0, which, k.flatten())
    prof /= torch.bincount(which, minlength=200).clamp(min=1)
    centres = (edges[1:] + edges[:-1]) / 2
    below = torch.nonzero(prof < (1 + floor) / 2)
    half = float(centres[below[0, 0]]) if len(below) else float("nan")
    return {"floor": floor, "N_S": float(k.sum(1).mean()), "N_S_local": float((k - floor).sum(1).mean()),
            "half_width": half}


def analyse_state(state_path: Path, freqs: list[float], seeds: int, width: int, depth: int) -> dict:
    """:func:`local_neighbourhood` of every member of a saved ensemble, and slopes against f."""
    st = torch.load(state_path, weights_only=True)
    members = [(f, s) for f in freqs for s in range(seeds)]
    torch.manual_seed(0)
    ens = Ensemble([sine_net(width, depth) for _ in members])
    with torch.no_grad():
        for p, v in zip(ens.parameters(), st["params"]):
            p.copy_(v)
    out = {}
    for k, (f, s) in enumerate(members):
        alpha, x, _ = circle_data(N, f, s)
        out[(f, s)] = local_neighbourhood(ens.member(k, width, depth), x, alpha)
        print(f, s, out[(f, s)], flush=True)
    names = list(next(iter(out.values())))
    med = {n: [float(np.median([out[(f, s)][n] for s in range(seeds)])) for f in freqs] for n in names}
    return {"epoch": int(st["epoch"]), "median_over_runs": med,
            "slopes": {n: slope(freqs, med[n]) for n in ("N_S", "N_S_local", "half_width")}}


def slope(freqs: list[float], counts: list[float]) -> float:
    return float(np.polyfit(np.log(freqs), np.log(counts), 1)[0])


def run(freqs: list[float], seeds: int, epochs: int, checkpoints: list[int], lr: float,
        width: int, depth: int, loss_name: str, state_path=None, on_checkpoint=None) -> dict:
    """Train the ensemble; measure at each checkpoint epoch. ``state_path``: weights, optimizer and
    shuffling state saved there at each checkpoint and resumed from when present (a kill loses at
    most one checkpoint interval); ``on_checkpoint(history)`` is called after each measurement."""
    members = [(f, s) for f in freqs for s in range(seeds)]
    data = {m: circle_data(N, m[0], m[1]) for m in members}
    nets = []
    for f, s in members:
        torch.manual_seed(s)
        nets.append(sine_net(width, depth))
    ens = Ensemble(nets)
    X = torch.stack([data[m][1] for m in members])  # (K, N, 2)
    Y = torch.stack([data[m][2] for m in members])  # (K, N, 1)
    K = len(members)
    opt = torch.optim.Adam(ens.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(12345)
    rows = torch.arange(K)[:, None]
    history: dict[int, dict] = {}
    start, spent = 1, 0.0
    if state_path is not None and state_path.exists():
        st = torch.load(state_path, weights_only=True)
        with torch.no_grad():
            for p, v in zip(ens.parameters(), st["params"]):
                p.copy_(v)
        opt.load_state_dict(st["opt"])
        gen.set_state(st["gen"])
        start, spent = int(st["epoch"]) + 1, float(st["seconds"])
        history = {int(k): v for k, v in json.loads(st["history"]).items()}
        print(f"resumed at epoch {start - 1}", flush=True)
    t0 = time.perf_counter() - spent
    for epoch in range(start, epochs + 1):
        perm = torch.rand(K, N, generator=gen).argsort(1)
        for i in range(0, N, BATCH):
            idx = perm[:, i:i + BATCH]
            err = ens(X[rows, idx]) - Y[rows, idx]
            per_member = err.abs().mean((1, 2)) if loss_name == "l1" else err.square().mean((1, 2))
            opt.zero_grad(set_to_none=True)
            per_member.sum().backward()
            opt.step()
        if epoch in checkpoints:
            with torch.no_grad():
                mse = (ens(X) - Y).square().mean((1, 2))
            per_member_counts = {}
            for k, m in enumerate(members):
                per_member_counts[m] = measure(ens.member(k, width, depth), X[k])
            names = list(next(iter(per_member_counts.values())))
            med = {name: [float(np.median([per_member_counts[(f, s)][name] for s in range(seeds)]))
                          for f in freqs] for name in names}
            history[epoch] = {
                "seconds": round(time.perf_counter() - t0, 1),
                "mse_median": [float(np.median([mse[members.index((f, s))] for s in range(seeds)]))
                               for f in freqs],
                "median_mean_count": med,
                "per_run_mean_count": {name: [[per_member_counts[(f, s)][name] for s in range(seeds)]
                                              for f in freqs] for name in names},
                "slopes": {name: slope(freqs, med[name]) for name in names},
                "slopes_per_run": {name: [slope(freqs, [per_member_counts[(f, s)][name] for f in freqs])
                                          for s in range(seeds)] for name in names},
            }
            h = history[epoch]
            print(f"epoch {epoch} ({h['seconds']:.0f} s): mse {['%.1e' % v for v in h['mse_median']]}; "
                  + ", ".join(f"{k} {v:+.2f}" for k, v in h["slopes"].items()), flush=True)
            if state_path is not None:
                tmp = state_path.with_suffix(".part")
                torch.save({"params": [p.detach() for p in ens.parameters()], "opt": opt.state_dict(),
                            "gen": gen.get_state(), "epoch": epoch, "seconds": time.perf_counter() - t0,
                            "history": json.dumps(history)}, tmp)
                tmp.replace(state_path)
            if on_checkpoint is not None:
                on_checkpoint(history)
    return history


def plot(payload: dict, path) -> None:
    freqs = payload["freqs"]
    hist = payload["history"]
    last = hist[max(hist, key=int)]
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, counts in last["median_mean_count"].items():
        ax[0].plot(freqs, counts, "o-", label=f"{name}: slope {last['slopes'][name]:+.2f}")
    ref = np.array(freqs, float)
    ns0 = last["median_mean_count"]["N_S"][0]
    ax[0].plot(ref, ns0 * ref[0] / ref, "k--", lw=1, label="∝ 1/f (paper)")
    ax[0].set(xscale="log", yscale="log", xlabel="frequency f", ylabel="mean neighbour count (median of runs)",
              title=f"{payload['epochs']} epochs, {payload['seeds']} run{'s' if payload['seeds'] > 1 else ''}, "
                    f"N = {payload['N']}, lr {payload['lr']:g}")
    epochs = sorted(int(e) for e in hist)
    for name in last["slopes"]:
        ax[1].plot(epochs, [hist[e]["slopes"][name] for e in epochs], "o-", label=name)
    ax[1].axhline(-1, color="k", ls="--", lw=1)
    ax[1].set(xscale="log", xlabel="epochs", ylabel="log-log slope", title="slope against training length")
    ax[1].set_xticks(epochs, [str(e) for e in epochs], minor=False)
    ax[1].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    for a in ax:
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5000)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--freqs", type=float, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--checkpoints", type=int, nargs="+", default=[300, 1000, 2500, 5000])
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--loss", choices=["l1", "mse"], default="l1")
    ap.add_argument("--tag", default="", help="suffix of the result files (variants)")
    ap.add_argument("--replot", action="store_true", help="redraw the PNG from the JSON")
    ap.add_argument("--analyse", action="store_true",
                    help="split N_S of the saved --state into floor and local peak (adds to the JSON)")
    ap.add_argument("--state", default="", help="resumable training state (e.g. runs/sine_toy_authors.pt)")
    args = ap.parse_args()
    threads()
    checkpoints = sorted({c for c in args.checkpoints if c <= args.epochs} | {args.epochs})
    name = "sine_toy_authors" + (f"_{args.tag}" if args.tag else "")

    def publish(history: dict) -> None:
        """JSON + PNG of every epoch measured so far (the last one is the headline)."""
        last = max(history)
        payload = dict(N=N, freqs=args.freqs, seeds=args.seeds, epochs=last, epochs_planned=args.epochs,
                       batch=BATCH, lr=args.lr, loss=args.loss, width=args.width, depth=args.depth,
                       optimizer="Adam", paper_slope=-1.0, threads=torch.get_num_threads(),
                       history={str(k): v for k, v in sorted(history.items())},
                       seconds=history[last]["seconds"])
        path = write_json(name, payload)
        payload["history"] = {int(k): v for k, v in payload["history"].items()}
        plot(payload, RESULTS / f"{name}.png")
        print(f"wrote {path}", flush=True)

    state = Path(args.state) if args.state else None
    if args.analyse:
        path = RESULTS / f"{name}.json"
        payload = json.loads(path.read_text())
        payload["local_neighbourhood"] = analyse_state(state, args.freqs, args.seeds, args.width, args.depth)
        path.write_text(json.dumps(payload, indent=2) + "\n")
        print(json.dumps(payload["local_neighbourhood"]["slopes"]), f"wrote {path}")
        return
    if args.replot:
        payload = json.loads((RESULTS / f"{name}.json").read_text())
        payload["history"] = {int(k): v for k, v in payload["history"].items()}
        plot(payload, RESULTS / f"{name}.png")
        return
    run(args.freqs, args.seeds, args.epochs, checkpoints, args.lr, args.width, args.depth, args.loss,
        state_path=state, on_checkpoint=publish)


if __name__ == "__main__":
    main()
