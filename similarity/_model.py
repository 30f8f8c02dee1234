"""How the library calls a model: which parameters, which output, which batches.

Every public function takes the same four things — a module, its inputs, an optional
``output`` callable and an optional parameter selection — and this module turns them into a
pure function ``f(params, x) -> (N, d)`` that torch.func can transform.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

Output = Callable[[Tensor], Tensor]
Params = Iterable[str] | Mapping[str, Tensor] | None
Data = Tensor | Iterable


def _as_2d(y: Tensor) -> Tensor:
    """(N,) -> (N, 1); (N, ...) -> (N, d): the library always works on (N, d) outputs."""
    if y.dim() == 1:
        return y.unsqueeze(1)
    return y.reshape(y.shape[0], -1)


@dataclass
class Problem:
    """A model seen as f(params, x) -> (N, d), with the parameters we differentiate."""

    model: nn.Module
    params: dict[str, Tensor]
    output: Output | None
    frozen: dict[str, Tensor]  # the other parameters, detached: constants for every transform

    @property
    def names(self) -> list[str]:
        return list(self.params)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.params.values())

    def __call__(self, params: Mapping[str, Tensor], x: Tensor) -> Tensor:
        y = functional_call(self.model, {**self.frozen, **params}, (x,))
        if self.output is not None:
            y = self.output(y)
        return _as_2d(y)

    def single(self, params: Mapping[str, Tensor], x: Tensor) -> Tensor:
        """One sample without its batch axis -> (d,): the function torch.func vmaps over."""
        return self(params, x.unsqueeze(0))[0]

    def flatten(self, tree: Mapping[str, Tensor], lead: int) -> Tensor:
        """{name: (*lead_shape, *param_shape)} -> (*lead_shape, p), in parameter order."""
        parts = [tree[k].reshape(*tree[k].shape[:lead], -1) for k in self.params]
        return torch.cat(parts, dim=-1)

    def unflatten(self, vec: Tensor) -> dict[str, Tensor]:
        """(..., p) -> {name: (..., *param_shape)}, the inverse of ``flatten``."""
        out, offset = {}, 0
        lead = vec.shape[:-1]
        for k, p in self.params.items():
            n = p.numel()
            out[k] = vec[..., offset:offset + n].reshape(*lead, *p.shape)
            offset += n
        return out


def make_problem(model: nn.Module, output: Output | None = None, params: Params = None) -> Problem:
    """Select the parameters to differentiate.

    ``params`` is None (every parameter that requires grad), an iterable of parameter names
    (a subset, e.g. the last layers), or a mapping name -> tensor whose tensors are used as
    they are (they may require grad: that is how the enforcing losses backpropagate).
    """
    named = dict(model.named_parameters())
    if params is None:
        chosen = {k: v.detach() for k, v in named.items() if v.requires_grad}
    elif isinstance(params, Mapping):
        unknown = set(params) - set(named)
        if unknown:
            raise KeyError(f"unknown parameter names {sorted(unknown)}; see model.named_parameters()")
        chosen = dict(params)
    else:
        names = list(params)
        unknown = set(names) - set(named)
        if unknown:
            raise KeyError(f"unknown parameter names {sorted(unknown)}; see model.named_parameters()")
        chosen = {k: v.detach() for k, v in named.items() if k in set(names)}
    if not chosen:
        raise ValueError("no parameter selected: the model has no trainable parameter")
    frozen = {k: v.detach() for k, v in named.items() if k not in chosen}
    return Problem(model, chosen, output, frozen)


def iter_batches(data: Data, batch_size: int) -> Iterator[Tensor]:
    """Yield input batches from a tensor (sliced) or any iterable such as a DataLoader.

    Items of an iterable that are tuples or lists (``(x, y)`` from a DataLoader) give their
    first element.
    """
    if isinstance(data, Tensor):
        for start in range(0, data.shape[0], batch_size):
            yield data[start:start + batch_size]
        return
    for item in data:
        x = item[0] if isinstance(item, (tuple, list)) else item
        for start in range(0, x.shape[0], batch_size):
            yield x[start:start + batch_size]


def num_samples(data: Data) -> int | None:
    """Length of a tensor of inputs; None for an iterable we would have to consume."""
    return data.shape[0] if isinstance(data, Tensor) else None
