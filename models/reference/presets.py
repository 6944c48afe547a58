"""Named configurations of the reference models: RecBole's defaults and tuned presets.

A preset is RecBole parameter overrides, written down once: ``default`` is
overall.yaml and each model's yaml as transcribed (issue #2's bar); ``tuned`` is
a configuration widely used with RecBole that scores higher on ml-100k (issue
#22). ``bench reference --reference-config NAME`` selects one; each preset
checkpoints under its own name and every result row records which one it used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import Enum
from typing import Any

from models.reference import REFERENCE_MODELS
from models.reference.gru4rec import GRU4RecConfig
from models.reference.trainer import OverallConfig


class ReferencePreset(str, Enum):
    """Which configuration a reference trains with."""

    DEFAULT = "default"  # RecBole 1.2.1's overall.yaml and model yaml
    TUNED = "tuned"


@dataclass(frozen=True)
class ReferenceConfig:
    """Everything a preset sets: overall.yaml values and the model's own hyper-parameters.

    ``model`` is the model's config dataclass (``None``: its yaml defaults).
    """

    preset: ReferencePreset
    overall: OverallConfig
    model: Any | None = None

    def describe(self) -> dict[str, Any]:
        """The JSON a bench row records (``model`` empty at the yaml defaults)."""
        return {"preset": self.preset.value, "overall": asdict(self.overall),
                "model": asdict(self.model) if self.model is not None else {}}


# The tuned GRU4Rec of issue #22: batch 256 (RecBole: 2048) and early stopping on
# valid NDCG@10 (RecBole: MRR@10); Adam lr 1e-3, patience 10 and the network
# (embedding 64, hidden 128, one layer, dropout 0.3) are RecBole's values, spelled
# out so the preset says the whole configuration.
_TUNED: dict[str, tuple[dict[str, Any], Any]] = {
    "gru4rec": ({"train_batch_size": 256, "learning_rate": 1e-3, "stopping_step": 10,
                 "valid_metric": "NDCG@10"},
                GRU4RecConfig(embedding_size=64, hidden_size=128, num_layers=1,
                              dropout_prob=0.3)),
}


def reference_config(name: str, preset: ReferencePreset | str = ReferencePreset.DEFAULT,
                     seed: int = OverallConfig.seed) -> ReferenceConfig:
    """The configuration of reference ``name`` under ``preset``, seeded with ``seed``.

    Raises:
        ValueError: unknown model, unknown preset, or a preset with no entry for ``name``.
    """
    if name not in REFERENCE_MODELS:
        raise ValueError(f"no reference for {name!r}; choose one of {', '.join(REFERENCE_MODELS)}")
    try:
        preset = ReferencePreset(preset)
    except ValueError:
        raise ValueError(f"unknown reference configuration {preset!r}; choose one of "
                         f"{', '.join(p.value for p in ReferencePreset)}") from None
    overall = OverallConfig(seed=seed)
    if preset is ReferencePreset.DEFAULT:
        return ReferenceConfig(preset, overall)
    if name not in _TUNED:
        raise ValueError(f"no {preset.value} configuration for {name}; "
                         f"{preset.value} exists for {', '.join(_TUNED)}")
    overrides, model = _TUNED[name]
    return ReferenceConfig(preset, replace(overall, **overrides), model)
