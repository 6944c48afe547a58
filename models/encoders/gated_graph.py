"""SR-GNN-style gated graph encoder over typed, weighted edges (LLMRG's graph encoder).

SR-GNN (Wu et al., AAAI 2019) updates every node from two messages, one along
the edges (incoming) and one against them (outgoing), each normalized by the
receiving node's degree, through GRU gates; a soft-attention readout over the
session plus the last node gives the session vector. LLMRG encodes its
reasoning and divergent graphs this way. This version adds what those graphs
need and plain SR-GNN lacks:

* **typed edges**: each edge type (sequence, chain, diverge...) has its own
  in- and out-transform, so a chain link and a window neighbour say different
  things;
* **edge weights**: a message is scaled by its edge's weight (a chain's
  verification score, an intent's similarity to an item) before the degree
  normalization, which stays a count as in SR-GNN so a low score is not
  normalized away;
* **heterogeneous nodes**: item nodes read the shared item embedding table,
  intent nodes a projected intent table (text-encoder vectors), and every
  node adds a learned embedding of its kind;
* **empty graphs** (an empty divergent graph) give a zero row.

With one edge type, unit weights and one node kind it is SR-GNN's encoder.
Inputs are :class:`models.graph_data.GraphData` graphs or their ``Batch``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import MessagePassing

from models.graph_data import INTENT, NUM_EDGE_TYPES, NUM_NODE_KINDS


class TypedGatedConv(MessagePassing):
    """One gated propagation step over typed, weighted edges in both directions.

    ``a_in[v] = sum_{u->v} w_uv / indeg(v) * W_in[type] h_u + b_in``, ``a_out``
    the same over flipped edges with ``W_out`` and out-degrees, then
    ``h' = GRUCell([a_in; a_out], h)``.

    Args:
        hidden: node state size ``d``.
        num_edge_types: number of edge types ``T`` (``edge_type`` in ``0..T-1``).

    Shapes:
        ``h [N, d]``, ``edge_index [2, E]``, ``edge_type [E]``, ``edge_weight [E]``
        -> ``[N, d]``.
    """

    def __init__(self, hidden: int, num_edge_types: int) -> None:
        # node_dim=0: messages are gathered from [N, T, d] typed states.
        super().__init__(aggr="add", node_dim=0)
        self.hidden = hidden
        self.num_edge_types = num_edge_types
        self.weight_in = nn.Parameter(torch.empty(num_edge_types, hidden, hidden))
        self.weight_out = nn.Parameter(torch.empty(num_edge_types, hidden, hidden))
        self.bias_in = nn.Parameter(torch.empty(hidden))
        self.bias_out = nn.Parameter(torch.empty(hidden))
        self.gru = nn.GRUCell(2 * hidden, hidden)

    def forward(self, h: Tensor, edge_index: Tensor, edge_type: Tensor,
                edge_weight: Tensor) -> Tensor:
        a_in = self._direction(h, edge_index, edge_type, edge_weight, self.weight_in)
        a_out = self._direction(h, edge_index.flip(0), edge_type, edge_weight, self.weight_out)
        return self.gru(torch.cat([a_in + self.bias_in, a_out + self.bias_out], dim=-1), h)

    def _direction(self, h: Tensor, edge_index: Tensor, edge_type: Tensor, edge_weight: Tensor,
                   weight: Tensor) -> Tensor:
        n = h.shape[0]
        receiver = edge_index[1]
        degree = torch.bincount(receiver, minlength=n).clamp(min=1).to(h.dtype)
        norm = edge_weight.to(h.dtype) / degree[receiver]
        typed = torch.einsum("nd,tde->nte", h, weight)             # [N, T, d]
        return self.propagate(edge_index, x=typed, edge_type=edge_type, norm=norm, size=(n, n))

    def message(self, x_j: Tensor, edge_type: Tensor, norm: Tensor) -> Tensor:
        rows = torch.arange(x_j.shape[0], device=x_j.device)
        return x_j[rows, edge_type] * norm.unsqueeze(-1)


class GatedGraphEncoder(nn.Module):
    """Graph -> session vector: node features, gated propagation, attention readout.

    Args:
        item_embedding: the item table ``[n_items + 1, d]``; shared (not
            copied) with whoever passes it, e.g. the fusion's output table.
        steps: gated propagation steps.
        num_edge_types: edge types the graphs use.
        num_node_kinds: node kinds the graphs use.
        intent_vectors: optional frozen intent table ``[n_intents, text_dim]``
            (text-encoder vectors; row 0 = unknown), projected to ``d``. It is
            a buffer: saved in the state dict, never trained.
        num_intents: rows of the intent table: with ``text_dim`` (and no
            ``intent_vectors``) a zero frozen table of that shape that a saved
            state dict fills (how a saved run is rebuilt from JSON arguments);
            without either, a learned table of that size instead (0: intent
            nodes carry only their kind embedding).
        text_dim: width of the frozen intent table (0: none).

    Shapes:
        ``forward(data)`` with ``x/intent/node_kind [N]``, ``edge_index [2, E]``,
        ``edge_type/edge_weight [E]``, ``alias_inputs [R]``, ``last [B']`` (one
        per non-empty graph) and ``batch [N]`` -> ``[B, d]``; rows of empty
        graphs are zeros.
    """

    def __init__(self, item_embedding: nn.Embedding, *, steps: int = 1,
                 num_edge_types: int = NUM_EDGE_TYPES, num_node_kinds: int = NUM_NODE_KINDS,
                 intent_vectors: Tensor | None = None, num_intents: int = 0,
                 text_dim: int = 0) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        d = item_embedding.embedding_dim
        self.hidden = d
        self.steps = steps
        self.item_embedding = item_embedding
        self.intent_table: nn.Embedding | None = None
        self.intent_projection: nn.Linear | None = None
        if intent_vectors is None and text_dim > 0:
            if num_intents < 1:
                raise ValueError("a frozen intent table (text_dim) needs num_intents rows")
            intent_vectors = torch.zeros(num_intents, text_dim)
        if intent_vectors is not None:
            if intent_vectors.ndim != 2:
                raise ValueError("intent_vectors must be [n_intents, text_dim]")
            rows, width = intent_vectors.shape
            if (num_intents and num_intents != rows) or (text_dim and text_dim != width):
                raise ValueError(f"intent_vectors are [{rows}, {width}] but num_intents="
                                 f"{num_intents}, text_dim={text_dim}")
            self.register_buffer("intent_vectors", intent_vectors.detach().float().clone())
            self.intent_projection = nn.Linear(width, d)
        elif num_intents > 0:
            self.intent_table = nn.Embedding(num_intents, d)
        self.kind_embedding = nn.Embedding(num_node_kinds, d)
        self.conv = TypedGatedConv(d, num_edge_types)
        self.attn_last = nn.Linear(d, d)
        self.attn_node = nn.Linear(d, d, bias=False)
        self.attn_score = nn.Linear(d, 1, bias=False)
        self.transform = nn.Linear(2 * d, d)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Own weights uniform in ``±1/sqrt(d)`` (SR-GNN); kind embeddings zero.

        The shared item table is left alone: its owner initializes it. Kind
        embeddings start at zero so that, untrained, item nodes read exactly
        their item embedding, as in SR-GNN.
        """
        bound = 1.0 / math.sqrt(self.hidden)
        for name, weight in self.named_parameters():
            if name.startswith("item_embedding."):
                continue
            nn.init.uniform_(weight, -bound, bound)
        nn.init.zeros_(self.kind_embedding.weight)

    def node_features(self, data: Data) -> Tensor:
        """Initial node states ``[N, d]``: item or intent features plus the kind embedding."""
        h = self.item_embedding(data.x)
        is_intent = (data.node_kind == INTENT).unsqueeze(-1)
        if self.intent_projection is not None:
            h = torch.where(is_intent, self.intent_projection(self.intent_vectors[data.intent]), h)
        elif self.intent_table is not None:
            h = torch.where(is_intent, self.intent_table(data.intent), h)
        else:
            h = h.masked_fill(is_intent, 0.0)
        return h + self.kind_embedding(data.node_kind)

    def forward(self, data: Data) -> Tensor:
        h = self.node_features(data)
        for _ in range(self.steps):
            h = self.conv(h, data.edge_index, data.edge_type, data.edge_weight)
        num_graphs = int(data.num_graphs) if "ptr" in data else 1
        batch = data.batch if "batch" in data else h.new_zeros(h.shape[0], dtype=torch.long)
        out = h.new_zeros(num_graphs, self.hidden)
        if data.last.numel() == 0:          # every graph empty
            return out
        rows = batch[data.last]             # graphs that have a readout
        v_last = out.index_copy(0, rows, h[data.last])                  # [B, d]
        nodes = data.alias_inputs
        graph_of = batch[nodes]
        v = h[nodes]                                                     # [R, d]
        alpha = self.attn_score(torch.sigmoid(self.attn_last(v_last)[graph_of] + self.attn_node(v)))
        pooled = out.index_add(0, graph_of, alpha * v)
        session = self.transform(torch.cat([pooled, v_last], dim=-1))
        # transform's bias would give empty graphs a non-zero row: zero them so
        # "no graph" and "graph zeroed out" mean the same to the fusion.
        has_graph = torch.zeros(num_graphs, dtype=torch.bool, device=h.device)
        has_graph[rows] = True
        return torch.where(has_graph.unsqueeze(-1), session, out)
