"""Tail averaging of the weights (Polyak-Ruppert; Izmailov et al. UAI 2018 call its cyclic form SWA).

A short fine-tune from a pretrained chain at the training learning rate ends wherever the last
batches left it: two seeds of the same round end on networks that realign the same maps
differently. The mean of the weights over the last steps of a run sits where those steps
oscillate around, which depends less on the last batches. The chain has no batch statistics, so
the averaged weights need no recomputation.
"""

from __future__ import annotations

import torch


class TailAverage:
    """Running mean of a module's floating-point weights over the steps after ``start_step``."""

    def __init__(self, total_steps: int, tail_fraction: float):
        if not 0.0 <= tail_fraction <= 1.0:
            raise ValueError(f"tail_fraction must be within [0, 1], got {tail_fraction}")
        self.start_step = total_steps - int(round(tail_fraction * total_steps))  # total_steps: none averaged
        self.count = 0
        self.mean: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        """Fold in the weights after ``step`` steps (counted from 1) when it lies in the tail."""
        if step <= self.start_step:
            return
        self.count += 1
        for name, value in module.state_dict().items():
            if not value.is_floating_point():
                continue
            if name not in self.mean:
                self.mean[name] = value.detach().clone()
            else:
                self.mean[name] += (value.detach() - self.mean[name]) / self.count

    @torch.no_grad()
    def apply(self, module: torch.nn.Module) -> bool:
        """Load the averaged weights into ``module``; False when nothing was averaged."""
        if not self.count:
            return False
        module.load_state_dict({**module.state_dict(), **self.mean})
        return True

    def state_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean}

    def load_state_dict(self, state: dict) -> None:
        self.count = int(state["count"])
        self.mean = {k: v.clone() for k, v in state["mean"].items()}
