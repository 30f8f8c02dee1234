"""What the similarity benchmarks share: models, timing, memory sampling, result files."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import torch
from torch import nn

RESULTS = Path(__file__).resolve().parents[1] / "results" / "similarity"


def threads() -> int:
    """1 thread by default (SIMILARITY_BENCH_THREADS overrides, 2 at most).

    The machine's 2 cores are shared; with 2 threads a busy neighbour stalls every
    parallel region and timings swing by 2-3×, while 1 thread gives stable ratios.
    """
    n = min(2, int(os.environ.get("SIMILARITY_BENCH_THREADS", "1")))
    torch.set_num_threads(n)
    return n


def sine_mlp(width: int = 128, depth: int = 3) -> nn.Sequential:
    """The sine-toy network: 1 -> width (×depth, tanh) -> 1."""
    layers: list[nn.Module] = [nn.Linear(1, width), nn.Tanh()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(width, 1))


def alignment_cnn(in_channels: int = 4) -> nn.Sequential:
    """A fully convolutional encoder-decoder predicting a dense 2-channel displacement field.

    The size of one scale of the alignment network (p ≈ 2.3·10⁵): image + map channels in,
    (dx, dy) per pixel out. Similarity uses the displacement at the centre pixel (d = 2).
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1, stride=2), nn.ReLU(),
        nn.Conv2d(64, 96, 3, padding=1, stride=2), nn.ReLU(),
        nn.Conv2d(96, 96, 3, padding=1), nn.ReLU(),
        nn.Upsample(scale_factor=2), nn.Conv2d(96, 64, 3, padding=1), nn.ReLU(),
        nn.Upsample(scale_factor=2), nn.Conv2d(64, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 2, 3, padding=1))


def centre_displacement(y: torch.Tensor) -> torch.Tensor:
    """(N, 2, H, W) dense field -> (N, 2) displacement at the centre pixel."""
    return y[:, :, y.shape[2] // 2, y.shape[3] // 2]


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 2 ms in a thread."""

    def __enter__(self) -> "PeakRSS":
        self.base = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.002)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def extra_mb(self) -> float:
        return (self.peak - self.base) / 2 ** 20


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
