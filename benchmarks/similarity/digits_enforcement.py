"""Similarity enforcement on scikit-learn's bundled digits (an offline stand-in for MNIST).

An MLP is trained with cross-entropy, with and without the mini-batch group term of Charpiat et
al. NeurIPS 2019 (docs/references.md), λ · n_B‖μ₁ − μ₂‖² / (‖μ₁‖‖μ₂‖): at each step one class c
is drawn, two mini-batches of n_B training samples of class c give μ₁, μ₂ (mean normalized
gradients of f^c = −log p(c)), and the term pulls them together (double backpropagation). A
second protocol follows the authors' MNIST script (netsimilarity's nabla_sim_mnist): one
same-class pair per step, cross-entropy on both plus λ·(−k^C) of the pair. Validation accuracy
is recorded against steps for several seeds; the report gives mean and spread, whatever the
effect is.

    python -m benchmarks.similarity.digits_enforcement

Writes benchmarks/results/similarity/digits_enforcement.{json,png}.
"""

from __future__ import annotations

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from torch import nn  # noqa: E402

import similarity as sim  # noqa: E402

from .common import RESULTS, threads, write_json  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]
LAMBDAS = [0.0, 0.1, 1.0]
STEPS = 300
EVAL_EVERY = 10
BATCH = 32
N_B = 8
N_TRAIN = 500


def data(seed: int):
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    tr, va = perm[:N_TRAIN], perm[N_TRAIN:]
    return x[tr], y[tr], x[va], y[va]


def model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10))


def class_output(c: int):
    """f^c = −log p(c | x): the paper's scalar output for one class (d = 1)."""
    return lambda logits: -F.log_softmax(logits, dim=1)[:, c]


def within_class_similarity(net: nn.Module, x: torch.Tensor, y: torch.Tensor, per_class: int = 20) -> float:
    """Mean k^C between validation samples of the same class (f^c of that class)."""
    vals = [sim.group_mean_similarity(net, x[y == c][:per_class], class_output(c)).item() for c in range(10)]
    return float(np.mean(vals))


def start(seed: int, sampling_seed: int):
    """Split, network, optimizer, sampling generator and per-class indices for one run."""
    split = data(seed)
    torch.manual_seed(seed)
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(sampling_seed)
    by_class = [torch.nonzero(split[1] == c)[:, 0] for c in range(10)]
    return split, net, opt, gen, by_class


def run(seed: int, lam: float) -> dict:
    (xtr, ytr, xva, yva), net, opt, gen, by_class = start(seed, 1000 + seed)
    steps, acc, sim_term = [], [], []
    t0 = time.perf_counter()
    for step in range(STEPS + 1):
        if step % EVAL_EVERY == 0:
            net.eval()
            with torch.no_grad():
                acc.append((net(xva).argmax(1) == yva).float().mean().item())
            steps.append(step)
            net.train()
        if step == STEPS:
            break
        idx = torch.randint(0, N_TRAIN, (BATCH,), generator=gen)
        loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
        c = int(torch.randint(0, 10, (1,), generator=gen))
        pick = by_class[c][torch.randperm(len(by_class[c]), generator=gen)[:2 * N_B]]
        if lam > 0:
            term = sim.group_similarity_loss(net, xtr[pick[:N_B]], xtr[pick[N_B:]], class_output(c))
            loss = loss + lam * term
            sim_term.append(term.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return dict(seed=seed, lam=lam, steps=steps, val_acc=acc, seconds=time.perf_counter() - t0,
                within_class_kc=within_class_similarity(net, xva, yva),
                mean_group_term=float(np.mean(sim_term)) if sim_term else None)


PAIR_STEPS = 512
PAIR_EVAL_EVERY = 16
PAIR_SEEDS = list(range(10))
PAIR_LAMBDAS = [0.0, 1.0]


def run_pairs(seed: int, lam: float) -> dict:
    """The authors' MNIST protocol: one same-class pair per step, CE on both + λ·(−k^C)."""
    (xtr, ytr, xva, yva), net, opt, gen, by_class = start(seed, 2000 + seed)
    steps, acc = [], []
    for step in range(PAIR_STEPS + 1):
        if step % PAIR_EVAL_EVERY == 0:
            with torch.no_grad():
                acc.append((net(xva).argmax(1) == yva).float().mean().item())
            steps.append(step)
        if step == PAIR_STEPS:
            break
        c = int(torch.randint(0, 10, (1,), generator=gen))
        pick = by_class[c][torch.randperm(len(by_class[c]), generator=gen)[:2]]
        loss = F.cross_entropy(net(xtr[pick]), ytr[pick])
        if lam > 0:
            loss = loss + lam * sim.pair_similarity_loss(net, xtr[pick[:1]], xtr[pick[1:]], class_output(c))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return dict(seed=seed, lam=lam, steps=steps, val_acc=acc,
                within_class_kc=within_class_similarity(net, xva, yva))


def summarize(runs: list[dict], lambdas: list[float], marks: tuple[int, ...], last: int) -> dict:
    steps = runs[0]["steps"]
    out = {}
    for lam in lambdas:
        A = np.array([r["val_acc"] for r in runs if r["lam"] == lam])
        kc = [r["within_class_kc"] for r in runs if r["lam"] == lam]
        out[str(lam)] = dict(
            mean=A.mean(0).tolist(), std=A.std(0, ddof=1).tolist(),
            at_step={str(s): [float(A[:, i].mean()), float(A[:, i].std(ddof=1))]
                     for i, s in enumerate(steps) if s in marks or s == last},
            area_under_curve=[float(A.mean(1).mean()), float(A.mean(1).std(ddof=1))],
            within_class_kc=[float(np.mean(kc)), float(np.std(kc, ddof=1))])
    return out


def main() -> None:
    threads()
    pair_runs = [run_pairs(seed, lam) for lam in PAIR_LAMBDAS for seed in PAIR_SEEDS]
    pair_summary = summarize(pair_runs, PAIR_LAMBDAS, (64, 128, 256), PAIR_STEPS)
    for lam in PAIR_LAMBDAS:
        s = pair_summary[str(lam)]
        print(f"pairs, lambda={lam}: " + ", ".join(f"step {k}: {v[0]:.3f}±{v[1]:.3f}" for k, v in s["at_step"].items())
              + f"; AUC {s['area_under_curve'][0]:.3f}±{s['area_under_curve'][1]:.3f}", flush=True)
    runs = []
    for lam in LAMBDAS:
        for seed in SEEDS:
            r = run(seed, lam)
            print(f"lambda={lam} seed={seed}: acc@50={r['val_acc'][5]:.3f} acc@100={r['val_acc'][10]:.3f} "
                  f"final={r['val_acc'][-1]:.3f} within-class kC={r['within_class_kc']:.3f} "
                  f"({r['seconds']:.1f}s)", flush=True)
            runs.append(r)
    steps = runs[0]["steps"]
    summary = summarize(runs, LAMBDAS, (20, 50, 100, 200), STEPS)
    payload = dict(n_train=N_TRAIN, n_val=1797 - N_TRAIN,
                   group_protocol=dict(steps=STEPS, batch=BATCH, n_B=N_B, seeds=SEEDS, lambdas=LAMBDAS,
                                       summary=summary, runs=runs),
                   pair_protocol=dict(steps=PAIR_STEPS, seeds=PAIR_SEEDS, lambdas=PAIR_LAMBDAS,
                                      summary=pair_summary, runs=pair_runs))
    path = write_json("digits_enforcement", payload)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    panels = [(axes[0], summary, steps, LAMBDAS,
               f"batch {BATCH} + group term (n_B = {N_B}), {len(SEEDS)} seeds"),
              (axes[1], pair_summary, pair_runs[0]["steps"], PAIR_LAMBDAS,
               f"one same-class pair per step + pair term, {len(PAIR_SEEDS)} seeds")]
    for ax, summ, st, lams, title in panels:
        for lam in lams:
            m, sd = np.array(summ[str(lam)]["mean"]), np.array(summ[str(lam)]["std"])
            label = "cross-entropy only" if lam == 0 else f"+ {lam:g} × similarity term"
            ax.plot(st, m, label=label)
            ax.fill_between(st, m - sd, m + sd, alpha=0.2)
        ax.set(xlabel="training step", ylabel="validation accuracy (mean ± std)", title=title)
        ax.legend()
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "digits_enforcement.png", dpi=110)
    for lam in LAMBDAS:
        s = summary[str(lam)]
        print(f"lambda={lam}: " + ", ".join(f"step {k}: {v[0]:.3f}±{v[1]:.3f}" for k, v in s["at_step"].items())
              + f"; AUC {s['area_under_curve'][0]:.3f}±{s['area_under_curve'][1]:.3f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
