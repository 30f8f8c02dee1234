"""Similarity enforcement on scikit-learn's bundled digits (an offline stand-in for MNIST).

An MLP is trained with cross-entropy, with and without the paper's mini-batch group term
λ · n_B‖μ₁ − μ₂‖² / (‖μ₁‖‖μ₂‖): at each step one class c is drawn, two mini-batches of n_B
training samples of class c give μ₁, μ₂ (mean normalized gradients of f^c = −log p(c)), and
the term pulls them together (double backpropagation). Validation accuracy is recorded
against steps for several seeds; the report gives mean and spread, whatever the effect is.

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


def run(seed: int, lam: float) -> dict:
    xtr, ytr, xva, yva = data(seed)
    torch.manual_seed(seed)
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1000 + seed)
    by_class = [torch.nonzero(ytr == c)[:, 0] for c in range(10)]
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


def main() -> None:
    threads()
    runs = []
    for lam in LAMBDAS:
        for seed in SEEDS:
            r = run(seed, lam)
            print(f"lambda={lam} seed={seed}: acc@50={r['val_acc'][5]:.3f} acc@100={r['val_acc'][10]:.3f} "
                  f"final={r['val_acc'][-1]:.3f} within-class kC={r['within_class_kc']:.3f} "
                  f"({r['seconds']:.1f}s)", flush=True)
            runs.append(r)
    steps = runs[0]["steps"]
    summary = {}
    for lam in LAMBDAS:
        A = np.array([r["val_acc"] for r in runs if r["lam"] == lam])
        summary[str(lam)] = dict(
            mean=A.mean(0).tolist(), std=A.std(0, ddof=1).tolist(),
            at_step={str(s): [float(A[:, i].mean()), float(A[:, i].std(ddof=1))]
                     for i, s in enumerate(steps) if s in (20, 50, 100, 200, STEPS)},
            area_under_curve=[float(A.mean(1).mean()), float(A.mean(1).std(ddof=1))],
            within_class_kc=[float(np.mean([r["within_class_kc"] for r in runs if r["lam"] == lam])),
                             float(np.std([r["within_class_kc"] for r in runs if r["lam"] == lam], ddof=1))],
            seconds_per_run=float(np.mean([r["seconds"] for r in runs if r["lam"] == lam])))
    payload = dict(n_train=N_TRAIN, n_val=1797 - N_TRAIN, steps=STEPS, batch=BATCH, n_B=N_B,
                   seeds=SEEDS, lambdas=LAMBDAS, summary=summary, runs=runs)
    path = write_json("digits_enforcement", payload)
    fig, ax = plt.subplots(1, 1, figsize=(7, 4.5))
    for lam in LAMBDAS:
        m, s = np.array(summary[str(lam)]["mean"]), np.array(summary[str(lam)]["std"])
        label = "cross-entropy only" if lam == 0 else f"+ {lam:g} × group similarity term"
        ax.plot(steps, m, label=label)
        ax.fill_between(steps, m - s, m + s, alpha=0.2)
    ax.set(xlabel="training step", ylabel="validation accuracy",
           title=f"digits, {N_TRAIN} training samples, mean ± std over {len(SEEDS)} seeds")
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
