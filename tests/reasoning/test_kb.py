"""The knowledge base: keys tagged with model and prompt version, counters, crash safety."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reasoning.kb import KnowledgeBase, KnowledgeBaseError, canonical_key

MODEL = "sha256:abc"


def test_put_then_get_and_counters(tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    fields = {"item": "Toy Story (1995) [Animation]", "options": ["family fun", "a good laugh"]}
    assert kb.get("intent", MODEL, "intent-v3", fields) is None
    kb.put("intent", MODEL, "intent-v3", fields, {"intent": "family fun"})
    assert kb.get("intent", MODEL, "intent-v3", dict(reversed(fields.items()))) == {"intent": "family fun"}
    stats = kb.stats()
    assert stats["entries"] == 1 and stats["hits"] == 1 and stats["misses"] == 1
    assert stats["kinds"]["intent"]["hit_rate"] == 0.5
    assert stats["models"] == [MODEL] and stats["prompt_versions"] == ["intent-v3"]
    kb.close()
    # Counters survive the process (flushed on close).
    again = KnowledgeBase(tmp_path / "kb.sqlite")
    assert again.stats()["hits"] == 1
    again.close()


def test_another_model_or_prompt_version_never_reuses_an_answer(tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    kb.put("chain", MODEL, "chain-v3", {"x": 1}, {"chain": "new"})
    assert kb.get("chain", "sha256:other", "chain-v3", {"x": 1}) is None
    assert kb.get("chain", MODEL, "chain-v4", {"x": 1}) is None
    assert kb.get("intent", MODEL, "chain-v3", {"x": 1}) is None
    assert kb.get("chain", MODEL, "chain-v3", {"x": 1}) == {"chain": "new"}
    kb.close()


def test_disabled_kb_stores_nothing_and_always_misses(tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb.sqlite", enabled=False)
    kb.put("chain", MODEL, "v", {"x": 1}, {"a": 1})
    assert kb.get("chain", MODEL, "v", {"x": 1}) is None
    assert kb.stats()["entries"] == 0
    kb.close()


def test_entries_history_and_export_for_browsing(tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    kb.put("intent", MODEL, "intent-v3", {"item": "Alien (1979)"}, {"intent": "edge of the seat"})
    kb.put("chain", MODEL, "chain-v3", {"intent": "romance"}, {"chain": "new", "reason": "x"})
    kb.get("intent", MODEL, "intent-v3", {"item": "Alien (1979)"})
    kb.flush_counters()
    kb.get("intent", MODEL, "intent-v3", {"item": "Fargo (1996)"})
    kb.get("chain", MODEL, "chain-v3", {"intent": "romance"})
    history = kb.history()
    assert [(h["kind"], h["hits"], h["misses"]) for h in history] == [
        ("intent", 1, 0), ("chain", 1, 0), ("intent", 0, 1)]
    assert history[0]["time"] <= history[-1]["time"]
    assert {e["kind"] for e in kb.entries()} == {"intent", "chain"}
    found = kb.entries(search="alien")
    assert len(found) == 1 and found[0]["answer"] == {"intent": "edge of the seat"}
    assert found[0]["question"] == {"item": "Alien (1979)"}
    assert kb.entries(kind="chain")[0]["prompt_version"] == "chain-v3"
    assert kb.entries(limit=1, offset=1) and len(kb.entries(limit=1)) == 1
    lines = [json.loads(line) for line in kb.export_jsonl().splitlines()]
    assert [line["kind"] for line in lines] == ["intent", "chain"]
    kb.clear()
    assert kb.history() == [] and kb.entries() == []
    kb.close()


def test_clear_removes_entries_and_counters(tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    for i in range(5):
        kb.put("verify", MODEL, "v", {"i": i}, {"answer": "A"})
    kb.get("verify", MODEL, "v", {"i": 0})
    assert kb.clear() == 5
    stats = kb.stats()
    assert stats["entries"] == 0 and stats["hits"] == 0 and stats["kinds"] == {}
    kb.close()


def test_canonical_key_ignores_dict_order_not_list_order() -> None:
    assert canonical_key({"a": 1, "b": [1, 2]}) == canonical_key({"b": [1, 2], "a": 1})
    assert canonical_key({"b": [1, 2]}) != canonical_key({"b": [2, 1]})


def test_a_file_that_is_not_a_kb_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "kb.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(KnowledgeBaseError, match=str(path)):
        KnowledgeBase(path)


def test_a_newer_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "kb.sqlite"
    KnowledgeBase(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value='99' WHERE name='schema_version'")
    with pytest.raises(KnowledgeBaseError, match="reasonrec kb clear"):
        KnowledgeBase(path)


WRITER = """
import sys
from reasoning.kb import KnowledgeBase
kb = KnowledgeBase(sys.argv[1])
i = 0
while True:
    kb.put("verify", "m", "v", {"i": i}, {"answer": "A", "blob": "x" * 2000, "i": i})
    i += 1
    if i == 50:
        print("ready", flush=True)
"""


def test_sigkill_during_writes_leaves_a_consistent_kb(tmp_path: Path) -> None:
    path = tmp_path / "kb.sqlite"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).parents[2])
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        time.sleep(0.3)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT key_json, value_json FROM entries").fetchall()
    assert len(rows) >= 50
    # Every entry is whole: its value parses and belongs to its key.
    for key_json, value_json in rows:
        assert json.loads(value_json)["i"] == json.loads(key_json)["i"]
    kb = KnowledgeBase(path)
    kb.put("verify", "m", "v", {"i": -1}, {"answer": "B"})
    assert kb.get("verify", "m", "v", {"i": -1}) == {"answer": "B"}
    kb.close()
