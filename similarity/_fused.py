"""The fused first pass of ``soft_density`` for networks built of Linear and Conv layers.

Pass 1 needs, per sample, K(x,x) = J Jᵀ (d×d) and then the sum Ĝ = Σ_x K(x,x)^(-1/2) J(x).
The generic path builds every per-sample Jacobian (d×p) with vmap. Here one batched forward
pass records each layer's input a, one backward pass per output records each layer's
output gradient δ, and, layer by layer, K(x,x) is accumulated without per-sample gradients
where that is cheaper (the "ghost" identity ⟨Σ_t δ_t u_tᵀ, Σ_s δ'_s u_sᵀ⟩ =
Σ_{t,s} (u_t·u_s)(δ_t·δ'_s), used for Linear layers and convolutions with few positions)
and by materializing that one layer's per-sample gradients otherwise. Ĝ then comes from the
same a and δ: the δ are re-weighted by K(x,x)^(-1/2) and contracted with a, one matrix
product per layer, as in an ordinary weight-gradient computation. No Jacobian of the whole
network and no second backward pass are ever formed.

Layers with parameters of another type, weight sharing (a module called twice) or grouped
convolutions are not handled: ``applies`` says False and the caller uses torch.func.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._linalg import inv_sqrt_psd
from ._model import Data, Problem, iter_batches

SUPPORTED = (nn.Linear, nn.Conv1d, nn.Conv2d)
FORCE: str | None = None  # 'ghost' or 'full' forces one strategy for every layer (tests)


class Unsupported(Exception):
    """Raised during a pass when the model does something the fused engine cannot follow."""


@dataclass
class _Layer:
    module: nn.Module
    weight: str | None  # full parameter names, None when that parameter is not selected
    bias: str | None


def _layers(problem: Problem) -> list[_Layer] | None:
    """The supported modules owning the selected parameters, or None if some is not."""
    owner: dict[str, _Layer] = {}
    for mod_name, mod in problem.model.named_modules():
        for pname, _ in mod.named_parameters(recurse=False):
            full = f"{mod_name}.{pname}" if mod_name else pname
            if full not in problem.params:
                continue
            if not isinstance(mod, SUPPORTED) or pname not in ("weight", "bias"):
                return None
            if isinstance(mod, (nn.Conv1d, nn.Conv2d)) and (
                    mod.groups != 1 or mod.padding_mode != "zeros" or isinstance(mod.padding, str)):
                return None
            layer = owner.setdefault(mod_name, _Layer(mod, None, None))
            setattr(layer, pname, full)
    if sum((lay.weight is not None) + (lay.bias is not None) for lay in owner.values()) != len(problem.params):
        return None  # a parameter shared between modules
    return list(owner.values())


def applies(problem: Problem) -> bool:
    """True when every selected parameter is the weight or bias of a Linear/Conv1d/Conv2d."""
    return _layers(problem) is not None


def _patches(layer: nn.Module, a: Tensor) -> Tensor:
    """Layer input -> (B, T, D): the vectors u_t each output position is a linear map of."""
    if isinstance(layer, nn.Linear):
        return a.reshape(a.shape[0], -1, a.shape[-1])
    if isinstance(layer, nn.Conv1d):
        a = a.unsqueeze(2)
        k, dil, pad, st = (1, *layer.kernel_size), (1, *layer.dilation), (0, *layer.padding), (1, *layer.stride)
    else:
        k, dil, pad, st = layer.kernel_size, layer.dilation, layer.padding, layer.stride
    return F.unfold(a, k, dil, pad, st).transpose(1, 2)


def _out_grads(layer: nn.Module, delta: Tensor) -> Tensor:
    """(d, B, out, *spatial) or (d, B, *, out) -> (d, B, T, C) matching ``_patches``."""
    d, B = delta.shape[:2]
    if isinstance(layer, nn.Linear):
        return delta.reshape(d, B, -1, delta.shape[-1])
    return delta.reshape(d, B, delta.shape[2], -1).transpose(2, 3)


class _Pass:
    """One chunk: forward with hooks, d backward passes, per-layer K(x,x) and Ĝ."""

    def __init__(self, problem: Problem, layers: list[_Layer]) -> None:
        self.problem, self.layers = problem, layers
        self.offsets: dict[str, tuple[int, int]] = {}
        offset = 0
        for name, p in problem.params.items():
            self.offsets[name] = (offset, p.numel())
            offset += p.numel()

    def _trace(self, x: Tensor) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """Forward with hooks, then one backward per output: (outputs (B, d), [(input, grads)] per layer).

        ``grads`` stacks the gradients of each output component w.r.t. the layer's output,
        (d, *output shape); samples do not mix, so row b is sample b's own gradient.
        """
        if not x.is_floating_point():
            raise Unsupported("integer inputs: the graph cannot be traced from the input")
        records: dict[nn.Module, list] = {lay.module: [] for lay in self.layers}

        def hook(mod, inputs, out):
            records[mod].append((inputs[0].detach(), out))

        handles = [lay.module.register_forward_hook(hook) for lay in self.layers]
        try:
            with torch.enable_grad():
                y = self.problem(self.problem.params, x.detach().requires_grad_(True))
        finally:
            for h in handles:
                h.remove()
        if any(len(r) != 1 for r in records.values()):
            raise Unsupported("a layer was called more than once (weight sharing)")
        outs = [records[lay.module][0][1] for lay in self.layers]
        d = y.shape[1]
        per_output = [torch.autograd.grad(y[:, a].sum(), outs, retain_graph=a < d - 1, allow_unused=True)
                      for a in range(d)]
        traced = []
        for i, lay in enumerate(self.layers):
            grads = [g[i] if g[i] is not None else torch.zeros_like(outs[i]) for g in per_output]
            traced.append((records[lay.module][0][0], torch.stack(grads)))
        return y.detach(), traced

    def run(self, x: Tensor, rtol: float | None) -> tuple[Tensor, Tensor]:
        """Returns Σ_x Ĵ(x) over the chunk (d, p) and K(x,x)^(-1/2) per sample (B, d, d)."""
        y, traced = self._trace(x)
        B, d = y.shape
        dtype = traced[0][1].dtype
        K = torch.zeros(B, d, d, dtype=dtype)
        saved = [self._layer_gram(lay, a, grads, K) for lay, (a, grads) in zip(self.layers, traced)]
        W = inv_sqrt_psd(K, rtol)
        G = torch.zeros(d, self.problem.num_params, dtype=dtype)
        for lay, item in zip(self.layers, saved):
            self._layer_sum(lay, item, W, G)
        return G, W

    def jacobians(self, x: Tensor, out: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The chunk's outputs (B, d) and per-sample Jacobians (B, d, p), the latter written
        layer by layer into ``out``."""
        y, traced = self._trace(x)
        B, d = y.shape
        if out is None:
            out = torch.empty(B, d, self.problem.num_params, dtype=traced[0][1].dtype)
        for lay, (a, grads) in zip(self.layers, traced):
            mod = lay.module
            delta = _out_grads(mod, grads)  # (d, B, T, C)
            if lay.bias:
                o, n = self.offsets[lay.bias]
                out[:, :, o:o + n] = delta.sum(2).transpose(0, 1)
            if not lay.weight:
                continue
            o, n = self.offsets[lay.weight]
            target = out[:, :, o:o + n]
            if isinstance(mod, nn.Linear) and delta.shape[2] == 1:
                C, D = delta.shape[3], a.shape[-1]
                torch.mul(delta[:, :, 0].transpose(0, 1).unsqueeze(-1), a.reshape(B, 1, 1, D),
                          out=target.view(B, d, C, D))
            elif isinstance(mod, nn.Linear):
                u = _patches(mod, a)
                T, C = delta.shape[2], delta.shape[3]
                target.copy_(torch.bmm(delta.permute(1, 0, 3, 2).reshape(B, d * C, T), u).reshape(B, d, n))
            else:
                target.copy_(_per_sample_conv_grad(mod, a, grads))
        return y, out


    def _layer_gram(self, lay: _Layer, a: Tensor, grad: Tensor, K: Tensor):
        """Add the layer's per-sample ⟨g_a, g_b⟩ to K; return what ``_layer_sum`` needs.

        ``a`` is the layer input, ``grad`` the stacked output gradients (d, *output shape).
        """
        mod = lay.module
        delta = _out_grads(mod, grad)  # (d, B, T, C)
        d, B, T, C = delta.shape
        bias = delta.sum(2) if lay.bias else None  # (d, B, C): per-sample bias gradients
        if bias is not None:
            _add_products(K, bias)
        if not lay.weight:
            return ("none", None, bias)
        D = lay.module.weight[0].numel() if not isinstance(mod, nn.Linear) else a.shape[-1]
        ghost = T == 1 or T * T * (D + d * d * C) < d * C * D * T
        if FORCE is not None:
            ghost = FORCE == "ghost"
        if not ghost:
            # This layer's per-sample weight gradients (B, d, C·D), then their Gram.
            if isinstance(mod, nn.Linear):
                u = _patches(mod, a)
                g = torch.bmm(delta.permute(1, 0, 3, 2).reshape(B, d * C, T), u)
            else:
                g = _per_sample_conv_grad(mod, a, grad)
            g = g.reshape(B, d, C * D)
            K += g @ g.transpose(1, 2)
            return ("full", g, bias)
        # Ghost: Σ_{t,s} (u_t·u_s)(δ_t·δ'_s), no per-sample weight gradient formed.
        if T == 1:
            _add_products(K, delta[:, :, 0], a.reshape(B, -1).square().sum(-1))
        else:
            u = _patches(mod, a)
            A = u @ u.transpose(1, 2)  # (B, T, T)
            for i in range(d):
                for e in range(i, d):
                    v = ((delta[i] @ delta[e].transpose(1, 2)) * A).sum((1, 2))
                    K[:, i, e] += v
                    if e != i:
                        K[:, e, i] += v
        return ("ghost", (a, grad), bias)

    def _layer_sum(self, lay: _Layer, item, W: Tensor, G: Tensor) -> None:
        kind, data, bias = item
        if bias is not None:
            o, n = self.offsets[lay.bias]
            G[:, o:o + n] += _reweight(W, bias).sum(1)
        if kind == "none":
            return
        o, n = self.offsets[lay.weight]
        if kind == "full":
            G[:, o:o + n] += torch.einsum("bca,bap->cp", W, data)
            return
        a, grad = data
        d = grad.shape[0]
        # Re-weight the output gradients by K(x,x)^(-1/2), then one weight-gradient product.
        reweighted = _reweight(W, grad)
        mod = lay.module
        if isinstance(mod, nn.Linear):
            B = a.shape[0]
            r = reweighted.reshape(d, -1, reweighted.shape[-1])  # (d, B·T, C)
            G[:, o:o + n] += (r.transpose(1, 2) @ a.reshape(B * r.shape[1] // B, -1)).reshape(d, n)
        else:
            G[:, o:o + n] += _summed_conv_grad(mod, a, reweighted).reshape(d, n)


def _add_products(K: Tensor, v: Tensor, scale: Tensor | None = None) -> None:
    """K[b, i, e] += scale[b] · v[i, b]·v[e, b] for v (d, B, C): d(d+1)/2 fused products, no bmm."""
    d = v.shape[0]
    for i in range(d):
        for e in range(i, d):
            val = (v[i] * v[e]).sum(-1)
            if scale is not None:
                val = val * scale
            K[:, i, e] += val
            if e != i:
                K[:, e, i] += val


def _reweight(W: Tensor, g: Tensor) -> Tensor:
    """Σ_a W[b, c, a] · g[a, b, ...] for every c: (d, B, ...), elementwise (d is small)."""
    d = g.shape[0]
    shape = (g.shape[1],) + (1,) * (g.dim() - 2)
    rows = []
    for c in range(d):
        r = W[:, c, 0].reshape(shape) * g[0]
        for a in range(1, d):
            r = r + W[:, c, a].reshape(shape) * g[a]
        rows.append(r)
    return torch.stack(rows)


def _conv_args(mod: nn.Module) -> tuple[list[int], list[int], list[int], list[int]]:
    return list(mod.stride), list(mod.padding), list(mod.dilation), [0] * len(mod.stride)


def _per_sample_conv_grad(mod: nn.Module, a: Tensor, grad: Tensor) -> Tensor:
    """Per-sample weight gradients (B, d, C·D) by one grouped convolution backward (groups = B)."""
    d, B, C = grad.shape[:3]
    stride, padding, dilation, out_pad = _conv_args(mod)
    ga = grad.transpose(0, 1).reshape(1, B * d * C, *grad.shape[3:])
    xa = a.reshape(1, B * a.shape[1], *a.shape[2:])
    w = mod.weight.new_zeros((1,) * mod.weight.dim()).expand(B * d * C, *mod.weight.shape[1:])
    gw = torch.ops.aten.convolution_backward(ga, xa, w, None, stride, padding, dilation, False,
                                             out_pad, B, [False, True, False])[1]
    return gw.reshape(B, d, -1)


def _summed_conv_grad(mod: nn.Module, a: Tensor, grad: Tensor) -> Tensor:
    """Σ_x of the weight gradients for d cotangents at once (d, C, ...): d·C output channels."""
    d, B, C = grad.shape[:3]
    stride, padding, dilation, out_pad = _conv_args(mod)
    ga = grad.transpose(0, 1).reshape(B, d * C, *grad.shape[3:])
    w = mod.weight.new_zeros((1,) * mod.weight.dim()).expand(d * C, *mod.weight.shape[1:])
    gw = torch.ops.aten.convolution_backward(ga, a, w, None, stride, padding, dilation, False,
                                             out_pad, 1, [False, True, False])[1]
    return gw


def iter_outputs_jacobians(problem: Problem, data: Data, batch_size: int):
    """Stream (outputs (B, d), per-sample Jacobians (B, d, p)) like
    ``jacobians.iter_outputs_jacobians``, layer-wise."""
    layers = _layers(problem)
    if layers is None:
        raise Unsupported("the model has parameters outside Linear/Conv layers")
    engine = _Pass(problem, layers)
    for x in iter_batches(data, batch_size):
        yield engine.jacobians(x)


def whitened_sum(problem: Problem, data: Data, batch_size: int,
                 rtol: float | None) -> tuple[Tensor, Tensor]:
    """Ĝ = Σ_x Ĵ(x) (d, p) and K(x,x)^(-1/2) per sample (N, d, d), in one streamed pass."""
    layers = _layers(problem)
    if layers is None:
        raise Unsupported("the model has parameters outside Linear/Conv layers")
    engine = _Pass(problem, layers)
    G, Ws = None, []
    for x in iter_batches(data, batch_size):
        g, W = engine.run(x, rtol)
        G = g if G is None else G + g
        Ws.append(W)
    if G is None:
        raise ValueError("the reference set is empty")
    return G, torch.cat(Ws)
