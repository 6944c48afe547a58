"""``reasonrec localize``, run as a user runs it (a subprocess, the real encoder and data)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from models.data import default_data_dir

REPO = Path(__file__).parents[2]


def _localize(tmp_path: Path, ml100k_dir: Path, *args: str) -> subprocess.CompletedProcess:
    # The encoder and the item vectors are shared with the other tests (the studio's
    # data dir); everything else goes to tmp_path.
    config = tmp_path / "studio.toml"
    config.write_text(f"[data]\npath = {json.dumps(str(ml100k_dir))}\n\n"
                      f"[reasoning]\ndata_dir = {json.dumps(str(default_data_dir()))}\n")
    return subprocess.run([sys.executable, "-m", "reasonrec.cli", "--config", str(config),
                           "--data-dir", str(tmp_path / "data"), "localize", *args],
                          capture_output=True, text=True, timeout=300, cwd=REPO)


@pytest.mark.llm
def test_localize_json_lists_items_per_text(tmp_path: Path, ml100k_dir: Path) -> None:
    done = _localize(tmp_path, ml100k_dir, "--text", "The Jungle Book", "--text",
                     "Audrey Hepburn romance", "--k", "3", "--json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert list(payload) == ["results"]
    assert [r["text"] for r in payload["results"]] == ["The Jungle Book", "Audrey Hepburn romance"]
    for result in payload["results"]:
        assert list(result) == ["text", "items"] and len(result["items"]) == 3
        for item in result["items"]:
            assert list(item) == ["item_id", "title", "weight"]
            assert isinstance(item["item_id"], str) and item["title"]
            assert 0 < item["weight"] <= 1
        weights = [item["weight"] for item in result["items"]]
        assert weights == sorted(weights, reverse=True)
    assert payload["results"][0]["items"][0] == {
        "item_id": "465", "title": "Jungle Book, The",
        "weight": payload["results"][0]["items"][0]["weight"]}


def test_localize_with_a_bad_encoder_is_one_line(tmp_path: Path, ml100k_dir: Path) -> None:
    done = _localize(tmp_path, ml100k_dir, "--text", "space battles", "--encoder",
                     str(tmp_path / "missing"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert "not a sentence-transformers model directory" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
