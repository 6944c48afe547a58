"""The ``loo`` evaluation protocol: per-user temporal leave-one-out.

For a user history ``h`` of length ``n``: ``h[-1]`` is the test target (input
``h[:-1]``), ``h[-2]`` the validation target (input ``h[:-2]``), and ``h[:-2]``
is training data. Inputs keep only the last ``max_len`` items. No interaction
is filtered out, and ranking is over all items without masking history items,
as RecBole's sequential evaluation does (``order: TO, split: LS, mode: full``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from models.data.dataset import Dataset

Split = Literal["valid", "test"]
DEFAULT_MAX_LEN = 50


@dataclass
class EvalSet:
    """Evaluation inputs for one split: one row per evaluated user."""

    users: np.ndarray              # dense user indices
    inputs: list[np.ndarray]       # the history fed to the model (already truncated)
    targets: np.ndarray            # item index to recover


@dataclass
class LeaveOneOut:
    """A ``loo`` split of a dataset.

    Attributes:
        train: per user, the training part of the history (``h[:-2]``; whole
            history for users too short to be evaluated).
        valid, test: evaluation sets.
        n_items: number of real items; models score ``n_items + 1`` slots (0 = padding).
        max_len: maximum history length fed to a model.
    """

    train: list[np.ndarray]
    valid: EvalSet
    test: EvalSet
    n_items: int
    max_len: int

    def eval_set(self, split: Split) -> EvalSet:
        if split not in ("valid", "test"):
            raise ValueError(f"unknown split {split!r}; use 'valid' or 'test'")
        return self.valid if split == "valid" else self.test


def leave_one_out(dataset: Dataset, max_len: int = DEFAULT_MAX_LEN) -> LeaveOneOut:
    """Split ``dataset`` with the ``loo`` protocol.

    Users with fewer than 3 interactions cannot give train, valid and test
    targets; they are kept as training data only (ml-100k has none).
    """
    if max_len < 1:  # h[-0:] would silently mean "the whole history"
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    train, v_users, v_in, v_tg, t_users, t_in, t_tg = [], [], [], [], [], [], []
    for u, history in enumerate(dataset.histories):
        if len(history) < 3:
            train.append(history)
            continue
        train.append(history[:-2])
        v_users.append(u)
        v_in.append(history[:-2][-max_len:])
        v_tg.append(history[-2])
        t_users.append(u)
        t_in.append(history[:-1][-max_len:])
        t_tg.append(history[-1])
    return LeaveOneOut(
        train=train,
        valid=EvalSet(np.asarray(v_users, dtype=np.int64), v_in, np.asarray(v_tg, dtype=np.int64)),
        test=EvalSet(np.asarray(t_users, dtype=np.int64), t_in, np.asarray(t_tg, dtype=np.int64)),
        n_items=dataset.n_items, max_len=max_len)


def pad_sequences(sequences: list[np.ndarray], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (items first, zeros after) the last ``max_len`` items of each sequence.

    Returns:
        items ``[B, L]`` (int64, 0 = padding) and lengths ``[B]`` (at least 1 per
        non-empty sequence; an empty sequence has length 0).
    """
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    batch = len(sequences)
    length = max(1, min(max_len, max((len(s) for s in sequences), default=1)))
    items = np.zeros((batch, length), dtype=np.int64)
    lengths = np.zeros(batch, dtype=np.int64)
    for row, seq in enumerate(sequences):
        seq = np.asarray(seq[-max_len:], dtype=np.int64)
        items[row, : len(seq)] = seq
        lengths[row] = len(seq)
    return torch.from_numpy(items), torch.from_numpy(lengths)
