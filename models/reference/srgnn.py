"""Transcribes recbole/model/sequential_recommender/srgnn.py and
recbole/properties/model/SRGNN.yaml (RecBole 1.2.1). MIT licence, RecBole team.

Only ``loss_type: CE`` is transcribed (RecBole's default); the BPR branch is not.
RecBole builds each session graph in a per-sample numpy loop (``_get_slice``);
that loop is kept verbatim as :meth:`SRGNN.get_slice_loop` and
:meth:`SRGNN._get_slice` computes the identical tensors with batched torch ops
(tests check equality), which is what makes CPU training affordable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import Parameter
from torch.nn import functional as F

from models.reference.abstract import SequentialRecommender


@dataclass(frozen=True)
class SRGNNConfig:
    """SRGNN.yaml defaults."""

    embedding_size: int = 64
    step: int = 1


class GNN(nn.Module):
    """Gated graph neural network over a session graph (incoming + outgoing edges)."""

    def __init__(self, embedding_size: int, step: int = 1) -> None:
        super().__init__()
        self.step = step
        self.embedding_size = embedding_size
        self.input_size = embedding_size * 2
        self.gate_size = embedding_size * 3
        self.w_ih = Parameter(torch.Tensor(self.gate_size, self.input_size))
        self.w_hh = Parameter(torch.Tensor(self.gate_size, self.embedding_size))
        self.b_ih = Parameter(torch.Tensor(self.gate_size))
        self.b_hh = Parameter(torch.Tensor(self.gate_size))
        self.b_iah = Parameter(torch.Tensor(self.embedding_size))
        self.b_ioh = Parameter(torch.Tensor(self.embedding_size))
        self.linear_edge_in = nn.Linear(self.embedding_size, self.embedding_size, bias=True)
        self.linear_edge_out = nn.Linear(self.embedding_size, self.embedding_size, bias=True)

    def GNNCell(self, A: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:  # noqa: N802
        """``A [B, L, 2L]``, ``hidden [B, L, d]`` -> ``[B, L, d]``."""
        input_in = torch.matmul(A[:, :, : A.size(1)], self.linear_edge_in(hidden)) + self.b_iah
        input_out = (torch.matmul(A[:, :, A.size(1): 2 * A.size(1)],
                                  self.linear_edge_out(hidden)) + self.b_ioh)
        inputs = torch.cat([input_in, input_out], 2)
        gi = F.linear(inputs, self.w_ih, self.b_ih)
        gh = F.linear(hidden, self.w_hh, self.b_hh)
        i_r, i_i, i_n = gi.chunk(3, 2)
        h_r, h_i, h_n = gh.chunk(3, 2)
        reset_gate = torch.sigmoid(i_r + h_r)
        input_gate = torch.sigmoid(i_i + h_i)
        new_gate = torch.tanh(i_n + reset_gate * h_n)
        return (1 - input_gate) * hidden + input_gate * new_gate

    def forward(self, A: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        for _ in range(self.step):
            hidden = self.GNNCell(A, hidden)
        return hidden


class SRGNN(SequentialRecommender):
    """SR-GNN: session graph -> GNN -> soft attention + last item -> linear transform."""

    config_type = SRGNNConfig

    def __init__(self, n_items: int, max_seq_length: int = 50,
                 config: SRGNNConfig | None = None) -> None:
        super().__init__(n_items, max_seq_length)
        config = config or SRGNNConfig()
        self.config = config
        self.embedding_size = config.embedding_size
        self.step = config.step

        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size, padding_idx=0)
        self.gnn = GNN(self.embedding_size, self.step)
        self.linear_one = nn.Linear(self.embedding_size, self.embedding_size, bias=True)
        self.linear_two = nn.Linear(self.embedding_size, self.embedding_size, bias=True)
        self.linear_three = nn.Linear(self.embedding_size, 1, bias=False)
        self.linear_transform = nn.Linear(self.embedding_size * 2, self.embedding_size, bias=True)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Every parameter (padding row included) ~ U(-1/sqrt(d), 1/sqrt(d))."""
        stdv = 1.0 / math.sqrt(self.embedding_size)
        for weight in self.parameters():
            weight.data.uniform_(-stdv, stdv)

    @staticmethod
    def get_slice_loop(item_seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                        torch.Tensor, torch.Tensor]:
        """RecBole's ``_get_slice``, verbatim (per-sample numpy loop).

        Returns:
            ``alias_inputs [B, L]`` (node of each position), ``A [B, L, 2L]``
            (normalised incoming | outgoing adjacency), ``items [B, L]`` (the
            sorted unique ids of each row, zero-padded) and ``mask [B, L]``.
        """
        device = item_seq.device
        mask = item_seq.gt(0)
        items, A, alias_inputs = [], [], []
        max_n_node = item_seq.size(1)
        seqs = item_seq.cpu().numpy()
        for u_input in seqs:
            node = np.unique(u_input)
            items.append(node.tolist() + (max_n_node - len(node)) * [0])
            u_A = np.zeros((max_n_node, max_n_node))
            for i in np.arange(len(u_input) - 1):
                if u_input[i + 1] == 0:
                    break
                u = np.where(node == u_input[i])[0][0]
                v = np.where(node == u_input[i + 1])[0][0]
                u_A[u][v] = 1
            u_sum_in = np.sum(u_A, 0)
            u_sum_in[np.where(u_sum_in == 0)] = 1
            u_A_in = np.divide(u_A, u_sum_in)
            u_sum_out = np.sum(u_A, 1)
            u_sum_out[np.where(u_sum_out == 0)] = 1
            u_A_out = np.divide(u_A.transpose(), u_sum_out)
            u_A = np.concatenate([u_A_in, u_A_out]).transpose()
            A.append(u_A)
            alias_inputs.append([np.where(node == i)[0][0] for i in u_input])
        return (torch.LongTensor(alias_inputs).to(device),
                torch.FloatTensor(np.array(A)).to(device),
                torch.LongTensor(items).to(device), mask)

    @staticmethod
    def _get_slice(item_seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                    torch.Tensor, torch.Tensor]:
        """Same tensors as :meth:`get_slice_loop`, computed for the whole batch at once."""
        batch, length = item_seq.shape
        mask = item_seq.gt(0)
        sorted_vals, perm = torch.sort(item_seq, dim=1, stable=True)
        is_new = torch.ones_like(sorted_vals, dtype=torch.bool)
        is_new[:, 1:] = sorted_vals[:, 1:] != sorted_vals[:, :-1]
        node_of_sorted = torch.cumsum(is_new.long(), dim=1) - 1      # node id of each sorted slot
        alias_inputs = torch.empty_like(item_seq).scatter_(1, perm, node_of_sorted)
        items = torch.zeros_like(item_seq).scatter_(1, node_of_sorted, sorted_vals)
        # An edge u -> v for each consecutive pair up to the first padding (RecBole's `break`).
        valid = torch.cumprod((item_seq[:, 1:] != 0).long(), dim=1).bool()
        rows = torch.arange(batch, device=item_seq.device).view(-1, 1).expand(-1, length - 1)
        u_a = torch.zeros(batch, length, length, dtype=torch.float32, device=item_seq.device)
        u_a[rows[valid], alias_inputs[:, :-1][valid], alias_inputs[:, 1:][valid]] = 1.0
        sum_in = u_a.sum(1, keepdim=True)                           # in-degree of column v
        sum_in = torch.where(sum_in == 0, torch.ones_like(sum_in), sum_in)
        sum_out = u_a.sum(2, keepdim=True)                          # out-degree of row u
        sum_out = torch.where(sum_out == 0, torch.ones_like(sum_out), sum_out)
        a_in = (u_a / sum_in).transpose(1, 2)                       # [v, u] = A[u, v] / in(v)
        a_out = u_a / sum_out                                       # [u, v] = A[u, v] / out(u)
        return alias_inputs, torch.cat([a_in, a_out], dim=2), items, mask

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` items, ``[B]`` lengths -> ``[B, embedding_size]``."""
        alias_inputs, A, items, mask = self._get_slice(item_seq)
        hidden = self.item_embedding(items)
        hidden = self.gnn(A, hidden)
        alias_inputs = alias_inputs.view(-1, alias_inputs.size(1), 1).expand(
            -1, -1, self.embedding_size)
        seq_hidden = torch.gather(hidden, dim=1, index=alias_inputs)
        ht = self.gather_indexes(seq_hidden, item_seq_len - 1)
        q1 = self.linear_one(ht).view(ht.size(0), 1, ht.size(1))
        q2 = self.linear_two(seq_hidden)
        alpha = self.linear_three(torch.sigmoid(q1 + q2))
        a = torch.sum(alpha * seq_hidden * mask.view(mask.size(0), -1, 1).float(), 1)
        return self.linear_transform(torch.cat([a, ht], dim=1))
