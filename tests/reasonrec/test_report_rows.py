"""Score changes in words: a real effect never reads as zero."""

from __future__ import annotations

from reasonrec.report_rows import score_change


def test_score_changes_keep_their_sign_and_a_visible_digit() -> None:
    assert score_change(0.0) == "+0.000"
    assert score_change(-0.0021) == "-0.002" and score_change(0.4) == "+0.400"
    assert score_change(-0.00031) == "-0.00031"      # 3 decimals would print -0.000
    assert score_change(0.00004) == "+4.0e-05"
