"""``reasonrec bench reference``: issue #2's side-by-side accuracy bar.

For each of GRU4Rec, SASRec and SR-GNN, trains the transcription of RecBole
1.2.1's model (:mod:`models.reference`) with RecBole's defaults (or a named
preset of :mod:`models.reference.presets`, e.g. GRU4Rec's ``tuned``) and training
semantics on our ``loo`` split, tests it with our metric code, and puts it
next to the test metrics of the latest saved run of our model (trained first
only when no run exists). The bar: our test NDCG@10 >= the reference's.

Each reference trains in a fresh Python process (one at a time), so its peak
RSS is its own, like ``bench models``. Uncapped, a reference trains for hours
on 2 cores, so each one checkpoints every epoch under
``<bench_dir>/reference/<dataset>-<model>[-<preset>][-seed<N>].ckpt`` (no suffix
for the default preset or RecBole's seed 2020) and a rerun resumes it (``fresh``
starts over); a finished one is only re-tested (its threads and peak RSS are the
training's, saved per epoch; checkpoints older than that report the re-test's
RSS). With several seeds the bar is judged mean against mean: one reference seed
moves test NDCG@10 as much as one of ours does. Usage of the child (internal):
``python -m reasonrec.bench_reference MODEL`` with a JSON request on stdin.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.memory import peak_gpu_mb, peak_rss_mb
from models.recommenders.base import resolve_device
from models.reference.presets import ReferencePreset, reference_config
from reasonrec.bench_models import child_config_json

if TYPE_CHECKING:
    from reasonrec.config import StudioConfig

REFERENCE_NAMES = ("gru4rec", "sasrec", "srgnn")
DEFAULT_SEED = 2020  # RecBole's overall.yaml seed
RECBOLE_CLASS = {"gru4rec": "GRU4Rec", "sasrec": "SASRec", "srgnn": "SRGNN"}
TORCH_THREADS = 2


def bench_reference(config: StudioConfig, names: list[str] | None = None,
                    max_epochs: int | None = None, max_seconds: float | None = None,
                    max_batches: int | None = None, isolate: bool = True,
                    on_row: Callable[[dict[str, Any]], None] | None = None,
                    fresh: bool = False, seeds: list[int] | None = None,
                    threads: int | None = None, device: str = "cpu",
                    preset: ReferencePreset | str = ReferencePreset.DEFAULT) -> dict[str, Any]:
    """Train each reference and compare it with our latest run of the same model.

    Args:
        config: studio config (data, runs dir; ``[models.NAME]`` only matters if
            one of our models has no run and must be trained).
        names: models, in order (default gru4rec, sasrec, srgnn).
        max_epochs: cap on the reference's epochs (RecBole: 300 + early stopping).
        max_seconds: per-model cap on the reference's training time; the epoch
            running when it passes is finished. ``stopped_by`` says what ended it.
        max_batches: smoke tests only: batches per epoch.
        isolate: train each reference in a fresh process (own peak RSS).
        on_row: called with each finished row (the CLI saves partial results).
        fresh: delete the models' checkpoints first instead of resuming them.
        seeds: the reference's seeds (default RecBole's 2020 alone), trained one
            after another; with two or more the row adds ``reference_over_seeds``
            and the bar compares the means.
        threads: torch threads of each reference (its floats depend on them;
            default :data:`TORCH_THREADS`).
        device: ``cpu`` (default: deterministic), ``cuda`` or ``auto``, where the
            references train (RecBole's own default is the GPU when there is one).
        preset: the references' configuration (:mod:`models.reference.presets`);
            each row's ``reference_config`` says what it set.

    Returns:
        ``{"dataset", "protocol", "reference", "machine", "caps", "models": [row, ...]}``.
    """
    from reasonrec.studio import Studio

    names = list(names or REFERENCE_NAMES)
    seeds = list(seeds or [DEFAULT_SEED])
    threads = threads or TORCH_THREADS
    device = str(resolve_device(device))  # fail on a bad name before any training
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat: {seeds}")
    for name in names:
        if name not in REFERENCE_NAMES:
            raise ValueError(f"no reference for {name!r}; choose from {', '.join(REFERENCE_NAMES)}")
    preset = ReferencePreset(preset)
    configs = {name: reference_config(name, preset) for name in names}  # fails before training
    studio = Studio(config)
    caps = {"max_epochs": max_epochs, "max_seconds": max_seconds, "max_batches": max_batches}
    child_config = json.loads(child_config_json(config))
    rows = []
    for name in names:
        references = []
        for seed in seeds:
            checkpoint = checkpoint_path(config.bench_dir, studio.dataset.name, name, seed,
                                         preset)
            if fresh:
                checkpoint.unlink(missing_ok=True)
            request = json.dumps({"config": child_config, **caps,
                                  "checkpoint": str(checkpoint), "seed": seed,
                                  "threads": threads, "device": device,
                                  "preset": preset.value})
            references.append(_run_child(name, request) if isolate else _child(name, request))
        row = {"model": name, "reference_config": configs[name].describe(),
               **_side_by_side(studio, name, references)}
        rows.append(row)
        if on_row:
            on_row(row)
    from models.reference.trainer import OverallConfig
    return {
        "dataset": studio.dataset.name,
        "protocol": "loo",
        "reference": {"library": "RecBole 1.2.1 (transcribed in models/reference, not imported)",
                      "overall": asdict(OverallConfig()), "preset": preset.value},
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": threads, "device": device,
                    "platform": platform.platform(), "python": platform.python_version()},
        "caps": caps,
        "models": rows,
    }


def reference_bench_name(device: str,
                         preset: ReferencePreset | str = ReferencePreset.DEFAULT) -> str:
    """The bench file's name (no ``.json``) for references trained on ``device`` with ``preset``.

    A GPU side-by-side is its own measurement: ``reference-cuda`` sits next to the
    CPU's ``reference`` instead of overwriting it; so does a preset's
    (``reference-tuned``).
    """
    name = "reference" if device == "cpu" else f"reference-{device}"
    preset = ReferencePreset(preset)
    return name if preset is ReferencePreset.DEFAULT else f"{name}-{preset.value}"


def checkpoint_path(bench_dir: Path, dataset: str, name: str, seed: int = DEFAULT_SEED,
                    preset: ReferencePreset | str = ReferencePreset.DEFAULT) -> Path:
    """Where the reference ``name`` checkpoints its training on ``dataset`` with ``seed``.

    Each preset has its own file, so a tuned run never resumes a default one (the
    fingerprint would refuse it anyway, but would then overwrite it).
    """
    preset = ReferencePreset(preset)
    suffix = "" if preset is ReferencePreset.DEFAULT else f"-{preset.value}"
    suffix += "" if seed == DEFAULT_SEED else f"-seed{seed}"
    return bench_dir / "reference" / f"{dataset}-{name}{suffix}.ckpt"


def _side_by_side(studio: Any, name: str, references: list[dict[str, Any]]) -> dict[str, Any]:
    from models.recommenders import create
    from models.runs import latest_run

    run = latest_run(studio.runs_dir, studio.dataset.name, name)
    trained_now = run is None
    if run is None:
        run = studio.train(name).directory
    run_config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    defaults = create(name, studio.split.n_items, studio.config.models.get(name)).params.model_dump()
    reference_over_seeds = _reference_over_seeds(references)
    # Test NDCG@10 can move by 0.01 between seeds: with runs of several seeds at today's
    # defaults (`bench models --seeds`), and a reference over several seeds, the bar is
    # judged on the means (read back through ours_ndcg10 / reference_ndcg10).
    seeds = seeds_at_defaults(studio.runs_dir, studio.dataset.name, name, defaults)
    judged_on = f"mean over {len(seeds['seeds'])} seeds" if seeds else "latest run"
    if reference_over_seeds:
        judged_on += f" vs reference mean over {len(references)} seeds"
    row: dict[str, Any] = {
        "reference": references[0],
        "reference_over_seeds": reference_over_seeds,
        "ours": {"run_dir": str(run), "trained_now": trained_now, "test": metrics["test"],
                 "valid": metrics.get("valid"), "params": run_config.get("params"),
                 "params_match_current_defaults": run_config.get("params") == defaults},
        "ours_over_seeds": seeds,
        "bar_judged_on": judged_on,
        # Only a reference trained to early stopping is RecBole's result; a capped one
        # is a lower bound on it, so a capped `meets_bar: true` settles nothing.
        "reference_converged": all(r["stopped_by"] == "early_stopping" for r in references),
    }
    gap = ours_ndcg10(row) - reference_ndcg10(row)
    return {**row, "ours_minus_reference_ndcg10": gap, "meets_bar": bool(gap >= 0)}


def _reference_over_seeds(references: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Test NDCG@10 of the reference over its seeds (every seed's full result in ``runs``)."""
    if len(references) < 2:
        return None
    return {**_ndcg10_over_seeds([r["seed"] for r in references],
                                 [float(r["test"]["NDCG@10"]) for r in references]),
            "runs": references}


def reference_ndcg10(row: dict[str, Any]) -> float:
    """The reference's test NDCG@10 that a result row's bar was judged on."""
    seeds = row.get("reference_over_seeds")
    return seeds["test_ndcg10_mean"] if seeds else row["reference"]["test"]["NDCG@10"]


def reference_seeds(row: dict[str, Any]) -> list[int]:
    """The seeds a result row's reference trained with (older rows: RecBole's one seed)."""
    seeds = row.get("reference_over_seeds")
    return seeds["seeds"] if seeds else [row["reference"].get("seed", DEFAULT_SEED)]


def ours_ndcg10(row: dict[str, Any]) -> float:
    """Our test NDCG@10 that a result row's bar was judged on (older rows: the latest run)."""
    seeds = row.get("ours_over_seeds")
    return seeds["test_ndcg10_mean"] if seeds else row["ours"]["test"]["NDCG@10"]


def seeds_at_defaults(runs_root: Path, dataset: str, name: str,
                      defaults: dict[str, Any]) -> dict[str, Any] | None:
    """Test NDCG@10 over the saved runs of model ``name`` trained with ``defaults``, one per seed.

    Args:
        runs_root, dataset, name: where the runs are (:func:`models.runs.complete_runs`).
        defaults: the model's current default params (a run with others is skipped).

    Returns:
        ``{"seeds", "test_ndcg10", "test_ndcg10_mean", "test_ndcg10_std"}`` (the
        newest run of each seed; sample std), or ``None`` below two seeds.
    """
    from models.runs import complete_runs

    by_seed: dict[int, float] = {}
    for run in complete_runs(runs_root, dataset, name):  # oldest first: newer runs replace
        try:
            config = json.loads((run / "config.json").read_text())
            metrics = json.loads((run / "metrics.json").read_text())
        except (OSError, ValueError):
            continue  # a damaged or foreign directory
        if config.get("params") == defaults and "seed" in config.get("train", {}):
            by_seed[int(config["train"]["seed"])] = float(metrics["test"]["NDCG@10"])
    if len(by_seed) < 2:
        return None
    return _ndcg10_over_seeds(list(by_seed), list(by_seed.values()))


def _ndcg10_over_seeds(seeds: list[int], values: list[float]) -> dict[str, Any]:
    """Test NDCG@10 per seed with its mean and sample std (ours and the reference alike)."""
    return {"seeds": seeds, "test_ndcg10": values, "test_ndcg10_mean": statistics.fmean(values),
            "test_ndcg10_std": statistics.stdev(values)}


def _run_child(name: str, request: str) -> dict[str, Any]:
    """Run :func:`_child` in a fresh process; its per-epoch log goes to our stderr."""
    result = subprocess.run([sys.executable, "-m", "reasonrec.bench_reference", name],
                            input=request, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"reference benchmark of {name} failed (exit {result.returncode}); "
                           "its traceback is on stderr above")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _child(name: str, request_json: str) -> dict[str, Any]:
    """Train the reference ``name`` in this process and measure it."""
    from models.reference.trainer import cpu_deterministic, fit_reference, torch_threads
    from reasonrec.config import StudioConfig
    from reasonrec.studio import Studio

    request = json.loads(request_json)
    config = StudioConfig.model_validate(request["config"])
    split = Studio(config).split  # data loads before timing starts
    seed = int(request.get("seed", DEFAULT_SEED))
    threads = int(request.get("threads", TORCH_THREADS))
    device = str(request.get("device", "cpu"))
    preset = reference_config(name, request.get("preset", ReferencePreset.DEFAULT.value), seed)
    # Deterministic CUDA kernels would need CUBLAS_WORKSPACE_CONFIG set before CUDA starts,
    # and a GPU run is not bit-exact anyway: there only the thread count is fixed.
    settings = cpu_deterministic(threads) if device == "cpu" else torch_threads(threads)
    with settings:
        start = time.perf_counter()
        fit = fit_reference(name, split, overall=preset.overall, model_config=preset.model,
                            max_epochs=request.get("max_epochs"),
                            max_seconds=request.get("max_seconds"),
                            max_batches=request.get("max_batches"),
                            log=lambda line: print(line, file=sys.stderr, flush=True),
                            device=device,
                            checkpoint=Path(request["checkpoint"]) if request.get("checkpoint")
                            else None)
        wall = time.perf_counter() - start
    # what the training used (saved per epoch), so a resumed run reports its own
    trained_threads = sorted({int(e.get("torch_threads", threads)) for e in fit.epochs})
    peak = max([peak_rss_mb(), *(e.get("peak_rss_mb", 0.0) for e in fit.epochs)])
    return {"recbole_class": RECBOLE_CLASS[name], "seed": seed,
            "torch_threads": trained_threads[0] if len(trained_threads) == 1 else trained_threads,
            **fit.summary(), "wall_seconds": wall,
            "peak_rss_mb": peak, "peak_gpu_mb": peak_gpu_mb(),
            "n_users": int(len(split.test.targets)),
            "n_parameters": sum(p.numel() for p in fit.model.parameters()),
            "hyper_parameters": asdict(fit.model.config),
            "reference_config": preset.describe()}


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], sys.stdin.read())))
