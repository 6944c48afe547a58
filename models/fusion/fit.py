"""Fit a fusion strategy with early stopping, rank its targets, save and load its runs.

Training is seeded and deterministic on the CPU: the seed fixes the weight
initialization (drawn inside a forked torch RNG, so callers' random streams
are untouched) and the shuffling order. With ``identity_init`` the fused model
starts as the base model; its validation NDCG@10 is recorded as the report's
``start_valid``. Under ``selection = "trained"`` (the default) early stopping
keeps the best trained epoch, so a fused model always shows what its inputs
do, and a reader compares its ``best_valid`` with ``start_valid``; under
``"best"`` the start counts as epoch 0, so when no epoch beats the base model
the fit keeps the base model's behaviour and says so (``best_epoch == 0``).

Run layout: ``RUNS_ROOT/DATASET/fusion-VARIANT/YYYYmmdd-HHMMSS-xxxx/`` with
``model.pt``, ``fusion.json`` (strategy, JSON constructor arguments,
fingerprint), ``fit.json``, ``metrics.json`` and, for strategies reading
intent nodes, ``intents.json`` (the intent texts in table-row order, so an
explainer of the loaded run maps texts to the rows the model was trained
on; the frozen text-encoder table itself is a buffer in ``model.pt``);
written under a temporary name and renamed when complete, as
:mod:`models.runs` does for base models.
"""

from __future__ import annotations

import json
import math
import secrets
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from models.data.atomic import publish_dir
from models.early_stopping import EarlyStopping
from models.fusion import create
from models.fusion.base import FusionStrategy
from models.fusion.settings import FusionSettings, Selection
from models.fusion.train import FusionSample, score_samples, train_epoch
from models.graph_data import IntentIndex
from models.metrics import mask_padding, metrics_from_ranks, target_ranks
from models.recommenders.base import FitReport


def new_strategy(name: str, n_items: int, base_dim: int, *, seed: int,
                 item_init: Tensor | None, kwargs: Mapping[str, Any]) -> FusionStrategy:
    """A freshly initialized strategy starting as the base model (identity init).

    Args:
        name: registry kind (``llmrg``, ``seqgraph``).
        n_items: real items.
        base_dim: size of E_base.
        seed: weight initialization seed.
        item_init: the base model's item table ``[n_items + 1, base_dim]``.
        kwargs: the strategy's own arguments (``Variant.model_kwargs``).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create(name, n_items, base_dim, item_init=item_init, identity_init=True,
                      **dict(kwargs))


def rank_samples(strategy: FusionStrategy, samples: Sequence[FusionSample],
                 zero: Sequence[str] = ()) -> np.ndarray:
    """0-based rank of each sample's target among all items (history not masked, as ``loo``)."""
    scores = score_samples(strategy, samples, zero=zero)
    targets = torch.tensor([s.target for s in samples], dtype=torch.long)
    return target_ranks(scores, targets).numpy()


def base_ranks(e_base: Tensor, item_table: Tensor, targets: Tensor) -> np.ndarray:
    """0-based target ranks of the base model itself (``E_base @ items.T``).

    Shapes:
        ``e_base [N, d]``, ``item_table [n_items + 1, d]``, ``targets [N]`` -> ``[N]``.
    """
    scores = e_base @ item_table.T
    mask_padding(scores)
    return target_ranks(scores, targets).numpy()


def fit_fusion(strategy: FusionStrategy, train: Sequence[FusionSample],
               valid: Sequence[FusionSample], settings: FusionSettings,
               log: Callable[[str], None] | None = None) -> FitReport:
    """Train ``strategy`` in place; early-stop on validation NDCG@10 (best weights kept).

    Args:
        strategy: from :func:`new_strategy`.
        train: training samples (precomputed E_base).
        valid: validation samples of the same users.
        settings: epochs, patience, batch size, learning rate, weight decay,
            the shuffling seed, and what the strategy's :meth:`~FusionStrategy.freeze`
            and :meth:`~FusionStrategy.attach` hooks keep fixed (``freeze_items``,
            ``freeze_base``).
        log: called with one line per epoch (progress).

    Returns:
        the report; ``start_valid`` is the untrained start's validation metrics, and
        ``best_epoch == 0`` means the start was kept (``selection = "best"`` only).
    """
    if not train or not valid:
        raise ValueError(f"fusion needs training and validation samples, got {len(train)} "
                         f"and {len(valid)}")
    start = time.perf_counter()
    if strategy.validation_choices() or not any(p.requires_grad for p in strategy.parameters()):
        # Nothing to learn by gradient: the start and any choices, picked on validation.
        return _choose_on_validation(strategy, valid, settings, start, log)
    strategy.freeze(settings)
    params = [p for p in strategy.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=settings.learning_rate,
                                 weight_decay=settings.weight_decay)
    strategy.attach(optimizer, settings)
    rng = np.random.default_rng(settings.seed)
    stopper = EarlyStopping(strategy, settings.patience,
                            start=metrics_from_ranks(rank_samples(strategy, valid)),
                            start_is_candidate=settings.selection is Selection.BEST)
    for epoch in range(1, settings.epochs + 1):
        epoch_start = time.perf_counter()
        loss = train_epoch(strategy, train, optimizer, batch_size=settings.batch_size, rng=rng)
        if not math.isfinite(loss):
            raise FloatingPointError(f"fusion loss became {loss} at epoch {epoch}; lower the "
                                     f"learning rate")
        valid_metrics = metrics_from_ranks(rank_samples(strategy, valid))
        stop = stopper.step(epoch, loss, valid_metrics, time.perf_counter() - epoch_start)
        if log is not None:
            log(f"{strategy.name} epoch {epoch}: loss {loss:.4f} valid NDCG@10 "
                f"{valid_metrics['NDCG@10']:.4f} (best {stopper.best_score:.4f} @ "
                f"{stopper.report.best_epoch})")
        if stop:
            break
    report = stopper.restore()
    strategy.eval()
    report.seconds = time.perf_counter() - start
    return report


def _choose_on_validation(strategy: FusionStrategy, valid: Sequence[FusionSample],
                          settings: FusionSettings, start: float,
                          log: Callable[[str], None] | None) -> FitReport:
    """Walk the strategy's validation choices as epochs; keep the best (ties: the earlier)."""
    stopper = EarlyStopping(strategy, settings.patience,
                            start=metrics_from_ranks(rank_samples(strategy, valid)),
                            start_is_candidate=settings.selection is Selection.BEST)
    for epoch, label in enumerate(strategy.validation_choices(), start=1):
        epoch_start = time.perf_counter()
        strategy.apply_choice(epoch - 1)
        valid_metrics = metrics_from_ranks(rank_samples(strategy, valid))
        # Every choice is scored: patience is for noisy training, not a fixed grid.
        stopper.step(epoch, 0.0, valid_metrics, time.perf_counter() - epoch_start)
        if log is not None:
            log(f"{strategy.name} choice {epoch} ({label}): valid NDCG@10 "
                f"{valid_metrics['NDCG@10']:.4f} (best {stopper.best_score:.4f} @ "
                f"{stopper.report.best_epoch})")
    report = stopper.restore()
    strategy.eval()
    report.seconds = time.perf_counter() - start
    return report


# ---------------------------------------------------------------- persistence
def json_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments saved in ``fusion.json``: all but tensors.

    Tensors (the frozen ``intent_vectors``) are buffers of the model and
    travel in ``model.pt``; the JSON keeps their shapes (``num_intents``,
    ``text_dim``) so :func:`load_fusion_run` can rebuild the module first.
    """
    out = {k: v for k, v in kwargs.items() if not isinstance(v, Tensor)}
    json.dumps(out)   # TypeError here, not a half-written run, for anything else
    return out


@dataclass
class FusionRun:
    """A trained fused model and where it came from.

    Attributes:
        variant: the bench variant name.
        strategy: the model (eval mode).
        report: its fit report.
        meta: ``fusion.json``: strategy, kwargs, n_items, base_dim, fingerprint.
        metrics: ``metrics.json`` (validation/test metrics on the sampled users).
        directory: the run directory.
        intents: the intent rows the model was trained with (``intents.json``);
            None for a strategy without intent nodes, or a run saved before
            runs kept them.
    """

    variant: str
    strategy: FusionStrategy
    report: FitReport
    meta: dict[str, Any]
    metrics: dict[str, Any]
    directory: Path
    intents: IntentIndex | None = None


def _parent(runs_root: Path, dataset: str, variant: str) -> Path:
    return Path(runs_root).expanduser() / dataset / f"fusion-{variant}"


def save_fusion_run(runs_root: Path, dataset: str, variant: str, strategy: FusionStrategy,
                    kwargs: Mapping[str, Any], fingerprint: Mapping[str, Any],
                    report: FitReport, metrics: Mapping[str, Any],
                    intents: IntentIndex | None = None) -> FusionRun:
    """Write a complete run directory atomically and return it as a :class:`FusionRun`.

    Args:
        kwargs: the strategy's constructor arguments; tensors among them
            (``intent_vectors``) are left out of ``fusion.json`` (see :func:`json_kwargs`).
        intents: the intent rows the strategy was trained with (``intents.json``).
    """
    parent = _parent(runs_root, dataset, variant)
    parent.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    staging = parent / f".{run_id}.partial"
    meta = {"variant": variant, "strategy": strategy.name, "kwargs": json_kwargs(kwargs),
            "n_items": strategy.n_items, "base_dim": strategy.base_dim,
            "fingerprint": dict(fingerprint)}
    try:
        staging.mkdir()
        state = {k: v.detach().cpu() for k, v in strategy.state_dict().items()}
        torch.save(state, staging / "model.pt")
        (staging / "fusion.json").write_text(json.dumps(meta, indent=2))
        (staging / "fit.json").write_text(report.model_dump_json(indent=2))
        (staging / "metrics.json").write_text(json.dumps(dict(metrics), indent=2))
        if intents is not None:
            (staging / "intents.json").write_text(json.dumps(intents.to_json(), indent=1))
        publish_dir(staging, parent / run_id)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return FusionRun(variant, strategy, report, meta, dict(metrics), parent / run_id, intents)


def load_fusion_run(directory: Path) -> FusionRun:
    """Load a run written by :func:`save_fusion_run` (CPU, eval mode).

    Raises:
        FileNotFoundError: not a complete fusion run directory.
        ValueError: its ``intents.json`` does not fit its intent table.
    """
    directory = Path(directory)
    if not (directory / "fusion.json").is_file() or not (directory / "model.pt").is_file():
        raise FileNotFoundError(f"{directory} is not a fusion run (no fusion.json/model.pt)")
    meta = json.loads((directory / "fusion.json").read_text())
    strategy = create(meta["strategy"], int(meta["n_items"]), int(meta["base_dim"]),
                      identity_init=False, **meta["kwargs"])
    state = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
    strategy.load_state_dict(state)
    strategy.eval()
    report = FitReport.model_validate_json((directory / "fit.json").read_text())
    metrics = json.loads((directory / "metrics.json").read_text())
    intents = None
    if (directory / "intents.json").is_file():
        intents = IntentIndex.from_json(json.loads((directory / "intents.json").read_text()))
        rows = meta["kwargs"].get("num_intents")
        if rows is not None and int(rows) != len(intents):
            raise ValueError(f"{directory}: intents.json has {len(intents)} rows but the model's "
                             f"intent table {rows}")
    return FusionRun(meta["variant"], strategy, report, meta, metrics, directory, intents)


def find_fusion_run(runs_root: Path, dataset: str, variant: str,
                    fingerprint: Mapping[str, Any]) -> Path | None:
    """Newest complete run of ``variant`` trained on exactly ``fingerprint``'s inputs, or None."""
    parent = _parent(runs_root, dataset, variant)
    if not parent.is_dir():
        return None
    wanted = json.loads(json.dumps(dict(fingerprint)))   # JSON-normalized, like the saved one
    for run in sorted((p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      reverse=True):
        try:
            meta = json.loads((run / "fusion.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if meta.get("fingerprint") == wanted:
            return run
    return None
