"""The fused run's findings in words: kept the base (selection "best") or below it on
validation (selection "trained"), from the fit report alone."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from models.recommenders.base import EpochLog, FitReport
from reasonrec.fusion import below_base_note, kept_base


def run_with(report: FitReport) -> SimpleNamespace:
    return SimpleNamespace(report=report, directory=Path("run"))


def epochs(*scores: float) -> list[EpochLog]:
    return [EpochLog(epoch=i, loss=1.0, valid_ndcg10=s, seconds=0.1)
            for i, s in enumerate(scores, start=1)]


def test_a_trained_run_below_its_start_says_so_with_both_scores() -> None:
    report = FitReport(epochs=epochs(0.0732, 0.0710), best_epoch=1,
                       best_valid={"NDCG@10": 0.0732}, start_valid={"NDCG@10": 0.0741})
    note = below_base_note(run_with(report))
    assert note is not None and "0.0732" in note and "0.0741" in note
    assert not kept_base(run_with(report))


def test_no_note_when_the_trained_run_matches_or_beats_its_start() -> None:
    for best in (0.0741, 0.0760):
        report = FitReport(epochs=epochs(best), best_epoch=1, best_valid={"NDCG@10": best},
                           start_valid={"NDCG@10": 0.0741})
        assert below_base_note(run_with(report)) is None


def test_a_run_that_kept_its_start_is_kept_base_not_below_it() -> None:
    report = FitReport(epochs=epochs(0.07, 0.06), best_epoch=0,
                       best_valid={"NDCG@10": 0.0741}, start_valid={"NDCG@10": 0.0741})
    assert kept_base(run_with(report)) and below_base_note(run_with(report)) is None


def test_runs_saved_before_the_start_was_recorded_have_no_note() -> None:
    report = FitReport(epochs=epochs(0.07), best_epoch=1, best_valid={"NDCG@10": 0.07})
    assert below_base_note(run_with(report)) is None
    # lm-only walks no epochs: never "kept the base"
    assert not kept_base(run_with(FitReport(best_epoch=0, start_valid={"NDCG@10": 0.03},
                                            best_valid={"NDCG@10": 0.03})))
