"""The sine toy of Charpiat et al. NeurIPS 2019 (docs/references.md): the number of neighbours
falls like 1/f as the frequency f grows.

For f ∈ {1, 2, 4, 8, 16}, a small MLP learns y = sin(2πfα) from N = 2048 samples α ∈ [0, 1];
then every density estimator of the library is computed on the training set and the
log-log slope of the mean neighbour count against f is fitted (the paper: about −1).

    python -m benchmarks.similarity.sine_toy

Writes benchmarks/results/similarity/sine_toy.{json,png}.
"""

from __future__ import annotations

import math
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import similarity as sim  # noqa: E402

from .common import RESULTS, num_params, threads, write_json  # noqa: E402

N = 2048
FREQS = [1, 2, 4, 8, 16]
TAUS = [0.5, 0.75, 0.9]
ALPHAS = [1.0, 2.0]
STEPS = 4000


def sine_net(width: int = 64, depth: int = 6) -> torch.nn.Sequential:
    """The authors' toy network (netsimilarity's Simple1DInputNet): ReLU, 6 hidden layers of 64."""
    layers: list[torch.nn.Module] = [torch.nn.Linear(2, width), torch.nn.ReLU()]
    for _ in range(depth - 1):
        layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))


def train(f: int, seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, float]:
    """Full-batch Adam with cosine decay on y = sin(2πfα).

    As in the authors' code, α ∈ [0, 1] is fed as the point (cos 2πα, sin 2πα) on the circle,
    so the input space has no boundary and every α has the same surroundings.
    """
    gen = torch.Generator().manual_seed(seed)
    alpha = torch.rand(N, generator=gen).sort().values
    inputs = torch.stack([torch.cos(2 * math.pi * alpha), torch.sin(2 * math.pi * alpha)], 1)
    y = torch.sin(2 * math.pi * f * alpha)[:, None]
    torch.manual_seed(seed)
    model = sine_net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, STEPS)
    for _ in range(STEPS):
        opt.zero_grad()
        loss = (model(inputs) - y).square().mean()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        mse = (model(inputs) - y).square().mean().item()
    return model, inputs, alpha, mse


def estimators(model: torch.nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-sample neighbour counts by every estimator, over the training set itself."""
    out = {"N_S (soft)": sim.soft_density(model, x).numpy()}
    counts = sim.threshold_density(model, x, TAUS).numpy()
    for tau, c in zip(TAUS, counts):
        out[f"N_tau, tau={tau}"] = c.astype(float)
    for alpha in ALPHAS:
        out[f"N_alpha+, alpha={alpha:g}"] = sim.positive_density(model, x, alpha).numpy()
    factor = sim.denoising_factor(model, x).numpy()
    out["1/denoising_factor^2 (effective)"] = 1.0 / factor ** 2
    return out


def sketch_errors(model: torch.nn.Module, x: torch.Tensor, exact: np.ndarray) -> dict[str, float]:
    """Relative error of the sketched denoising factor against the exact one, per sketch size."""
    errors = {}
    for m in (256, 1024, 4096):
        approx = sim.denoising_factor(model, x, method="sketch", sketch_dim=m).numpy()
        rel = np.abs(approx - exact) / exact
        errors[str(m)] = dict(median=float(np.median(rel)), p95=float(np.quantile(rel, 0.95)),
                              max=float(rel.max()))
    return errors


def main() -> None:
    threads()
    t0 = time.perf_counter()
    per_f: dict[int, dict] = {}
    curves = {}
    for f in FREQS:
        model, x, alpha, mse = train(f)
        est = estimators(model, x)
        exact_factor = 1.0 / np.sqrt(est["1/denoising_factor^2 (effective)"])
        per_f[f] = dict(mse=mse, params=num_params(model),
                        denoising_sketch_relative_error=sketch_errors(model, x, exact_factor),
                        mean={k: float(v.mean()) for k, v in est.items()},
                        median={k: float(np.median(v)) for k, v in est.items()})
        with torch.no_grad():
            curves[f] = (alpha.numpy(), model(x)[:, 0].numpy(), est["N_S (soft)"])
        print(f"f={f}: mse={mse:.2e} " + ", ".join(f"{k}={v:.1f}" for k, v in per_f[f]["mean"].items()),
              flush=True)
    logf = np.log(FREQS)
    slopes = {}
    for name in per_f[FREQS[0]]["mean"]:
        means = np.array([per_f[f]["mean"][name] for f in FREQS])
        medians = np.array([per_f[f]["median"][name] for f in FREQS])
        slopes[name] = dict(mean=float(np.polyfit(logf, np.log(means), 1)[0]),
                            median=float(np.polyfit(logf, np.log(np.maximum(medians, 1e-9)), 1)[0]))
    payload = dict(N=N, freqs=FREQS, steps=STEPS, per_frequency=per_f, slopes=slopes,
                   paper_slope=-1.0, seconds=time.perf_counter() - t0)
    path = write_json("sine_toy", payload)
    plot(per_f, slopes, curves)
    for name, s in slopes.items():
        print(f"slope {name}: mean {s['mean']:+.2f}, median {s['median']:+.2f}")
    print(f"wrote {path}")


def plot(per_f: dict, slopes: dict, curves: dict) -> None:
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.5))
    for f, (x, pred, ns) in curves.items():
        ax[0].plot(x, pred, lw=1, label=f"f={f}")
        ax[2].plot(x, ns, lw=1, label=f"f={f}")
    ax[0].set(xlabel="α (input: cos 2πα, sin 2πα)", ylabel="prediction", title="learned sin(2πfα)")
    ax[2].set(yscale="log", xlabel="α", ylabel="N_S per sample", title="soft density along the circle")
    for name in slopes:
        means = [per_f[f]["mean"][name] for f in FREQS]
        ax[1].plot(FREQS, means, "o-", label=f"{name}: slope {slopes[name]['mean']:+.2f}")
    ref = np.array(FREQS, dtype=float)
    ax[1].plot(ref, per_f[FREQS[0]]["mean"]["N_S (soft)"] / ref, "k--", lw=1, label="1/f")
    ax[1].set(xscale="log", yscale="log", xlabel="frequency f", ylabel="mean neighbour count",
              title=f"neighbours vs frequency (N = {N})")
    for a in ax:
        a.legend(fontsize=7)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "sine_toy.png", dpi=110)


if __name__ == "__main__":
    main()
