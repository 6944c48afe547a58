"""``reasonrec bench quality``: the calibration windows and one real run (real LLM, encoder, data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.data import Dataset
from models.protocol import leave_one_out
from reasonrec.bench_quality import calibration_windows, default_excluded
from tests.reasonrec.test_cli import run_cli


def test_calibration_windows_hold_training_items_of_users_outside_the_sample(ml100k: Dataset) -> None:
    split = leave_one_out(ml100k)
    excluded = default_excluded(split, 300, 2020)
    assert len(excluded) == 300
    windows = calibration_windows(ml100k, excluded, 10)
    assert len(windows) == len(ml100k.user_ids) - 300
    sampled_ids = {ml100k.user_ids[u] for u in excluded}
    for window in windows[:50]:
        assert window.user not in sampled_ids
        history = ml100k.history(window.user)
        # ends right before the validation target: training items only
        assert [i.index for i in window.items] == history[:-2][-10:].tolist()
        assert window.target is not None and window.target.index == history[-2]


@pytest.mark.llm
@pytest.mark.slow
def test_bench_quality_writes_every_measure(ml100k_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "quality.json"
    result = run_cli("--data", str(ml100k_dir), "--data-dir", str(tmp_path), "bench", "quality",
                     "--users", "1", "--chains", "3", "--out", str(out), "--json")
    payload = json.loads(result.stdout)
    assert json.loads(out.read_text()) == payload
    assert payload["localization"]["dev"]["cases"] >= 40
    assert 0.0 <= payload["localization"]["dev"]["hit_at_5"] <= 1.0
    (model,) = payload["models"]
    assert model["model"] == "smollm2-135m" and model["sessions"] == 1
    assert model["reasons"] == 10 and model["template_reason_share"] is not None
    assert model["verification_chains"] == 3 and 0.0 <= model["verification_auc"] <= 1.0
    assert model["tokens_per_session"] > 0 and model["seconds_per_session_median"] > 0
