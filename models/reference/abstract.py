"""Transcribes ``SequentialRecommender`` of recbole/model/abstract_recommender.py (RecBole 1.2.1).

MIT licence, RecBole team. RecBole reads its fields from a ``config`` and a
``dataset``; here the two numbers the sequential models need are plain
arguments: ``n_items`` (RecBole's ``dataset.num(ITEM_ID)``: real items + the
padding id 0) and ``max_seq_length`` (``MAX_ITEM_LIST_LENGTH``). Batches are
passed as tensors instead of RecBole's ``Interaction``.
"""

from __future__ import annotations

import torch
from torch import nn


class SequentialRecommender(nn.Module):
    """Base of the sequential reference models (``gather_indexes``, ``get_attention_mask``)."""

    def __init__(self, n_items: int, max_seq_length: int = 50) -> None:
        super().__init__()
        self.n_items = n_items
        self.max_seq_length = max_seq_length

    def gather_indexes(self, output: torch.Tensor, gather_index: torch.Tensor) -> torch.Tensor:
        """Gathers the vectors at the specific positions over a minibatch."""
        gather_index = gather_index.view(-1, 1, 1).expand(-1, -1, output.shape[-1])
        output_tensor = output.gather(dim=1, index=gather_index)
        return output_tensor.squeeze(1)

    def get_attention_mask(self, item_seq: torch.Tensor, bidirectional: bool = False) -> torch.Tensor:
        """Left-to-right uni-directional (or bidirectional) additive attention mask."""
        attention_mask = item_seq != 0
        extended_attention_mask = attention_mask.unsqueeze(1).unsqueeze(2)  # torch.bool
        if not bidirectional:
            extended_attention_mask = torch.tril(
                extended_attention_mask.expand((-1, -1, item_seq.size(-1), -1)))
        return torch.where(extended_attention_mask, 0.0, -10000.0)

    # The three models share these (RecBole repeats them verbatim in each class).
    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def output_item_embeddings(self) -> torch.Tensor:
        """``self.item_embedding.weight``: all ``n_items`` rows, padding included."""
        return self.item_embedding.weight  # type: ignore[no-any-return]

    def calculate_loss(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor,
                       pos_items: torch.Tensor) -> torch.Tensor:
        """CE loss (``loss_type: CE``): softmax over every item id, padding id 0 included."""
        seq_output = self.forward(item_seq, item_seq_len)
        test_item_emb = self.output_item_embeddings()
        logits = torch.matmul(seq_output, test_item_emb.transpose(0, 1))
        return nn.functional.cross_entropy(logits, pos_items)

    def full_sort_predict(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, n_items]`` of every item id (the trainer sets column 0 to -inf)."""
        seq_output = self.forward(item_seq, item_seq_len)
        test_items_emb = self.output_item_embeddings()
        return torch.matmul(seq_output, test_items_emb.transpose(0, 1))
