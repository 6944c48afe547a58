"""RecBole 1.2.1's training semantics for the reference models, on our ``loo`` split.

Transcribes what ``recbole/trainer/trainer.py`` (``Trainer.fit``,
``_train_epoch``, ``_valid_epoch``, ``evaluate``), ``recbole/utils/utils.py``
(``init_seed``, ``early_stopping``), ``SequentialDataset.data_augmentation``
(``recbole/data/dataset/sequential_dataset.py``) and
``recbole/properties/overall.yaml`` do for a sequential model with
``loss_type: CE`` and ``eval_args: {order: TO, split: {LS: valid_and_test},
mode: full}``. MIT licence, RecBole team.

* every prefix of a user's training history is one sample (target ``h[t]``,
  ``t >= 1``, input the up to ``MAX_ITEM_LIST_LENGTH`` items before it),
  right-padded to ``MAX_ITEM_LIST_LENGTH`` with 0, as RecBole stores them;
* seed 2020 before the model is built; the samples are reshuffled each epoch;
* Adam(lr 0.001, weight decay 0), batches of 2048, no gradient clipping;
* after every epoch (``eval_step`` 1) full-ranking validation; early stopping
  on valid MRR@10 (``>=`` counts as better, stop when ``stopping_step`` 10
  epochs in a row are not); the best weights are restored for the test.

An uncapped reference trains for hours on 2 CPU cores, so :func:`fit_reference`
can checkpoint after every epoch (weights, optimizer, every RNG, the log) and
resume from it: a killed run continues where it stopped and ends exactly as an
uninterrupted one would (same thread count).

The split, the ranking and the metrics are ours (:mod:`models.protocol`,
:func:`models.evaluation.rank_targets`, :mod:`models.metrics`): full ranking
over all items, padding column at ``-inf``, history not masked, inputs of at
most 50 items -- exactly what our models are evaluated with.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.memory import peak_rss_mb
from models.evaluation import rank_targets
from models.metrics import metrics_from_ranks
from models.protocol import LeaveOneOut, Split
from models.recommenders.base import resolve_device
from models.reference import REFERENCE_MODELS
from models.reference.abstract import SequentialRecommender


@dataclass(frozen=True)
class OverallConfig:
    """The overall.yaml values the sequential CE training uses."""

    seed: int = 2020
    epochs: int = 300
    train_batch_size: int = 2048
    learning_rate: float = 0.001
    weight_decay: float = 0.0
    stopping_step: int = 10
    eval_step: int = 1
    valid_metric: str = "MRR@10"
    eval_batch_size: int = 4096
    max_item_list_length: int = 50


@dataclass
class PrefixData:
    """Augmented training samples: ``items [S, L]`` (0-padded), ``lengths [S]``, ``targets [S]``."""

    items: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return int(self.targets.shape[0])


def prefix_augmentation(histories: list[np.ndarray], max_len: int = 50) -> PrefixData:
    """RecBole's ``data_augmentation`` on each training history.

    A history ``<i1, i2, i3, i4>`` gives ``<i1> | i2``, ``<i1, i2> | i3`` and
    ``<i1, i2, i3> | i4``; inputs keep the last ``max_len`` items.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    rows: list[np.ndarray] = []
    lengths: list[int] = []
    targets: list[int] = []
    for history in histories:
        history = np.asarray(history, dtype=np.int64)
        for t in range(1, len(history)):
            seq = history[max(0, t - max_len):t]
            rows.append(seq)
            lengths.append(len(seq))
            targets.append(int(history[t]))
    items = np.zeros((len(rows), max_len), dtype=np.int64)
    for r, seq in enumerate(rows):
        items[r, :len(seq)] = seq
    return PrefixData(torch.from_numpy(items), torch.tensor(lengths, dtype=torch.int64),
                      torch.tensor(targets, dtype=torch.int64))


def init_seed(seed: int) -> None:
    """RecBole's ``init_seed(seed, reproducibility=True)`` (CPU part)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def torch_threads(threads: int | None = None) -> Iterator[None]:
    """Torch's CPU thread count set to ``threads`` (when given), restored on exit."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def cpu_deterministic(threads: int | None = None) -> Iterator[None]:
    """Deterministic torch algorithms (and optionally a thread count), restored on exit."""
    before_det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with torch_threads(threads):
            yield
    finally:
        torch.use_deterministic_algorithms(before_det)


class FullSortScorer:
    """Feeds our evaluation like RecBole's full-sort evaluation feeds a model.

    :func:`models.evaluation.rank_targets` pads a batch to its longest input;
    RecBole's item lists are always ``MAX_ITEM_LIST_LENGTH`` wide, so the batch
    is widened with zeros first, then ``full_sort_predict`` scores every id.
    """

    def __init__(self, model: SequentialRecommender, max_len: int) -> None:
        self.model = model
        self.max_len = max_len

    @torch.no_grad()
    def score(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        if items.shape[1] < self.max_len:
            pad = items.new_zeros(items.shape[0], self.max_len - items.shape[1])
            items = torch.cat([items, pad], dim=1)
        return self.model.full_sort_predict(items, lengths)


def evaluate_reference(model: SequentialRecommender, split: LeaveOneOut, which: Split,
                       batch_size: int = 4096,
                       device: torch.device | None = None) -> dict[str, float]:
    """HR/NDCG/MRR at 5, 10, 20 on ``which``, through our ranking and metric code."""
    scorer = FullSortScorer(model, split.max_len)
    ranks = rank_targets(scorer, split.eval_set(which), split.max_len,  # type: ignore[arg-type]
                         batch_size, device)
    return metrics_from_ranks(ranks)


@dataclass
class ReferenceFit:
    """What :func:`fit_reference` did."""

    model: SequentialRecommender
    device: str = "cpu"
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_valid: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    stopped_by: str = ""
    n_train_samples: int = 0
    setup_seconds: float = 0.0
    total_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        epoch_seconds = [e["seconds"] for e in self.epochs]
        n = len(epoch_seconds)
        return {
            "device": self.device,
            "epochs": n,
            "best_epoch": self.best_epoch,
            "stopped_by": self.stopped_by,
            "seconds_per_epoch": sum(epoch_seconds) / n if n else 0.0,
            "train_seconds_per_epoch": sum(e["train_seconds"] for e in self.epochs) / n if n else 0.0,
            "total_seconds": self.total_seconds,
            "seconds_to_best": self.setup_seconds + sum(epoch_seconds[:self.best_epoch]),
            "n_train_samples": self.n_train_samples,
            "valid": self.best_valid,
            "test": self.test,
            "epoch_log": self.epochs,
        }


def _fingerprint(name: str, overall: OverallConfig, data: PrefixData, split: LeaveOneOut,
                 max_batches: int | None, device: torch.device,
                 model_config: Any | None = None) -> str:
    """What a checkpoint must match to be resumed: model, settings, device and the exact samples."""
    digest = hashlib.sha256()
    fields: dict[str, Any] = {"model": name, "overall": asdict(overall), "n_items": split.n_items,
                              "max_batches": max_batches}
    if model_config is not None:  # yaml-default checkpoints keep their old fingerprint
        fields["model_config"] = asdict(model_config)
    if device.type != "cpu":  # CPU checkpoints keep the fingerprint they were saved with
        fields["device"] = device.type
    digest.update(json.dumps(fields, sort_keys=True).encode())
    for tensor in (data.items, data.lengths, data.targets):
        digest.update(tensor.numpy().tobytes())
    digest.update(np.asarray(split.valid.targets, dtype=np.int64).tobytes())
    return digest.hexdigest()


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically: a kill mid-write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def fit_reference(name: str, split: LeaveOneOut, overall: OverallConfig | None = None,
                  max_epochs: int | None = None, max_seconds: float | None = None,
                  max_batches: int | None = None,
                  log: Callable[[str], None] | None = None,
                  checkpoint: Path | None = None,
                  device: str | torch.device = "cpu",
                  model_config: Any | None = None) -> ReferenceFit:
    """Train the reference ``name`` with RecBole's semantics, then test the best epoch.

    Args:
        name: ``gru4rec``, ``sasrec`` or ``srgnn``.
        split: our ``loo`` split (its ``max_len`` must be ``MAX_ITEM_LIST_LENGTH``).
        overall: overall.yaml values (defaults: RecBole's).
        max_epochs: cap below ``overall.epochs`` (tests, quick runs).
        max_seconds: stop after the epoch during which this much training time passed.
        max_batches: train on only the first ``max_batches`` batches of each epoch
            (smoke tests only: RecBole always trains on every sample).
        log: called with one line per epoch.
        checkpoint: file to save the state to after every epoch and to resume
            from when it holds a run of the same model, settings and data (a
            different one is ignored and overwritten). ``max_seconds`` counts
            this call's time only; ``total_seconds`` adds the earlier calls'.
        device: ``cpu`` (default), ``cuda`` or ``auto``. RecBole itself trains on
            the GPU when there is one (``use_gpu``). The weights are built and the
            samples shuffled on the CPU either way, so a run starts identically
            everywhere; on CUDA the dropout stream and the float sums differ.
        model_config: the model's config dataclass (e.g. ``GRU4RecConfig``; default
            its yaml values), as a preset of :mod:`models.reference.presets` sets it.

    Deterministic on CPU for a given thread count. A CUDA run resumed from its
    checkpoint continues with a reseeded CUDA generator, so it is not bit-exact.
    """
    if name not in REFERENCE_MODELS:
        raise ValueError(f"no reference for {name!r}; choose one of {', '.join(REFERENCE_MODELS)}")
    overall = overall or OverallConfig()
    if split.max_len != overall.max_item_list_length:
        raise ValueError(f"split max_len {split.max_len} != MAX_ITEM_LIST_LENGTH "
                         f"{overall.max_item_list_length}")
    start = time.perf_counter()
    data = prefix_augmentation(split.train, overall.max_item_list_length)
    init_seed(overall.seed)
    model = REFERENCE_MODELS[name](split.n_items + 1, overall.max_item_list_length,
                                   model_config)
    device = resolve_device(device) if isinstance(device, str) else device
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=overall.learning_rate,
                                 weight_decay=overall.weight_decay)
    shuffle = torch.Generator().manual_seed(overall.seed)
    fit = ReferenceFit(model=model, device=device.type, n_train_samples=len(data))
    fit.setup_seconds = time.perf_counter() - start
    epochs = min(overall.epochs, max_epochs) if max_epochs else overall.epochs
    best_score, best_state, cur_step = -np.inf, None, 0
    fit.stopped_by = "epochs"
    metric = overall.valid_metric
    fingerprint = _fingerprint(name, overall, data, split, max_batches, device,
                                model_config) if checkpoint else ""
    first_epoch, earlier_seconds, finished = 1, 0.0, False
    saved = _load_checkpoint(checkpoint, fingerprint, log) if checkpoint else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        shuffle.set_state(saved["shuffle"])
        torch.set_rng_state(saved["torch_rng"])
        kind, keys, pos, has_gauss, cached = saved["numpy_rng"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        random.setstate(saved["python_rng"])
        best_score, best_state = saved["best_score"], saved["best_state"]
        cur_step, fit.epochs = saved["cur_step"], saved["epochs"]
        fit.best_epoch, fit.best_valid = saved["best_epoch"], saved["best_valid"]
        fit.setup_seconds = saved["setup_seconds"]
        earlier_seconds, finished = saved["seconds"], saved["stopped_by"] == "early_stopping"
        first_epoch = len(fit.epochs) + 1
        if finished:
            fit.stopped_by = "early_stopping"
        if log:
            log(f"{name}: resuming from {checkpoint} after epoch {len(fit.epochs)}"
                + (" (already early-stopped)" if finished else ""))
    for epoch in range(first_epoch, epochs + 1):
        if finished:
            break
        epoch_start = time.perf_counter()
        model.train()
        total, batches = 0.0, 0
        order = torch.randperm(len(data), generator=shuffle)
        for b in range(0, len(order), overall.train_batch_size):
            if max_batches is not None and batches >= max_batches:
                break
            idx = order[b:b + overall.train_batch_size]
            optimizer.zero_grad()
            loss = model.calculate_loss(data.items[idx].to(device), data.lengths[idx].to(device),
                                        data.targets[idx].to(device))
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            batches += 1
        train_seconds = time.perf_counter() - epoch_start
        valid = evaluate_reference(model, split, "valid", overall.eval_batch_size, device)
        seconds = time.perf_counter() - epoch_start
        # threads and peak RSS per epoch: a run resumed from its checkpoint still reports
        # what its training used, not what the resuming process did
        fit.epochs.append({"epoch": epoch, "loss": total / max(batches, 1),
                           "valid_mrr10": valid["MRR@10"], "valid_ndcg10": valid["NDCG@10"],
                           "train_seconds": train_seconds, "seconds": seconds,
                           "torch_threads": torch.get_num_threads(),
                           "peak_rss_mb": peak_rss_mb()})
        # recbole.utils.early_stopping(..., bigger=True)
        if valid[metric] >= best_score:
            best_score, cur_step = valid[metric], 0
            best_state = copy.deepcopy(model.state_dict())
            fit.best_epoch, fit.best_valid = epoch, valid
        else:
            cur_step += 1
        if log:
            log(f"{name} epoch {epoch}: loss {total / max(batches, 1):.4f} valid {metric} "
                f"{valid[metric]:.4f} NDCG@10 {valid['NDCG@10']:.4f} (best @ {fit.best_epoch}) "
                f"{seconds:.1f}s")
        stop = cur_step > overall.stopping_step
        if checkpoint:
            _save_checkpoint(checkpoint, {
                "fingerprint": fingerprint, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "shuffle": shuffle.get_state(),
                "torch_rng": torch.get_rng_state(), "numpy_rng": _numpy_rng_state(),
                "python_rng": random.getstate(), "best_score": best_score,
                "best_state": best_state, "cur_step": cur_step, "epochs": fit.epochs,
                "best_epoch": fit.best_epoch, "best_valid": fit.best_valid,
                "setup_seconds": fit.setup_seconds,
                "seconds": earlier_seconds + time.perf_counter() - start,
                "stopped_by": "early_stopping" if stop else ""})
        if stop:
            fit.stopped_by = "early_stopping"
            break
        if max_seconds is not None and time.perf_counter() - start >= max_seconds:
            fit.stopped_by = "time_cap" if epoch < epochs else "epochs"
            break
    else:
        if not finished:
            fit.stopped_by = "epoch_cap" if epochs < overall.epochs else "epochs"
    if best_state is not None:
        model.load_state_dict(best_state)
    fit.test = evaluate_reference(model, split, "test", overall.eval_batch_size, device)
    fit.total_seconds = earlier_seconds + time.perf_counter() - start
    return fit


def _numpy_rng_state() -> tuple[Any, ...]:
    """NumPy's global RNG state with its key array as a tensor (loadable with ``weights_only``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))


def _load_checkpoint(path: Path, fingerprint: str,
                     log: Callable[[str], None] | None) -> dict[str, Any] | None:
    """The saved state at ``path`` if it is a run of this exact setup, else ``None``."""
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged file is not worth a crash: start over
        if log:
            log(f"{path}: unreadable checkpoint ({error}); starting over")
        return None
    if not isinstance(saved, dict) or saved.get("fingerprint") != fingerprint:
        if log:
            log(f"{path}: checkpoint of another model, setting or dataset; starting over")
        return None
    return saved
