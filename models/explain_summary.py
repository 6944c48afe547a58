"""One plain sentence per explained item, built by template from its paths' facts (#18).

The sentence names the item, the titles of the strongest path's facts and
nothing else (no title or number the facts and the measured effect do not
hold), so it can be checked against them. When no reasoning path reaches the
item it says so, and how far removing all reasoning moves it; a candidate
merely near the item is never offered as the reason. It says "recommended mainly
because" only where removing the path changes the item's rank; where it only
lowers the score, the path "supports" the item.
"""

from __future__ import annotations

from collections.abc import Sequence

from models.explain_effect import supports
from models.explain_schema import Effect, EvidenceKind, ExplanationPath, PathKind

MAX_TITLES = 2


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _without(effect: Effect, k: int, what: str) -> str:
    if effect.delta_rank == 0:
        # The smooth rank rose (other films gained on it); its own score may not have fallen.
        how = "on a lower score" if effect.delta_score < 0 else "with other films gaining on it"
        return f"without that {what} it would still rank {ordinal(effect.rank_after)}, {how}"
    if effect.rank_after > k:
        return f"without that {what} it would fall out of the top {k} (to {ordinal(effect.rank_after)})"
    return f"without that {what} it would rank {ordinal(effect.rank_after)}"


def _moves(effect: Effect | None) -> str:
    if effect is None or effect.delta_rank == 0:
        return "removing all reasoning does not move it"
    places = abs(effect.delta_rank)
    way = "down" if effect.delta_rank > 0 else "up"
    return f"removing all reasoning moves it {places} place{'s' * (places != 1)} {way}"


def _titles(titles: Sequence[str]) -> str:
    titles = list(dict.fromkeys(titles))[:MAX_TITLES]
    return ", ".join(titles)


def _chain_sentence(path: ExplanationPath, title: str, k: int, decides: bool) -> str:
    facts = path.evidence
    sources = [f.source.title for f in facts if f.source is not None]
    watched = next((f for f in facts if f.kind == EvidenceKind.CO_WATCH), None)
    if watched is not None:
        assert watched.source is not None
        link = (f"{watched.viewers_both} of {watched.viewers_source} viewers who watched "
                f"{watched.source.title} later watched {title}")
    else:
        genre = next(f for f in facts if f.kind == EvidenceKind.SHARED_GENRES)
        sources = list(dict.fromkeys(sources))
        them = "it" if len(sources) == 1 else "them"   # the films named just before
        link = f"{title} shares {', '.join(genre.genres)} with {them}"
    sources = list(dict.fromkeys(sources))
    if decides:
        because = (f"you watched {sources[0]}" if len(sources) == 1
                   else f"of your run of films ({_titles(sources)})")
        opening = f"Recommended mainly because {because}"
    else:
        opening = (f"Supported by {sources[0]}, which you watched" if len(sources) == 1
                   else f"Supported by your run of films ({_titles(sources)})")
    return f"{opening}: {link}; {_without(path.effect, k, 'chain')}"


def _interest_sentence(path: ExplanationPath, title: str, k: int, decides: bool) -> str:
    fact = path.evidence[0]
    interest = fact.interest or ""
    similar = next((f for f in path.evidence if f.kind == EvidenceKind.INTEREST_SIMILARITY),
                   None)
    if similar is not None and similar.closer_than is not None:
        link = f"{title} is closer to it than {similar.closer_than:.0%} of films"
    else:
        link = f"the reasoning matched it to {title}"
    opening = (f"Recommended mainly because your recent films suggest an interest in "
               f"\u201c{interest}\u201d, and" if decides else
               f"Supported by an interest your recent films suggest, \u201c{interest}\u201d:")
    return f"{opening} {link}; {_without(path.effect, k, 'interest')}"


def summary(title: str, paths: Sequence[ExplanationPath], without_reasoning: Effect | None,
            k: int) -> str:
    """The item's sentence from its ranked ``paths`` (strongest measured effect first).

    Args:
        title: the item's display title.
        paths: the item's paths, ranked.
        without_reasoning: the item's change with every chain and interest removed.
        k: the top-k size (to say when a removal drops the item out of it).
    """
    shown = [p for p in paths if p.shown]
    best = next((p for p in shown if supports(p.effect)), None)
    if best is not None:
        # "Mainly because" only where the path decides the rank; where its removal just
        # lowers the score, it supports the item, and the reasoning as a whole may still
        # move it.
        decides = best.effect.delta_rank > 0
        sentence = (_chain_sentence if best.kind == PathKind.CHAIN
                    else _interest_sentence)(best, title, k, decides)
        if not decides and without_reasoning is not None and without_reasoning.delta_rank:
            sentence += f"; {_moves(without_reasoning)}"
        return sentence + "."
    # Paths hidden for having no effect still reach the item: say so, not "no path".
    if shown or any(p.reaches_item for p in paths):
        return (f"Reasoning paths reach {title}, but removing them does not lower it; it comes "
                f"from the base model ({_moves(without_reasoning)}).")
    return (f"No reasoning path reaches this item; it comes from the base model "
            f"({_moves(without_reasoning)}).")
