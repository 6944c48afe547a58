"""SR-GNN (Wu et al., AAAI 2019): session graphs and a gated graph network.

Each input sequence becomes a directed session graph: its unique items are
the nodes (sorted by item index) and every consecutive pair ``s[t] -> s[t+1]``
an edge (repeated pairs count once). ``alias_inputs`` maps each position of
the sequence to its node. Messages flow both ways: along the edges, weighted
by ``1 / in-degree`` of the receiver (the paper's normalised incoming
adjacency ``A_in``), and against them, weighted by ``1 / out-degree`` of the
sender (``A_out``). A GRU-style gate updates each node from the concatenated
in- and out-messages. The session representation is a soft-attention readout
over positions combined with the last item's node, mapped back to the
embedding size and scored against the (tied) item embeddings with a full
softmax, as in the paper and RecBole.

Two constructions are provided: :func:`session_graph` builds one
:class:`SessionGraph` (a PyG ``Data`` whose ``__inc__`` offsets
``alias_inputs`` when batched with ``Batch.from_data_list``), and
:func:`batch_session_graphs` builds the same disjoint union for a padded
batch with a few tensor operations; training and scoring use the latter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch_geometric.data import Data
from torch_geometric.nn import MessagePassing

from models.recommenders.neural import NeuralParams, PrefixSequenceModel, truncate_right_padded


class SessionGraph(Data):
    """A session graph (or a batch of them) with per-position node indices.

    Attributes:
        x: ``[N]`` item index of each node.
        edge_index: ``[2, E]`` directed edges ``source -> target`` between nodes.
        weight_in: ``[E]`` ``1 / in-degree(target)``.
        weight_out: ``[E]`` ``1 / out-degree(source)``.
        alias_inputs: node index of each sequence position (``[L]`` for one
            graph; batched as ``[B, L]`` right-padded by :func:`batch_session_graphs`,
            or flat by ``Batch.from_data_list``).
    """

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        # Positions point at nodes: offset them like edge_index when batching.
        if key == "alias_inputs":
            return self.num_nodes
        return super().__inc__(key, value, *args, **kwargs)


def _degree_weights(edge_index: torch.Tensor, num_nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    source, target = edge_index
    in_degree = torch.bincount(target, minlength=num_nodes).clamp(min=1)
    out_degree = torch.bincount(source, minlength=num_nodes).clamp(min=1)
    return 1.0 / in_degree[target].float(), 1.0 / out_degree[source].float()


def session_graph(items: Sequence[int]) -> SessionGraph:
    """The session graph of one non-empty item sequence.

    Shapes:
        ``items [L]`` -> ``x [N]``, ``edge_index [2, E]``, ``alias_inputs [L]``.
    """
    seq = np.asarray(items, dtype=np.int64)
    if seq.ndim != 1 or len(seq) == 0:
        raise ValueError("a session graph needs a non-empty 1-d item sequence")
    nodes, alias = np.unique(seq, return_inverse=True)
    pairs = np.unique(np.stack([alias[:-1], alias[1:]], axis=1), axis=0).reshape(-1, 2)
    edge_index = torch.from_numpy(pairs.T.copy())
    weight_in, weight_out = _degree_weights(edge_index, len(nodes))
    return SessionGraph(x=torch.from_numpy(nodes), edge_index=edge_index, weight_in=weight_in,
                        weight_out=weight_out, alias_inputs=torch.from_numpy(alias.reshape(-1)),
                        num_nodes=len(nodes))


def batch_session_graphs(items: torch.Tensor, lengths: torch.Tensor) -> SessionGraph:
    """The disjoint union of the session graphs of a padded batch, built with tensor ops.

    Node and edge order equal ``Batch.from_data_list([session_graph(row) ...])``:
    nodes by (row, item index), edges by (source, target).

    Args:
        items: ``[B, L]`` right-padded item indices.
        lengths: ``[B]`` real items per row, each at least 1.

    Shapes:
        returns ``x [N]``, ``edge_index [2, E]``, ``weight_in/out [E]``,
        ``alias_inputs [B, L]`` (global node index; 0 at padding), ``batch [N]``.
    """
    if bool((lengths < 1).any()):
        raise ValueError("every sequence needs at least one item")
    B, L = items.shape
    positions = torch.arange(L, device=items.device)
    valid = positions[None] < lengths[:, None]
    rows = torch.arange(B, device=items.device)[:, None].expand(B, L)
    span = int(items.max()) + 1
    # One key per (row, item): unique keys are the nodes, sorted by row then item.
    keys, alias_flat = torch.unique(rows[valid] * span + items[valid], return_inverse=True)
    alias = torch.zeros_like(items)
    alias[valid] = alias_flat
    num_nodes = len(keys)
    linked = valid[:, 1:]  # position t links to t + 1 when t + 1 is real
    pair_keys = torch.unique(alias[:, :-1][linked] * num_nodes + alias[:, 1:][linked])
    edge_index = torch.stack([pair_keys // num_nodes, pair_keys % num_nodes])
    weight_in, weight_out = _degree_weights(edge_index, num_nodes)
    return SessionGraph(x=keys % span, edge_index=edge_index, weight_in=weight_in,
                        weight_out=weight_out, alias_inputs=alias, batch=keys // span,
                        num_nodes=num_nodes)


class SRGNNCell(MessagePassing):
    """One gated propagation step over both edge directions (SR-GNN eq. 1-5).

    ``a_in = A_in (W_in h) + b_in``, ``a_out = A_out (W_out h) + b_out``, then a
    GRU update of ``h`` from ``[a_in, a_out]``.

    Args:
        hidden: node state size ``d``.

    Shapes:
        ``h [N, d]``, ``edge_index [2, E]``, ``weight_in/out [E]`` -> ``[N, d]``.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__(aggr="add")
        self.lin_in = nn.Linear(hidden, hidden)
        self.lin_out = nn.Linear(hidden, hidden)
        self.bias_in = nn.Parameter(torch.empty(hidden))
        self.bias_out = nn.Parameter(torch.empty(hidden))
        self.gate_input = nn.Linear(2 * hidden, 3 * hidden)
        self.gate_hidden = nn.Linear(hidden, 3 * hidden)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, weight_in: torch.Tensor,
                weight_out: torch.Tensor) -> torch.Tensor:
        a_in = self.propagate(edge_index, x=self.lin_in(h), weight=weight_in) + self.bias_in
        a_out = self.propagate(edge_index.flip(0), x=self.lin_out(h), weight=weight_out)
        a_out = a_out + self.bias_out
        i_r, i_z, i_n = self.gate_input(torch.cat([a_in, a_out], dim=-1)).chunk(3, dim=-1)
        h_r, h_z, h_n = self.gate_hidden(h).chunk(3, dim=-1)
        reset = torch.sigmoid(i_r + h_r)
        update = torch.sigmoid(i_z + h_z)
        candidate = torch.tanh(i_n + reset * h_n)
        return candidate + update * (h - candidate)

    def message(self, x_j: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return weight.unsqueeze(-1) * x_j


class SRGNNParams(NeuralParams):
    """SR-GNN hyper-parameters (defaults are the values tuned on ml-100k)."""

    embedding_size: int = Field(64, ge=1)
    step: int = Field(1, ge=1, description="gated propagation steps")
    # Tuned on ml-100k loo: the last 10 items beat 20 and 50 (valid and test), and
    # cost a fifth of 50 (nodes per prefix drive the cost).
    max_len: int = Field(10, ge=1, description="longest input; older items are dropped")
    batch_size: int = Field(512, ge=1, description="prefixes per step")
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)


class SRGNN(PrefixSequenceModel):
    """Session-based recommendation with graph neural networks.

    Args:
        n_items: number of real items (indices 1..n_items; 0 is padding).
        params: :class:`SRGNNParams`.

    Shapes:
        ``score(items [B, L], lengths [B]) -> [B, n_items + 1]``;
        ``encode(items, lengths) -> [B, embedding_size]``. Rows longer than
        ``max_len`` keep their last ``max_len`` items.
    """

    name = "srgnn"
    params_type = SRGNNParams
    params: SRGNNParams

    def __init__(self, n_items: int, params: SRGNNParams | None = None) -> None:
        super().__init__(n_items, params)
        d = self.params.embedding_size
        self.item_embedding = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.cell = SRGNNCell(d)
        self.attn_last = nn.Linear(d, d)
        self.attn_seq = nn.Linear(d, d)
        self.attn_score = nn.Linear(d, 1, bias=False)
        self.transform = nn.Linear(2 * d, d)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight uniform in ``±1/sqrt(d)``, as the paper's code and RecBole."""
        bound = 1.0 / math.sqrt(self.params.embedding_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def item_embeddings(self) -> torch.Tensor:
        return self.item_embedding.weight

    def encode(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Session representations.

        Args:
            items: ``[B, L]`` right-padded item indices.
            lengths: ``[B]`` real items per row (at least 1).

        Shapes:
            returns ``[B, embedding_size]``.
        """
        items, lengths = truncate_right_padded(items, lengths, self.params.max_len)
        graph = batch_session_graphs(items, lengths)
        h = self.item_embedding(graph.x)
        for _ in range(self.params.step):
            h = self.cell(h, graph.edge_index, graph.weight_in, graph.weight_out)
        seq = h[graph.alias_inputs]                                   # [B, L, d]
        last = seq[torch.arange(len(items), device=items.device), lengths - 1]
        mask = torch.arange(items.shape[1], device=items.device)[None] < lengths[:, None]
        alpha = self.attn_score(torch.sigmoid(self.attn_last(last)[:, None] + self.attn_seq(seq)))
        pooled = (alpha * seq * mask[..., None]).sum(dim=1)
        return self.transform(torch.cat([pooled, last], dim=-1))
