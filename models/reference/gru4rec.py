"""Transcribes recbole/model/sequential_recommender/gru4rec.py and
recbole/properties/model/GRU4Rec.yaml (RecBole 1.2.1). MIT licence, RecBole team.

Only ``loss_type: CE`` is transcribed (RecBole's default); the BPR branch is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.init import xavier_normal_, xavier_uniform_

from models.reference.abstract import SequentialRecommender


@dataclass(frozen=True)
class GRU4RecConfig:
    """GRU4Rec.yaml defaults."""

    embedding_size: int = 64
    hidden_size: int = 128
    num_layers: int = 1
    dropout_prob: float = 0.3


class GRU4Rec(SequentialRecommender):
    """GRU4Rec: embedding -> dropout -> GRU (no bias) -> dense; output at the last real position."""

    config_type = GRU4RecConfig

    def __init__(self, n_items: int, max_seq_length: int = 50,
                 config: GRU4RecConfig | None = None) -> None:
        super().__init__(n_items, max_seq_length)
        config = config or GRU4RecConfig()
        self.config = config
        self.embedding_size = config.embedding_size
        self.hidden_size = config.hidden_size
        self.num_layers = config.num_layers
        self.dropout_prob = config.dropout_prob

        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size, padding_idx=0)
        self.emb_dropout = nn.Dropout(self.dropout_prob)
        self.gru_layers = nn.GRU(input_size=self.embedding_size, hidden_size=self.hidden_size,
                                 num_layers=self.num_layers, bias=False, batch_first=True)
        self.dense = nn.Linear(self.hidden_size, self.embedding_size)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):
            xavier_normal_(module.weight)
        elif isinstance(module, nn.GRU):
            xavier_uniform_(module.weight_hh_l0)
            xavier_uniform_(module.weight_ih_l0)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` items, ``[B]`` lengths -> ``[B, embedding_size]``."""
        item_seq_emb = self.item_embedding(item_seq)
        item_seq_emb_dropout = self.emb_dropout(item_seq_emb)
        gru_output, _ = self.gru_layers(item_seq_emb_dropout)
        gru_output = self.dense(gru_output)
        return self.gather_indexes(gru_output, item_seq_len - 1)
