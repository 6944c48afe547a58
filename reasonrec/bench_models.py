"""``reasonrec bench models``: train each base model and report speed, memory and accuracy.

Each model trains in a fresh Python process, so its peak RSS is its own (not
the largest of the models trained before it in the same process). The child
trains through :class:`reasonrec.studio.Studio`, which saves the run like
``reasonrec train`` does, and prints one JSON line with its measurements.

Usage of the child (internal): ``python -m reasonrec.bench_models MODEL`` with the
studio config as JSON on stdin.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import torch

from models.memory import peak_gpu_mb, peak_rss_mb
from models.recommenders import MODEL_NAMES, model_class
from models.recommenders.base import resolve_device

if TYPE_CHECKING:
    from reasonrec.config import StudioConfig


def bench_models(config: StudioConfig, names: list[str] | None = None,
                 seeds: list[int] | None = None) -> dict[str, Any]:
    """Train ``names`` (default: all models) one after another, each in a fresh process.

    Test NDCG@10 on ml-100k can move by 0.01 from one seed to another (943
    test users), so one seed cannot tell two close models apart: ``seeds`` trains
    each model once per seed and the summary gives the mean and spread.

    Args:
        config: studio config; its ``train`` section and ``[models.NAME]`` params apply
            (the progress bar is turned off).
        names: models to run, in order.
        seeds: training seeds (default: the config's ``train.seed`` only).

    Returns:
        ``{"dataset", "protocol", "machine", "seeds", "models": [row, ...], "summary":
        [per model, ...]}``; each row has ``model, seed, seconds_per_epoch, epochs,
        best_epoch, total_seconds, seconds_to_best, peak_rss_mb, valid, test,
        run_dir``; each summary has ``model, seeds``, the means of the timings and
        the mean and standard deviation of each test metric.
    """
    names = list(names or MODEL_NAMES)
    for name in names:
        model_class(name)  # fail on a typo before spending minutes on the others
    seeds = list(seeds) if seeds else [config.train.seed]
    rows = []
    for name in names:
        for seed in seeds:
            train = config.train.model_copy(update={"seed": seed})
            seeded = config.model_copy(update={"train": train})
            rows.append({**_run_child(name, child_config_json(seeded)), "seed": seed})
    return {
        "dataset": rows[0]["dataset"] if rows else None,
        "protocol": "loo",
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "device": str(resolve_device(config.train.device)),
                    "platform": platform.platform(), "python": platform.python_version()},
        "seeds": seeds,
        "models": [{k: v for k, v in row.items() if k != "dataset"} for row in rows],
        "summary": [summarize_seeds([r for r in rows if r["model"] == name]) for name in names],
    }


def summarize_seeds(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One model's bench rows (one per seed): mean timings, test metrics' mean and std.

    The standard deviation is the sample one (``ddof=1``), 0 for a single seed.
    """
    mean = statistics.fmean

    def std(values: list[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else 0.0

    summary: dict[str, Any] = {"model": rows[0]["model"], "seeds": [r["seed"] for r in rows]}
    for key in ("seconds_per_epoch", "total_seconds", "seconds_to_best", "peak_rss_mb"):
        summary[key] = mean([r[key] for r in rows])
    summary["max_seconds_to_best"] = max(r["seconds_to_best"] for r in rows)
    summary["test_mean"] = {m: mean([r["test"][m] for r in rows]) for m in rows[0]["test"]}
    summary["test_std"] = {m: std([r["test"][m] for r in rows]) for m in rows[0]["test"]}
    return summary


def child_config_json(config: StudioConfig) -> str:
    """The config a bench child trains with: the caller's, without the progress bar.

    Only the fields the caller set travel: a ``[train]`` batch size or learning
    rate nobody set must stay unset in the child, or it would override each
    model's own tuned values (``TrainConfig`` overrides only fields set explicitly).
    """
    return config.model_copy(update={"train": config.train.model_copy(
        update={"progress": False})}).model_dump_json(exclude_unset=True)


def _run_child(name: str, config_json: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "reasonrec.bench_models", name],
                            input=config_json,
                            capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"benchmark of {name} failed (exit {result.returncode}):\n{tail}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _child(name: str, config_json: str) -> dict[str, Any]:
    """Train ``name`` in this process and measure it (run by :func:`bench_models`)."""
    from reasonrec.config import StudioConfig
    from reasonrec.studio import Studio

    config = StudioConfig.model_validate_json(config_json)
    studio = Studio(config)
    split = studio.split  # load data before timing starts
    info = studio.train(name)
    fit = info.fit
    epoch_seconds = [e["seconds"] for e in fit["epochs"]]
    # Pop has no epochs: its one counting pass is its epoch.
    epochs = len(epoch_seconds) or 1
    best = fit["best_epoch"] or epochs
    setup = fit["seconds"] - sum(epoch_seconds)
    to_best = setup + sum(epoch_seconds[:best]) if epoch_seconds else fit["seconds"]
    return {
        "model": name,
        "seconds_per_epoch": sum(epoch_seconds) / epochs if epoch_seconds else fit["seconds"],
        "epochs": epochs,
        "best_epoch": best,
        "total_seconds": fit["seconds"],
        "seconds_to_best": to_best,
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": peak_gpu_mb(),
        "device": resolve_device(config.train.device).type,
        "n_users": len(split.test.targets),
        "valid": info.metrics["valid"],
        "test": info.metrics["test"],
        "run_dir": str(info.directory),
        "dataset": info.metrics["dataset"],
    }


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], sys.stdin.read())))
