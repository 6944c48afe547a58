"""GRU4Rec (Hidasi et al., 2016) in RecBole's form, trained on all positions.

Item embedding -> dropout -> GRU -> linear projection back to the embedding
size; the projection at the last real position is the session representation,
scored against the (tied) item embeddings with a full softmax.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import nn

from models.recommenders.neural import NeuralParams, WindowedSequenceModel


class GRU4RecParams(NeuralParams):
    """GRU4Rec hyper-parameters (defaults are the values tuned on ml-100k)."""

    embedding_size: int = Field(64, ge=1)
    hidden_size: int = Field(128, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.3, ge=0, lt=1, description="on the input item embeddings")
    max_len: int = Field(50, ge=1, description="longest input; older items are dropped")
    window_stride: int = Field(10, ge=1, description="step between training windows")
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)


class GRU4Rec(WindowedSequenceModel):
    """Session-based recommendation with a GRU over the item sequence.

    Args:
        n_items: number of real items (indices 1..n_items; 0 is padding).
        params: :class:`GRU4RecParams`.

    Shapes:
        ``score(items [B, L], lengths [B]) -> [B, n_items + 1]``;
        ``encode(items, lengths) -> [B, embedding_size]``.
    """

    name = "gru4rec"
    params_type = GRU4RecParams
    params: GRU4RecParams

    def __init__(self, n_items: int, params: GRU4RecParams | None = None) -> None:
        super().__init__(n_items, params)
        p = self.params
        self.item_embedding = nn.Embedding(n_items + 1, p.embedding_size, padding_idx=0)
        self.emb_dropout = nn.Dropout(p.dropout)
        self.gru = nn.GRU(p.embedding_size, p.hidden_size, num_layers=p.num_layers,
                          bias=False, batch_first=True)
        self.dense = nn.Linear(p.hidden_size, p.embedding_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal embedding, Xavier-uniform GRU weights (as RecBole)."""
        nn.init.xavier_normal_(self.item_embedding.weight)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        for name, weight in self.gru.named_parameters():
            if "weight" in name:
                nn.init.xavier_uniform_(weight)
        bound = 1 / math.sqrt(self.params.hidden_size)
        nn.init.uniform_(self.dense.weight, -bound, bound)
        nn.init.uniform_(self.dense.bias, -bound, bound)

    def item_embeddings(self) -> torch.Tensor:
        return self.item_embedding.weight

    def sequence_output(self, items: torch.Tensor) -> torch.Tensor:
        """Causal outputs.

        Args:
            items: ``[B, L]`` right-padded item indices.

        Shapes:
            returns ``[B, L, embedding_size]``.
        """
        emb = self.emb_dropout(self.item_embedding(items))
        out, _ = self.gru(emb)
        return self.dense(out)
