"""The core commands of the ``reasonrec`` CLI: the dataset, base models and their benches.

``data``, ``train``, ``evaluate``, ``recommend``, ``bench models``, ``bench
reference`` and ``bench app``; :func:`register` adds them (see
``reasonrec.cli_common`` for the one registration style).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from reasonrec import cli_common as common
from reasonrec.cli_common import CommandGroups


def data(ctx: typer.Context, as_json: bool = typer.Option(False, "--json"),
         gap_minutes: Optional[float] = typer.Option(None, "--session-gap",
                                                     help="Inactivity gap in minutes.")) -> None:
    """Describe the dataset: users, items, interactions, sessions, source."""
    studio = common.studio(ctx, {"data": {"session_gap_minutes": gap_minutes}})
    summary = studio.dataset_summary().to_json()
    common.emit(summary, as_json, "\n".join(f"{k:>20}: {v}" for k, v in summary.items()))


def train(ctx: typer.Context,
          model: str = typer.Option(..., "--model", help="pop, gru4rec, sasrec or srgnn."),
          epochs: Optional[int] = typer.Option(None, "--epochs"),
          seed: Optional[int] = typer.Option(None, "--seed"),
          quiet: bool = typer.Option(False, "--quiet", help="No progress bar.")) -> None:
    """Train a base recommender and print where the run was saved."""
    studio = common.studio(ctx, {"train": {"epochs": epochs, "seed": seed,
                                     "progress": False if quiet else None}})
    info = studio.train(model)
    test = info.metrics["test"]
    typer.echo(f"test NDCG@10={test['NDCG@10']:.4f} HR@10={test['HR@10']:.4f} "
               f"MRR@10={test['MRR@10']:.4f}", err=True)
    typer.echo(str(info.directory))


def evaluate(ctx: typer.Context, model: str = typer.Option(..., "--model"),
             as_json: bool = typer.Option(False, "--json")) -> None:
    """Test metrics of the latest run of a model (training one first if none exists)."""
    result = common.studio(ctx).evaluate(model).to_json()
    human = "\n".join(f"{k:>10}: {v:.4f}" if isinstance(v, float) else f"{k:>10}: {v}"
                      for k, v in result.items())
    common.emit(result, as_json, human)


def recommend(ctx: typer.Context, user: str = typer.Option(..., "--user"),
              k: int = typer.Option(10, "--k", min=1), model: Optional[str] = typer.Option(None, "--model"),
              include_seen: bool = typer.Option(False, "--include-seen",
                                                help="Allow items already in the history."),
              as_json: bool = typer.Option(False, "--json")) -> None:
    """A user's history, then their top-k."""
    result = common.studio(ctx).recommend(user, k, model, exclude_seen=not include_seen)
    lines = [f"user {result.user}: {len(result.history)} items in history; "
             f"top-{k} from {result.model}:"]
    lines += [f"{r.rank:>3}. {r.item.title}  ({r.score:.3f})" for r in result.top_k]
    common.emit(result.to_json(), as_json, "\n".join(lines))


def bench_models_command(ctx: typer.Context,
                         models: str = typer.Option("pop,gru4rec,sasrec,srgnn", "--models"),
                         seeds: Optional[str] = typer.Option(
                             None, "--seeds",
                             help="Comma-separated training seeds, e.g. 2020,1,2; the summary "
                                  "gives each model's mean and spread (default: [train] seed)."),
                         out: Optional[Path] = typer.Option(None, "--out", help="JSON file to write."),
                         as_json: bool = typer.Option(False, "--json")) -> None:
    """Train each model; report seconds/epoch, epochs, total time, peak RSS and test metrics."""
    from reasonrec.bench_models import bench_models

    studio = common.studio(ctx)
    names = [m.strip() for m in models.split(",") if m.strip()]
    result = bench_models(studio.config, names, _seed_list(seeds))
    path = out or studio.config.bench_dir / "models.json"
    common.write_json(path, result)
    typer.echo(f"wrote {path}", err=True)
    rows = [f"{r['model']:>8} seed {r['seed']}: {r['seconds_per_epoch']:.2f} s/epoch, "
            f"{r['epochs']} epochs (best {r['best_epoch']}), {r['total_seconds']:.1f} s, "
            f"{r['peak_rss_mb']:.0f} MB; test HR@10={r['test']['HR@10']:.4f} "
            f"NDCG@10={r['test']['NDCG@10']:.4f} MRR@10={r['test']['MRR@10']:.4f}"
            for r in result["models"]]
    if len(result["seeds"]) > 1:
        rows += [f"{s['model']:>8} over {len(s['seeds'])} seeds: test NDCG@10 "
                 f"{s['test_mean']['NDCG@10']:.4f} ± {s['test_std']['NDCG@10']:.4f} (std)"
                 for s in result["summary"]]
    common.emit(result, as_json, "\n".join(rows))


def _seed_list(text: str | None) -> list[int] | None:
    """``"2020,1,2"`` -> ``[2020, 1, 2]``; a bad value is a usage error naming it."""
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"--seeds must be comma-separated integers, got {text!r}")


def bench_reference_command(ctx: typer.Context,
                            models: str = typer.Option("gru4rec,sasrec,srgnn", "--models"),
                            max_epochs: Optional[int] = typer.Option(
                                None, "--max-epochs", min=1,
                                help="Cap the reference's epochs (RecBole: 300 + early stopping)."),
                            max_minutes: Optional[float] = typer.Option(
                                None, "--max-minutes", min=0,
                                help="Cap each reference's training time (finishes the epoch)."),
                            out: Optional[Path] = typer.Option(None, "--out", help="JSON file to write."),
                            fresh: bool = typer.Option(
                                False, "--fresh",
                                help="Start over instead of resuming the references' checkpoints."),
                            seeds: Optional[str] = typer.Option(
                                None, "--seeds",
                                help="Reference seeds, e.g. 2020,1,2 (default RecBole's 2020); "
                                     "with several the bar compares means."),
                            threads: Optional[int] = typer.Option(
                                None, "--threads", min=1,
                                help="Torch threads per reference (default 2)."),
                            device: str = typer.Option(
                                "cpu", "--device",
                                help="cpu (deterministic), cuda or auto: where the references "
                                     "train."),
                            reference_config: str = typer.Option(
                                "default", "--reference-config",
                                help="default (RecBole's yaml values) or tuned (GRU4Rec: batch "
                                     "256, stop on valid NDCG@10); each checkpoints apart."),
                            as_json: bool = typer.Option(False, "--json")) -> None:
    """RecBole 1.2.1's GRU4Rec/SASRec/SR-GNN (transcribed) vs our latest runs: issue #2's bar.

    Each reference checkpoints every epoch; run it again after a kill and it resumes.
    """
    import torch

    from reasonrec.bench_reference import (bench_reference, ours_ndcg10, reference_bench_name,
                                        reference_ndcg10)
    from models.recommenders.base import resolve_device
    from models.reference.presets import ReferencePreset

    presets = [p.value for p in ReferencePreset]
    if reference_config not in presets:
        raise ValueError(f"--reference-config must be {' or '.join(presets)}, "
                         f"got {reference_config!r}")
    if device not in ("cpu", "cuda", "auto"):
        raise ValueError(f"--device must be cpu, cuda or auto, got {device!r}")
    where = resolve_device(device).type
    if where == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: this torch build sees no CUDA device")
    studio = common.studio(ctx)
    names = [m.strip() for m in models.split(",") if m.strip()]
    path = out or studio.config.bench_dir / f"{reference_bench_name(where, reference_config)}.json"
    partial: list[dict[str, Any]] = []

    def save_partial(row: dict[str, Any]) -> None:  # a long run keeps what it finished
        partial.append(row)
        common.write_json(path, {"partial": True, "models": partial})

    result = bench_reference(studio.config, names, max_epochs=max_epochs,
                             max_seconds=max_minutes * 60 if max_minutes is not None else None,
                             on_row=save_partial, fresh=fresh, seeds=_seed_list(seeds),
                             threads=threads, device=where, preset=reference_config)
    common.write_json(path, result)
    typer.echo(f"wrote {path}", err=True)
    rows = []
    for r in result["models"]:
        ref = r["reference"]
        rows.append(f"{r['model']:>8}: reference ({r['reference_config']['preset']}) "
                    f"{ref['seconds_per_epoch']:.1f} s/epoch, "
                    f"{ref['epochs']} epochs (best {ref['best_epoch']}, {ref['stopped_by']}), "
                    f"{ref['seconds_to_best']:.0f} s to best, {ref['peak_rss_mb']:.0f} MB; test "
                    f"NDCG@10 reference={reference_ndcg10(r):.4f} ours={ours_ndcg10(r):.4f} "
                    f"({r['ours_minus_reference_ndcg10']:+.4f}, {r['bar_judged_on']}) "
                    f"{'meets' if r['meets_bar'] else 'MISSES'} the bar")
    common.emit(result, as_json, "\n".join(rows))


def bench_app_command(ctx: typer.Context,
                      user: Optional[str] = typer.Option(
                          None, "--user", help="Whose chains are toggled (default: the first "
                                               "user of the fused models' sample)."),
                      out: Optional[Path] = typer.Option(None, "--out", help="JSON file to write."),
                      as_json: bool = typer.Option(False, "--json")) -> None:
    """The studio in Chromium: cold start, page switches and counterfactual toggles."""
    from reasonrec.bench_app import AppBenchError, bench_app

    from models.fusion.samples import sample_users

    studio = common.studio(ctx)
    config = ctx.obj.get("config_path") if isinstance(ctx.obj, dict) else None
    if user is None:   # the first user of the fused models' sample has a shipped graph
        settings = studio.config.fusion
        user = studio.dataset.user_ids[int(sample_users(studio.split, settings.users,
                                                        settings.seed)[0])]
    try:
        result = bench_app(config, user, log=lambda line: typer.echo(line, err=True))
    except AppBenchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    path = out or studio.config.bench_dir / "app.json"
    common.write_json(path, result)
    typer.echo(f"wrote {path}", err=True)
    bars = result["bars"]
    common.emit(result, as_json, "\n".join(f"{name}: {bar['value']} ({bar['bar']}) "
                                     f"{'met' if bar['met'] else 'NOT met'}"
                                     for name, bar in bars.items()))


def register(groups: CommandGroups) -> None:
    """Add the core commands to the root and ``bench`` groups."""
    groups.root.command("data")(data)
    groups.root.command("train")(train)
    groups.root.command("evaluate")(evaluate)
    groups.root.command("recommend")(recommend)
    groups.bench.command("models")(bench_models_command)
    groups.bench.command("reference")(bench_reference_command)
    groups.bench.command("app")(bench_app_command)
