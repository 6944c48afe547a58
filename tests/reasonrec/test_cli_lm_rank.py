"""`reasonrec fusion lm-scores` and the LM rows through the CLI: bad input is one line, exit 2,
before any model work; missing scores name the command that builds them."""

from __future__ import annotations

import pytest

from tests.reasonrec.test_cli_fusion import cli_args, invoke  # noqa: F401  (fixture)
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)


@pytest.mark.parametrize("args, message", [
    (("--shard", "half"), "--shard 'half': expected K/N"),
    (("--shard", "2/2"), "--shard 2/2: K must be 0..N-1"),
    (("--bundle", "scores.json"), "the bundle must be a .jsonl.gz file"),
])
def test_bad_lm_scores_options_are_one_line(
        cli_args: list[str], args: tuple[str, ...], message: str) -> None:   # noqa: F811
    code, _, err = invoke(*cli_args, "fusion", "lm-scores", *args)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_lm_rows_without_scores_name_the_command(cli_args: list[str]) -> None:   # noqa: F811
    # The shipped scores cover the 300-user sample: 6 of this 16-user sample are in it.
    code, _, err = invoke(*cli_args, "fusion", "fit", "--variant", "lm-only")
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert "10 of 16 sampled users have no LM scores" in last
    assert "reasonrec fusion lm-scores" in last
