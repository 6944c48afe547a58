"""Training samples from user histories: sliding causal windows and per-prefix samples.

RecBole trains per prefix (each prefix of a history is one sample, see
:func:`prefix_samples`); GRU4Rec and SASRec here train on all-positions windows
(:func:`causal_windows`) that predict every target exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def causal_windows(histories: list[np.ndarray], max_len: int,
                   stride: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All-positions training windows over histories.

    Each history ``h`` gives the targets ``h[1:]``; target ``h[t]`` is predicted
    from its causal prefix. Windows hold ``max_len`` inputs; the first starts at
    the history's start and predicts all its targets; each later window moves
    ``stride`` items on (the last one ends at the history's end) and predicts
    only the targets not yet predicted, each with ``max_len - stride + 1`` to
    ``max_len`` items of context. Every target is predicted exactly once.

    Returns:
        inputs ``[W, max_len]`` right-padded, targets ``[W, max_len]`` (0 = no loss
        at that position) and lengths ``[W]``, all int64.
    """
    if stride < 1 or stride > max_len:
        raise ValueError(f"stride must be in 1..{max_len}, got {stride}")
    rows_in, rows_tg, lengths = [], [], []
    for h in histories:
        h = np.asarray(h, dtype=np.int64)
        n = len(h)
        if n < 2:
            continue
        prev_end = 0  # targets h[1 .. prev_end] already predicted
        end = min(max_len, n - 1)  # window inputs h[end - L : end], targets h[.. end]
        while True:
            begin = max(0, end - max_len)
            inp = h[begin:end]
            tgt = h[begin + 1:end + 1].copy()
            tgt[: max(0, prev_end - begin)] = 0
            rows_in.append(inp)
            rows_tg.append(tgt)
            lengths.append(len(inp))
            if end >= n - 1:
                break
            prev_end = end
            end = min(end + stride, n - 1)
    W = len(rows_in)
    inputs = np.zeros((W, max_len), dtype=np.int64)
    targets = np.zeros((W, max_len), dtype=np.int64)
    for r, (i, t) in enumerate(zip(rows_in, rows_tg)):
        inputs[r, : len(i)] = i
        targets[r, : len(t)] = t
    return torch.from_numpy(inputs), torch.from_numpy(targets), torch.tensor(lengths)


def truncate_right_padded(items: torch.Tensor, lengths: torch.Tensor,
                          max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the last ``max_len`` real items of each right-padded row.

    Shapes:
        items ``[B, L]``, lengths ``[B]`` -> ``[B, min(L, max_len)]``, ``[B]``.
    """
    if items.shape[1] <= max_len:
        return items, lengths
    start = (lengths - max_len).clamp(min=0)
    idx = start.unsqueeze(1) + torch.arange(max_len, device=items.device).unsqueeze(0)
    new_lengths = lengths.clamp(max=max_len)
    out = items.gather(1, idx.clamp(max=items.shape[1] - 1))
    out = out.masked_fill(torch.arange(max_len, device=items.device)[None] >= new_lengths[:, None], 0)
    return out, new_lengths


@dataclass
class PrefixSamples:
    """Every training target with its causal prefix (RecBole's per-prefix augmentation).

    Attributes:
        flat: ``[T]`` all training histories (of at least 2 items) concatenated.
        starts, ends: ``[S]`` sample ``s`` has input ``flat[starts[s]:ends[s]]``
            (at most ``max_len`` items, never crossing a user boundary) and
            target ``flat[ends[s]]``.
    """

    flat: torch.Tensor
    starts: torch.Tensor
    ends: torch.Tensor

    def __len__(self) -> int:
        return len(self.ends)

    def gather(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Samples ``index [B]`` as right-padded ``items [B, L]``, ``lengths [B]``, ``targets [B]``."""
        starts, ends = self.starts[index], self.ends[index]
        lengths = ends - starts
        positions = torch.arange(int(lengths.max()))
        take = starts[:, None] + positions[None]
        valid = positions[None] < lengths[:, None]
        items = torch.where(valid, self.flat[take.clamp(max=len(self.flat) - 1)], 0)
        return items, lengths, self.flat[ends]


def prefix_samples(histories: list[np.ndarray], max_len: int) -> PrefixSamples:
    """One sample per target ``h[t]`` (``t >= 1``) of each history, input ``h[max(0, t - max_len):t]``."""
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    kept = [np.asarray(h, dtype=np.int64) for h in histories if len(h) >= 2]
    if not kept:
        raise ValueError("no training history has 2 or more items")
    sizes = np.array([len(h) for h in kept])
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])       # each history's offset in flat
    ends = np.arange(int(sizes.sum()))
    owner_first = np.repeat(first, sizes)
    keep = ends > owner_first                                  # h[0] is never a target
    ends, owner_first = ends[keep], owner_first[keep]
    starts = np.maximum(owner_first, ends - max_len)
    return PrefixSamples(torch.from_numpy(np.concatenate(kept)), torch.from_numpy(starts),
                         torch.from_numpy(ends))
