"""`reasonrec reason`'s plain summary of a graph, read through the typed graph readers."""

from __future__ import annotations

from reasonrec.cli_reasoning import _describe
from tests.models.reasoning_graphs import INTENTS, example_graph


def test_summary_lists_chains_items_interests_and_the_build_cost() -> None:
    lines = _describe(example_graph()).splitlines()
    assert lines[0] == "user u1: 8-item window, 3 chains"
    assert lines[1] == f"  c1 [verified, score 0.80] {INTENTS[0]}:"
    assert lines[2:5] == ["    Movie 5 (joins c1)", "    Movie 2 (joins c1)",
                          "    Movie 3 (joins c1)"]
    assert f"  c3 [unverified, score -] {INTENTS[4]}:" in lines
    # Interests in the order they were proposed, each with its candidates' titles.
    assert [line for line in lines if line.startswith("  next after")] == [
        f"  next after c1: {INTENTS[1]!r} -> Movie 20; Movie 21",
        f"  next after c1: {INTENTS[3]!r} -> Movie 22",
        "  next after c3: 'an intent outside the vocabulary' -> Movie 20; Movie 23"]
    assert lines[-1].startswith("build: 0.00 s, 0 LLM calls") and lines[-1].endswith(
        "0 dropped pieces")
