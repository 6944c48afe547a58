"""The fusion bench's sentences on what each LLMRG stage adds, from the ablation rows."""

from __future__ import annotations

from models.bench_fusion import ablation_sentences


def row(name: str, mean: float, low: float, high: float) -> dict:
    # vs_llmrg holds the ablation minus LLMRG, as bench_fusion pairs them
    return {"name": name, "vs_llmrg": {"NDCG@10": {"diff": {"mean": mean, "low": low,
                                                             "high": high}}}}


def test_a_stage_whose_removal_lowers_the_score_measurably_helps() -> None:
    text = ablation_sentences([{"name": "llmrg"}, row("llmrg-no-verify", -0.01, -0.02, -0.001)])
    assert "with verification against without it: +0.0100 NDCG@10 [+0.0010, +0.0200]" in text
    assert "verification helps, measurably." in text and "divergent" not in text


def test_an_interval_around_zero_or_below_says_so() -> None:
    text = ablation_sentences([row("llmrg-no-verify", -0.004, -0.016, 0.007),
                               row("llmrg-no-div", 0.003, 0.001, 0.005)])
    assert "verification makes no measurable difference on this sample." in text
    assert "divergent extension hurts, measurably." in text


def test_no_ablation_rows_no_sentence() -> None:
    assert ablation_sentences([{"name": "base"}, {"name": "llmrg", "vs_llmrg": None}]) == ""
