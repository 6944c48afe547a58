"""Explanations that reach the item (#18), on real ml-100k, the shipped graphs and fused run.

Checks against the data itself: every co-watch fact is recounted directly
from the training interactions (each history without its validation and
test targets), every interest similarity is read back from the localizer,
every sentence names only titles in its facts, and replaying a path's
removal moves the item exactly as the path says.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from models.explain import Explainer, Removal
from models.explain_paths import reaches
from models.explain_schema import (Effect, EvidenceFact, EvidenceKind, Explanation, ExplanationPath,
                                   ItemRef, PathEnd, PathFlag, PathKind)
from models.explain_summary import ordinal, summary, supports
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)

USERS = 4


@pytest.fixture(scope="module")
def shipped():
    """The shipped fused run on the shipped graphs (as ``reasonrec explain`` loads them)."""
    from reasonrec.config import load_config
    from reasonrec.fusion import workspace
    from reasonrec.studio import Studio
    from reasoning.localizer import open_localizer

    studio = Studio(load_config(None, {"fusion": {"graphs": "bundle"}}))
    ws = workspace(studio, studio.config.fusion)
    explainer = ws.explainer(ws.fused(studio.config.fusion.variant, train_if_missing=False))
    explainer.interest_similarity = open_localizer(studio.dataset, studio.reasoning_settings())
    return studio, ws, explainer


@pytest.fixture(scope="module")
def explanations(shipped) -> list[Explanation]:
    _, ws, explainer = shipped
    return [explainer.explain(u.user_id) for u in ws.user_graphs[:USERS]]


def direct_co_watch(histories: list[np.ndarray], source: int, target: int) -> tuple[int, int]:
    """(training users who watched source, of them who watched target at a later position)."""
    viewers = both = 0
    for history in histories:
        train = list(history[:-2]) if len(history) >= 3 else list(history)
        if source not in train:
            continue
        viewers += 1
        first = train.index(source)
        both += any(i == target for i in train[first + 1:])
    return viewers, both


def test_evidence_counts_match_a_direct_count_over_training(shipped, explanations) -> None:
    studio, _, _ = shipped
    histories = studio.dataset.histories
    users_with_training = sum(len(h) > 0 for h in histories)
    checked = 0
    for explanation in explanations:
        for item in explanation.items:
            for path in item.paths:
                for fact in path.evidence:
                    if fact.kind != EvidenceKind.CO_WATCH or checked >= 40:
                        continue
                    viewers, both = direct_co_watch(histories, fact.source.index,
                                                    fact.target.index)
                    assert (fact.viewers_source, fact.viewers_both) == (viewers, both), fact.text
                    target_viewers = sum(fact.target.index in (list(h[:-2]) if len(h) >= 3
                                                               else list(h)) for h in histories)
                    assert fact.viewers_target == target_viewers
                    assert fact.users == users_with_training
                    assert fact.lift == pytest.approx(
                        (both / viewers) / (target_viewers / users_with_training), abs=1e-4)
                    assert f"{both} of {viewers} viewers" in fact.text
                    checked += 1
    assert checked >= 10, "too few co-watch facts to check"


def test_interest_similarity_is_the_localizers(shipped, explanations) -> None:
    _, _, explainer = shipped
    seen = 0
    for explanation in explanations:
        for item in explanation.items:
            for path in item.paths:
                for fact in path.evidence:
                    if fact.kind != EvidenceKind.INTEREST_SIMILARITY:
                        continue
                    scores = explainer.interest_similarity.encoder_scores(fact.interest)
                    value = float(scores[item.index - 1])
                    assert fact.similarity == pytest.approx(value, abs=1e-4)
                    assert fact.closer_than == pytest.approx(float((scores < value).mean()),
                                                             abs=1e-4)
                    assert fact.closer_than >= 0.9
                    seen += 1
    assert seen > 0, "no interest fact in the sample: the test would pass vacuously"


def test_summary_names_only_titles_in_the_facts(shipped, explanations) -> None:
    studio, _, _ = shipped
    titles = [i.display_name for i in studio.dataset.catalogue.items[1:]]
    for explanation in explanations:
        for item in explanation.items:
            assert item.summary.endswith(".")
            allowed = {item.title} | {f.source.title for p in item.paths if p.shown
                                      for f in p.evidence if f.source is not None}
            named = {t for t in titles if len(t) >= 6 and t in item.summary}
            # A title inside an allowed one (e.g. "Heat" in "In the Heat of the Night") is fine.
            stray = {t for t in named if not any(t in a for a in allowed)}
            assert not stray, (item.summary, stray)
            if not item.reached:
                assert item.summary.startswith("No reasoning path reaches this item")
            elif not any(p.shown for p in item.paths):   # reached, every path without effect
                assert item.summary.startswith(f"Reasoning paths reach {item.title}, but "
                                               "removing them does not lower it")
            # one film named: "shares Comedy with it", never "with them"
            if item.summary.startswith("Recommended mainly because you watched ") or (
                    ", which you watched:" in item.summary):
                assert " with them" not in item.summary, item.summary
            # "mainly because" only where the strongest supporting path moves the rank
            best = next((p for p in item.paths if p.shown and supports(p.effect)), None)
            if best is not None:
                assert item.summary.startswith("Recommended mainly because") == (
                    best.effect.delta_rank > 0), item.summary
                assert item.summary.startswith(("Recommended mainly because", "Supported by"))


def test_removing_a_path_moves_the_item_as_explained(shipped, explanations) -> None:
    _, ws, explainer = shipped
    checked = 0
    for explanation in explanations[:2]:
        point = explainer.point(explanation.user)
        for item in explanation.items:
            # Every path, shown or hidden: a path hidden for having no effect must replay
            # to no effect too (the shipped run may keep the base model's weights).
            for path in item.paths:
                removal = explainer.removal(point, chains=path.removal.chains,
                                            nodes=path.removal.nodes)
                assert removal == Removal(tuple(path.removal.chains), tuple(path.removal.nodes))
                focus = explainer.counterfactual(point, removal, focus=item.index).focus
                assert focus.rank_after == path.effect.rank_after
                assert focus.delta_rank == path.effect.delta_rank
                # (a fresh point is scored in other batches: float rounding differs by ~1e-6)
                assert focus.delta_score == pytest.approx(path.effect.delta_score, abs=1e-5)
                checked += 1
            best = next((p for p in item.paths if p.shown and supports(p.effect)), None)
            if best is not None:   # the sentence's rank is the strongest path's measured one
                assert ordinal(best.effect.rank_after) in item.summary
    assert checked > 0


def test_paths_reach_the_item_or_say_they_do_not(explanations) -> None:
    for explanation in explanations:
        for item in explanation.items:
            for path in item.paths:
                assert path.ends_at in ("item", "chain_end")   # never a nearest candidate
                assert path.reaches_item == bool(path.evidence) == (path.ends_at == "item")
                if path.reaches_item:
                    assert path.nodes[-1].item_index == item.index
                    assert path.edges[-1].kind == "evidence"
                    assert path.edges[-1].reason == path.evidence[0].text
                assert path.shown == (not path.flags)
                if PathFlag.REJECTED_CHAIN in path.flags:
                    assert not reaches(path)
            assert item.reached == any(reaches(p) for p in item.paths)
    reached = [i.reached for e in explanations for i in e.items]
    assert any(reached), "no item reached: the checks above would be vacuous"


def _chain_path(delta_rank: int, rank_after: int) -> ExplanationPath:
    shadow, die_hard = (ItemRef(index=i, item_id=str(i), title=t)
                        for i, t in ((1, "The Shadow"), (2, "Die Hard 2")))
    fact = EvidenceFact(kind=EvidenceKind.CO_WATCH, text="41 of 120 ...", numeric=True,
                        source=die_hard, target=shadow, viewers_source=120, viewers_both=41)
    effect = Effect(delta_score=-0.2, delta_rank=delta_rank, rank_after=rank_after,
                    in_top_k_after=rank_after <= 10, delta_soft_rank=0.3)
    return ExplanationPath(id="c1", kind=PathKind.CHAIN, ends_at=PathEnd.ITEM, chain="c1",
                           nodes=[], edges=[], effect=effect, evidence=[fact],
                           reaches_item=True, shown=True)


def test_summary_says_mainly_because_only_where_the_path_moves_the_rank() -> None:
    link = "41 of 120 viewers who watched Die Hard 2 later watched The Shadow"
    decisive = summary("The Shadow", [_chain_path(6, 7)], None, 10)
    assert decisive == (f"Recommended mainly because you watched Die Hard 2: {link}; without "
                        "that chain it would rank 7th.")
    nudge = summary("The Shadow", [_chain_path(0, 1)], None, 10)
    assert nudge == (f"Supported by Die Hard 2, which you watched: {link}; without that chain "
                     "it would still rank 1st, on a lower score.")
    # No single path moves it, the reasoning as a whole does: the sentence says so.
    together = Effect(delta_score=-0.5, delta_rank=2, rank_after=3, in_top_k_after=True)
    assert summary("The Shadow", [_chain_path(0, 1)], together, 10) == (
        nudge[:-1] + "; removing all reasoning moves it 2 places down.")


def test_summary_template_without_paths() -> None:
    down = Effect(delta_score=-0.5, delta_rank=4, rank_after=9, in_top_k_after=True)
    text = summary("The Shadow", [], down, 10)
    assert text == ("No reasoning path reaches this item; it comes from the base model "
                    "(removing all reasoning moves it 4 places down).")
    assert re.search(r"does not move it", summary("X", [], None, 10))
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"]
