"""Settings of fused training, evaluation and explanation, validated by pydantic.

They are the ``[fusion]`` section of the studio config (``StudioConfig.fusion``),
so a bad value is reported like any other config error, naming the file or
flag and the dotted field (``fusion.users``); flags override the section.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The registry is plain data: validating a config does not import torch-geometric.
from models.fusion.registry import VARIANT_NAMES

#: The bench compares base and fused on a sample of users; fewer than this and
#: the paired confidence intervals are too wide to say anything (issue #4).
MIN_BENCH_USERS = 300


class Selection(StrEnum):
    """Which fitted state early stopping keeps, on validation NDCG@10.

    Every strategy starts as the base model (identity initialisation; LM
    reranking at weight 0). ``TRAINED`` keeps the best *trained* epoch (or
    validation choice), so the fused model always shows what its inputs do,
    and the start's score is reported beside it; ``BEST`` lets the untrained
    start win, so a fit where no epoch beats the base model keeps the base
    model's behaviour (its rankings, and every explanation effect, are then
    those of the base).
    """

    TRAINED = "trained"
    BEST = "best"


class FusionSettings(BaseModel):
    """Everything the fused models read: data sample, training, evaluation, explanation.

    Attributes:
        variant: the fused model ``explain`` and the app use (a variant of
            ``models.fusion.registry.VARIANTS``).
        base_model: the frozen base recommender giving E_base: ``best`` picks the
            saved neural run with the highest validation NDCG@10 (all users),
            or a model name.
        base_fallback: trained when ``base_model = "best"`` finds no saved run.
        graphs: where reasoning graphs come from: ``auto`` (the reasoning
            builder's store, then the shipped bundle), ``store``, ``bundle``,
            ``genre`` (the LLM-free stand-in) or a path (a directory of graph
            JSON files or a ``.jsonl.gz`` bundle).
        users: size of the seeded user sample (the LLM-time budget).
        seed: seeds the user sample, weight init, shuffling and the bootstrap.
        window: session window of the ``genre`` stand-in (``l_tru``); LLM graphs
            bring their own window.
        train_steps: how many of each user's last training targets the prefix
            graphs serve (besides the validation and test targets).
        gnn_steps: gated propagation steps of the graph encoders.
        epochs, patience: early stopping on the sample's validation NDCG@10.
        selection: whether early stopping may keep the untrained start
            (:class:`Selection`; default: the best trained epoch).
        freeze_items: keep the item table at the base model's embeddings. The
            sample is a few thousand cases: training 1,700 item vectors on
            them mostly overfits.
        freeze_base: keep the fused layer's E_base block at the identity and
            its bias at zero, so the fused vector is ``E_base + W [E_1; ...]``:
            training learns only what the graphs add. The training targets are
            ones the base model was trained on, where E_base is overconfident;
            left free, the layer spends its epochs re-scaling E_base to them,
            which does not carry over to validation, and every variant ends up
            the same re-scaled base model.
        bootstrap: paired bootstrap resamples for the 95% intervals.
        k: top-k of explanations and of fidelity ("is the item still in the top-k").
        latency_users: users timed for counterfactual rescoring in the bench.
        faithfulness_users: users whose top-k explanations feed the bench's
            faithfulness aggregates.
        random_orders: seeded random deletion orders per item.
        max_paths: explanation paths kept per item (the strongest by effect).
    """

    model_config = ConfigDict(extra="forbid")

    variant: str = "llmrg"
    base_model: str = "best"
    base_fallback: str = "sasrec"
    graphs: str = "auto"
    users: int = Field(MIN_BENCH_USERS, ge=1)
    seed: int = 2020
    window: int = Field(10, ge=2, le=200)
    train_steps: int = Field(8, ge=0, le=200)
    gnn_steps: int = Field(1, ge=1, le=8)
    epochs: int = Field(100, ge=1)
    patience: int = Field(5, ge=1)
    selection: Selection = Selection.TRAINED
    batch_size: int = Field(128, ge=1)
    # chosen on validation NDCG@10 of the llmrg variant (300-user sample): 1e-3 0.0853
    # (best epoch 1), 3e-4 0.0889, 1e-4 0.0904 (best epoch 6)
    learning_rate: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    freeze_items: bool = True
    freeze_base: bool = True
    bootstrap: int = Field(1000, ge=10)
    k: int = Field(10, ge=1, le=1000)
    latency_users: int = Field(100, ge=1)
    faithfulness_users: int = Field(100, ge=1)
    random_orders: int = Field(10, ge=1, le=1000)
    max_paths: int = Field(8, ge=1, le=64)

    @field_validator("variant")
    @classmethod
    def _known_variant(cls, value: str) -> str:
        if value not in VARIANT_NAMES:
            raise ValueError(f"unknown variant {value!r}; choose one of "
                             f"{', '.join(VARIANT_NAMES)}")
        return value

    @field_validator("base_model", "base_fallback")
    @classmethod
    def _known_base(cls, value: str) -> str:
        from models.recommenders import MODEL_NAMES
        allowed = [n for n in MODEL_NAMES if n != "pop"]
        if value == "best" or value in allowed:
            return value
        raise ValueError(f"unknown base model {value!r}; choose best or one of "
                         f"{', '.join(allowed)} (fusion needs a neural model's E_base)")

    def training_key(self) -> dict[str, Any]:
        """The settings a trained fused model depends on (part of its run fingerprint)."""
        return self.model_dump(include={"users", "seed", "window", "train_steps", "gnn_steps",
                                        "epochs", "patience", "batch_size", "learning_rate",
                                        "weight_decay", "freeze_items",
                                        "freeze_base", "selection"})

