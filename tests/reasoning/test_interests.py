"""LLM4SBR stage 1, unit tests: answer parsing, the questions, KB reuse, the store's key and
resume, and a backend failure that stores nothing for the user in flight.

The scripted backend (``tests.reasoning.fakes``) stands in for the LLM only here;
``tests/models/fusion/llm4sbr/test_llm4sbr_real.py`` runs the real one.
"""

from __future__ import annotations

import gzip
from dataclasses import replace
from pathlib import Path

import pytest

from models.data import Dataset
from reasoning.backend import BackendFailure
from reasoning.interest_store import (InterestKey, InterestStore, InterestStoreError,
                                      read_bundle, write_bundle)
from reasoning.interests import (SHORT_TERM_ITEMS, Horizon, InterestBuilder, parse_interest,
                                 question_items, question_messages)
from reasoning.kb import KnowledgeBase
from tests.reasoning.fakes import ScriptedBackend, reply


@pytest.mark.parametrize("answer, title", [
    ("The Matrix (1999)", "The Matrix (1999)"),
    ("The film The Lion King (1994)", "The Lion King (1994)"),
    ("The movie they like in the short term is The Hunger Games (201", "The Hunger Games"),
    ('1. "Heat" (1995).\nand more', "Heat (1995)"),
    ("Movie: Alien", "Alien"),
    ("The Film Noir Classic", "The Film Noir Classic"),
    ("Schindler's List (1993)", "Schindler's List (1993)"),
    ("The film that the viewer is interested in in the long term", ""),
    ("...", ""),
    ("", ""),
])
def test_parse_interest(answer: str, title: str) -> None:
    assert parse_interest(answer) == title


def test_questions_show_the_prefix_or_its_last_items() -> None:
    titles = [f"Film {n}" for n in range(1, 8)]
    assert question_items(titles, Horizon.LONG) == titles
    assert question_items(titles, Horizon.SHORT) == titles[-SHORT_TERM_ITEMS:]
    text = question_messages(question_items(titles, Horizon.SHORT), Horizon.SHORT)[-1]["content"]
    assert "1. Film 5\n2. Film 6\n3. Film 7\n" in text and "in the short term" in text


class FixedLocalizer:
    """Localizes every text to the same three items (weights 0.6, 0.3, 0.3)."""

    identity = "fixed-localizer"

    def __init__(self) -> None:
        self.texts: list[str] = []

    def localize(self, text: str, r: int) -> list[tuple[int, float]]:
        self.texts.append(text)
        return [(50, 0.6), (181, 0.3), (1, 0.3)][:r]


def builder(dataset: Dataset, backend: ScriptedBackend, kb: KnowledgeBase | None
            ) -> InterestBuilder:
    return InterestBuilder(dataset, backend, kb, FixedLocalizer())   # type: ignore[arg-type]


def test_identical_questions_are_asked_once_and_weights_normalized(
        ml100k: Dataset, tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    backend = ScriptedBackend([reply("Star Wars (1977)")] * 4 + [reply("???")] * 4)
    window = [int(i) for i in ml100k.histories[0][:5]]
    first = builder(ml100k, backend, kb).build_user("a", window, [3, 4])
    assert first.cost.llm_calls == 4 and first.cost.kb_hits == 0
    assert first.cost.tokens_in == 40 and first.cost.tokens_out == 20
    point = first.at(3)
    assert point is not None and point.long.interest == "Star Wars (1977)"
    assert [w for _, w in point.long.items] == pytest.approx([0.5, 0.25, 0.25])
    assert point.long.items[0][0] == ml100k.catalogue[50].item_id
    # another user with the same window asks nothing: every question is in the KB
    again = builder(ml100k, backend, kb).build_user("b", window, [3, 4])
    assert again.cost.llm_calls == 0 and again.cost.kb_hits == 4
    assert again.points == first.points
    # an answer without a title: no items (a zero interest vector), no stand-in
    odd = builder(ml100k, backend, kb).build_user("c", window, [0, 1])
    assert odd.cost.llm_calls == 4
    assert all(p.long.interest == "" and p.long.items == () for p in odd.points)
    assert all(p.long.answer == "???" for p in odd.points)


def test_a_backend_failure_stores_nothing_for_the_user_in_flight_and_a_rerun_resumes(
        ml100k: Dataset, tmp_path: Path) -> None:
    store = InterestStore(tmp_path / "interests", InterestKey("ml-100k", "scripted:test", "p",
                                                              "fixed", 5, 3, "v"))
    windows = {u: [int(i) for i in ml100k.histories[n][:4]] for n, u in enumerate(["x", "y"])}
    jobs = [(u, w, [2, 3]) for u, w in windows.items()]
    # x: 4 answers; y: one answer, then the backend fails
    failing = ScriptedBackend([reply("Fargo (1996)")] * 5 + [BackendFailure("server gone")])
    with pytest.raises(BackendFailure):
        builder(ml100k, failing, None).build_all(jobs, store)
    assert store.load("x") is not None and store.load("y") is None
    rerun = ScriptedBackend([reply("Heat (1995)")] * 4)
    summary = builder(ml100k, rerun, None).build_all(jobs, store)
    assert (summary.users_built, summary.users_skipped, summary.llm_calls) == (1, 1, 4)
    assert store.load("y").at(3).short.interest == "Heat (1995)"   # type: ignore[union-attr]
    # a stored user built for another window is built again
    jobs[0] = ("x", windows["y"], [2, 3])
    again = builder(ml100k, ScriptedBackend([reply("Heat (1995)")] * 4), None)
    assert again.build_all(jobs, store).users_built == 1


def test_store_key_roundtrip_and_bundle(ml100k: Dataset, tmp_path: Path) -> None:
    key = InterestKey("ml-100k", "sha256:abc", "llm4sbr-interest-v1+x", "enc", 5, 3, "parse-v2")
    # every field is part of the key: another model, prompt or encoder is another folder
    for field_name, other in [("model", "sha256:def"), ("prompt", "v2"), ("localizer", "enc2"),
                              ("r", 4), ("short_items", 2), ("parser", "parse-v3")]:
        changed = replace(key, **{field_name: other})
        assert InterestStore(tmp_path, changed).directory != InterestStore(tmp_path, key).directory
    store = InterestStore(tmp_path, key)
    backend = ScriptedBackend([reply("Fargo (1996)")] * 2)
    record = builder(ml100k, backend, None).build_user("7", [1, 2, 3], [2])
    store.save(record)
    assert (store.directory / "key.json").is_file()
    assert store.load("7") == record and store.load("8") is None
    path = write_bundle(tmp_path / "b.jsonl.gz", key, [record])
    assert read_bundle(path) == (key, {"7": record})
    assert write_bundle(tmp_path / "c.jsonl.gz", key, [record]).read_bytes() == path.read_bytes()
    store._path("9").write_text("{not json", "utf-8")
    with pytest.raises(InterestStoreError, match="user-9.json"):
        store.load("9")
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(gzip.compress(b'{"key": {}}\n'))
    with pytest.raises(InterestStoreError, match="bad.jsonl.gz"):
        read_bundle(bad)


def test_a_bundle_under_the_same_key_seeds_the_store(ml100k: Dataset, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import reasonrec.interests as facade

    key = InterestKey("ml-100k", "scripted:test", "p", "fixed", 5, 3, "v")
    record = builder(ml100k, ScriptedBackend([reply("Fargo (1996)")] * 2), None).build_user(
        "7", [1, 2, 3], [2])
    bundle = write_bundle(tmp_path / "ml-100k.jsonl.gz", key, [record])
    monkeypatch.setattr(facade, "shipped_bundle", lambda dataset: bundle)
    store = InterestStore(tmp_path / "store", key)
    assert facade.seed_from_bundle(store, "ml-100k") == 1 and store.load("7") == record
    assert facade.seed_from_bundle(store, "ml-100k") == 0          # already there
    other = InterestStore(tmp_path / "store", replace(key, model="sha256:other"))
    assert facade.seed_from_bundle(other, "ml-100k") == 0 and other.load("7") is None
