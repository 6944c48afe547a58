"""Run directories: each training run saves checkpoint, config and metrics JSON.

Layout: ``RUNS_ROOT/DATASET/MODEL/YYYYmmdd-HHMMSS-xxxx/`` holding ``model/``
(the checkpoint), ``config.json``, ``metrics.json`` and ``fit.json``. A run
directory is written under a temporary name and renamed when complete, so a
killed training never leaves a run that ``latest_run`` would pick up.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from models.data.atomic import publish_dir
from models.evaluation import evaluate
from models.protocol import LeaveOneOut
from models.recommenders import Recommender, TrainConfig, create, model_class
from models.recommenders.base import resolve_device


@dataclass
class RunInfo:
    directory: Path
    model: Recommender
    metrics: dict
    fit: dict


def train_and_save(name: str, split: LeaveOneOut, dataset_name: str, runs_root: Path,
                   params: dict | None = None, train: TrainConfig | None = None) -> RunInfo:
    """Train model ``name`` on ``split``, evaluate on valid and test, save the run."""
    train = train or TrainConfig()
    model = create(name, split.n_items, params)
    # A caller may hold torch.no_grad() (scoring code that trains a missing run on demand);
    # training needs autograd whatever the caller's mode.
    with torch.enable_grad():
        report = model.fit(split, train)
    device = resolve_device(train.device) if name != "pop" else None
    metrics = {
        "model": name,
        "protocol": "loo",
        "dataset": dataset_name,
        "n_users": int(len(split.test.targets)),
        "valid": evaluate(model, split, "valid", train.eval_batch_size, device),
        "test": evaluate(model, split, "test", train.eval_batch_size, device),
    }
    parent = Path(runs_root).expanduser() / dataset_name / name
    parent.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    staging = parent / f".{run_id}.partial"
    try:
        model.save(staging / "model")
        config = {"model": name, "dataset": dataset_name, "max_len": split.max_len,
                  "params": model.params.model_dump(), "train": train.model_dump()}
        (staging / "config.json").write_text(json.dumps(config, indent=2))
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (staging / "fit.json").write_text(report.model_dump_json(indent=2))
        publish_dir(staging, parent / run_id)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RunInfo(parent / run_id, model, metrics, report.model_dump())


def complete_runs(runs_root: Path, dataset_name: str, name: str) -> list[Path]:
    """Complete runs of ``name`` on ``dataset_name``, oldest first (run ids sort by time).

    A run in progress is a hidden staging directory and has no ``metrics.json`` yet.
    """
    model_class(name)  # validates the name
    parent = Path(runs_root).expanduser() / dataset_name / name
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / "metrics.json").exists())


def latest_run(runs_root: Path, dataset_name: str, name: str) -> Path | None:
    """Newest complete run of ``name`` on ``dataset_name``, or None."""
    runs = complete_runs(runs_root, dataset_name, name)
    return runs[-1] if runs else None


def load_run(run_dir: Path, device: str = "auto") -> tuple[Recommender, dict, dict]:
    """Load a saved run: the model, its config and its metrics."""
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    model = model_class(config["model"]).load(run_dir / "model", device=device)
    return model, config, metrics


def shipped_runs_dir() -> Path:
    """Trained runs shipped with the project (``assets/runs``): the app starts without training."""
    return Path(__file__).resolve().parents[1] / "assets" / "runs"


def seed_runs(runs_root: Path, dataset_name: str, shipped: Path | None = None) -> list[Path]:
    """Copy shipped runs of ``dataset_name`` into ``runs_root`` where they are missing.

    A run is copied under its own id, to a temporary name first, so the copy
    is complete or absent. Runs trained locally are never touched, and a newer
    local run of the same model wins (``latest_run`` picks the newest id).

    Returns:
        The run directories copied now.
    """
    source = (shipped or shipped_runs_dir()) / dataset_name
    if not source.is_dir():
        return []
    copied = []
    for run in sorted(p for p in source.glob("*/*") if p.is_dir() and not p.name.startswith(".")):
        target = Path(runs_root).expanduser() / dataset_name / run.parent.name / run.name
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{run.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            shutil.copytree(run, staging)
            publish_dir(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        copied.append(target)
    return copied


def shipped_bench(dataset: str, name: str) -> Path:
    """The bench result shipped with the studio for ``dataset`` (``assets/bench/<dataset>/
    <name>.json``, measured when the shipped runs and graphs were made); it may not exist."""
    return Path(__file__).resolve().parents[1] / "assets" / "bench" / dataset / f"{name}.json"
