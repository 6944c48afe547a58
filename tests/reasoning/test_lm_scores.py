"""Zero-shot LM ranking's scores: normalization, prompt, store keys and resume, bundles,
and (real SmolLM2) cached-prefix scores equal to scores read from a fresh context."""

from __future__ import annotations

import gzip
from dataclasses import replace
from pathlib import Path

import pytest

from models.data.catalogue import Item
from reasoning.backend import LLMBackend
from reasoning.lm_scores import (LMScoreKey, LMScoreStore, Normalization, PointScores,
                                 continuation, natural_title, normalize, prompt_text,
                                 read_bundle, write_bundle)

KEY = LMScoreKey(dataset="ml-100k", base_run="srgnn/run-1", top_n=50, model="sha256:abc",
                 prompt="lm-rank-v1+0000", history=10)


def _point(user: str, step: int) -> PointScores:
    return PointScores(user, step, (3, 1, 2), (-6.0, -2.0, -9.0), (3, 1, 3), 40, 1, 0.5)


def test_per_token_normalization_divides_by_the_title_length() -> None:
    assert normalize([-6.0, -2.0, -9.0], [3, 1, 3]) == [-2.0, -2.0, -3.0]
    assert normalize([-6.0, -2.0], [3, 1], Normalization.TOTAL) == [-6.0, -2.0]
    # per token, a long title is not penalized for its length alone
    assert _point("1", 0).scores() == [-2.0, -2.0, -3.0]
    with pytest.raises(ValueError, match="2 log-probabilities for 1 lengths"):
        normalize([-1.0, -2.0], [1])


def test_titles_read_as_people_write_them_and_the_prompt_is_the_plain_list() -> None:
    fifth = Item(1, "1", "Fifth Element, The", 1997)
    heat = Item(2, "2", "Heat", 1995)
    assert natural_title(fifth) == "The Fifth Element"   # no year: six tokens each, for nothing
    assert natural_title(Item(3, "3", "Twelve Monkeys (1995)", 1995)) == "Twelve Monkeys"
    assert natural_title(Item(4, "4", "Ninotchka", None)) == "Ninotchka"
    assert prompt_text([fifth, heat]) == "Movies like The Fifth Element, Heat,"
    assert continuation(heat) == " Heat"


def test_the_store_resumes_per_point_and_never_mixes_keys(tmp_path: Path) -> None:
    path = tmp_path / "lm.sqlite"
    store = LMScoreStore(path)
    store.claim(KEY)
    store.put(KEY, _point("7", 8))
    store.close()
    store = LMScoreStore(path)   # a new process sees every committed point
    try:
        assert store.done(KEY, "7") == {8}
        assert store.points(KEY) == [_point("7", 8)]
        for changed in (replace(KEY, base_run="srgnn/run-2"), replace(KEY, top_n=20),
                        replace(KEY, model="sha256:def"), replace(KEY, prompt="lm-rank-v2"),
                        replace(KEY, history=5)):
            assert changed.digest != KEY.digest
            assert store.done(changed, "7") == set() and store.points(changed) == []
    finally:
        store.close()


def test_bundles_round_trip_and_bad_ones_name_the_line(tmp_path: Path) -> None:
    path = write_bundle(tmp_path / "s.jsonl.gz", KEY, [_point("7", 8), _point("7", 9)])
    assert read_bundle(path) == (KEY, [_point("7", 8), _point("7", 9)])
    bad = tmp_path / "bad.jsonl.gz"
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    bad.write_bytes(gzip.compress(("\n".join([lines[0], '{"user": "7"}']) + "\n").encode()))
    with pytest.raises(ValueError, match=r"bad.jsonl.gz, line 2: not a scored point"):
        read_bundle(bad)
    (tmp_path / "plain.jsonl.gz").write_text("not gzip")
    with pytest.raises(ValueError, match="not a gzipped LM-score bundle"):
        read_bundle(tmp_path / "plain.jsonl.gz")


@pytest.mark.slow
def test_cached_prefix_scores_equal_fresh_context_scores(llama_backend: LLMBackend) -> None:
    """One prefix read plus N continuations (KV cut back each time) scores each title as a
    fresh context does (the prefix re-read before every single continuation)."""
    history = [Item(1, "1", "Star Wars", 1977), Item(2, "2", "Fifth Element, The", 1997),
               Item(3, "3", "Heat", 1995)]
    titles = [" The Empire Strikes Back (1980)", " Toy Story (1995)", " Fargo (1996)",
              " Alien (1979)"]
    prefix = prompt_text(history)
    shared = llama_backend.score_continuations(prefix, titles)
    fresh, fresh_tokens = [], 0
    for title in titles:
        # an unrelated prefix first, so nothing of this prefix is left in the context
        llama_backend.score_continuations("Completely different text:", [" x"])
        result = llama_backend.score_continuations(prefix, [title])
        assert result.tokens_read > len(prefix) // 8   # the prefix was read again
        fresh.append(result.logprobs[0])
        fresh_tokens += result.tokens_read
    assert shared.logprobs == pytest.approx(fresh, abs=1e-3)
    # the shared read costs one prefix plus the continuations, not one prefix per title
    assert shared.tokens_read < fresh_tokens
