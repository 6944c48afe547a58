"""The training loss of the base models: full-softmax cross-entropy, fused into row chunks on CPU."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


class _FusedSoftmaxCE(torch.autograd.Function):
    """Cross-entropy over ``hidden @ weight.T`` computed in row chunks, gradients included.

    On CPU the ``[N, n_items]`` logits of a batch do not fit in cache, and
    memory traffic (log-softmax, its backward, zero-filled gradients) costs
    more than the matrix products. This computes each chunk's logits, loss and
    gradients while they are in cache, so the full logits never exist. The
    gradients are computed in the forward pass (training always backprops).
    """

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                chunk: int) -> torch.Tensor:
        n = hidden.shape[0]
        grad_h = torch.empty_like(hidden)
        grad_w = torch.zeros_like(weight)
        total = hidden.new_zeros((), dtype=torch.float64)
        rows = torch.arange(chunk, device=hidden.device)
        for start in range(0, n, chunk):
            h = hidden[start:start + chunk]
            t = targets[start:start + chunk]
            r = rows[: len(t)]
            logits = h @ weight.T
            lse = torch.logsumexp(logits, dim=1)
            total += (lse - logits[r, t]).sum().double()
            probs = logits.sub_(lse[:, None]).exp_()   # softmax, in place
            probs[r, t] -= 1.0                          # d loss / d logits (unscaled)
            torch.mm(probs, weight, out=grad_h[start:start + chunk])
            grad_w.addmm_(probs.T, h)
        ctx.save_for_backward(grad_h, grad_w)
        ctx.n = n
        return (total / n).to(hidden.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_h, grad_w = ctx.saved_tensors
        scale = grad_out / ctx.n
        return grad_h * scale, grad_w * scale, None, None


def softmax_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                          chunk: int = 256) -> torch.Tensor:
    """Mean full-softmax cross-entropy of ``hidden @ weight.T`` against ``targets``.

    Args:
        hidden: ``[N, d]`` representations.
        weight: ``[V, d]`` class (item) embeddings.
        targets: ``[N]`` class indices in ``0..V-1``.
        chunk: rows per chunk for the fused CPU path.

    Uses the chunked fused kernel on CPU when gradients are needed, plain
    ``F.cross_entropy`` otherwise (and on CUDA, where it is fast).
    """
    needs_grad = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    if hidden.device.type == "cpu" and needs_grad and len(hidden) > 0:
        return _FusedSoftmaxCE.apply(hidden, weight, targets, chunk)
    return F.cross_entropy(hidden @ weight.T, targets)
