"""Shipped runs are copied into the runs directory once, completely, and never over local runs."""

from __future__ import annotations

from pathlib import Path

from models.runs import latest_run, seed_runs


def make_run(root: Path, model: str, run_id: str, text: str) -> Path:
    run = root / "ml-100k" / model / run_id
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(text)
    return run


def test_seed_copies_missing_runs_only(tmp_path: Path) -> None:
    shipped, runs = tmp_path / "shipped", tmp_path / "runs"
    make_run(shipped, "sasrec", "20260101-000000-aaaa", '{"shipped": 1}')
    make_run(shipped, "fusion-llmrg", "20260101-000001-bbbb", '{"shipped": 2}')
    local = make_run(runs, "sasrec", "20260101-000000-aaaa", '{"local": 1}')
    copied = seed_runs(runs, "ml-100k", shipped)
    assert [p.relative_to(runs).as_posix() for p in copied] == [
        "ml-100k/fusion-llmrg/20260101-000001-bbbb"]
    assert (local / "metrics.json").read_text() == '{"local": 1}'      # never overwritten
    assert not list(runs.rglob(".*.partial"))
    assert seed_runs(runs, "ml-100k", shipped) == []                     # idempotent
    assert seed_runs(runs, "other-dataset", shipped) == []
    # A newer local run still wins over a shipped one.
    make_run(runs, "sasrec", "20270101-000000-cccc", "{}")
    assert latest_run(runs, "ml-100k", "sasrec").name == "20270101-000000-cccc"


def test_no_shipped_folder_is_no_op(tmp_path: Path) -> None:
    assert seed_runs(tmp_path / "runs", "ml-100k", tmp_path / "nothing") == []
