"""Faithful transcriptions of RecBole 1.2.1's GRU4Rec, SASRec and SRGNN (MIT licence, RecBole team).

Used only as the side-by-side reference of issue #2's accuracy bar
(``reasonrec bench reference``): the same ``loo`` split and metric code as our
models, RecBole's own networks, default hyper-parameters and training
semantics (per-prefix augmentation, batch 2048, Adam 1e-3, early stopping on
valid MRR@10 with ``stopping_step`` 10). RecBole itself is never imported.
"""

from __future__ import annotations

from models.reference.abstract import SequentialRecommender
from models.reference.gru4rec import GRU4Rec
from models.reference.sasrec import SASRec
from models.reference.srgnn import SRGNN

#: Our model name -> RecBole class transcribed here.
REFERENCE_MODELS: dict[str, type[SequentialRecommender]] = {
    "gru4rec": GRU4Rec,
    "sasrec": SASRec,
    "srgnn": SRGNN,
}

__all__ = ["GRU4Rec", "REFERENCE_MODELS", "SASRec", "SRGNN", "SequentialRecommender"]
