"""LLM4SBR stage 1 (Qiao et al., arXiv 2402.13840): long- and short-term interests per window.

For each point of the fusion sample (the window prefix ``0..step`` of a
user's graph window), the local LLM is asked the paper's two questions,
adapted to a 135M model (``assets/prompts/llm4sbr_interest.toml``): guess
one movie the viewer is interested in in the **long term** (reading the
whole prefix) and in the **short term** (its last :data:`SHORT_TERM_ITEMS`
items). The answer is a short generated title (at most 12 tokens, greedy):
SmolLM2-135M names a film, often an invented one, which is what the paper's
localization step is for. Each answer is localized to the top-r catalogue
items by the configured localizer (``reasoning.localizer``, the sentence
encoder), weights normalized to sum 1; the models layer then forms
``h = Σ w · e_item`` from the items' text-encoder vectors. Items the user has
seen are not excluded: the authors' code localizes against every item.

Every question goes through the knowledge base (kind :data:`KB_KIND`), so an
identical question (same titles, same horizon, same model and prompt) is
never asked twice, across users and runs. A backend failure stops the build:
nothing is stored for the user in flight, never a stand-in. An answer with no
usable title is stored as such (``interest == ""``, no items): that point
reads a zero interest vector, and the summary counts it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from reasoning.backend import LLMRequest
from reasoning.interest_store import (InterestCost, InterestKey, InterestStore,
                                      LocalizedInterest, PointInterests, UserInterests)
from reasoning.prompts import load_prompt

if TYPE_CHECKING:
    from models.data import Dataset
    from models.data.catalogue import Item
    from reasoning.backend import LLMBackend
    from reasoning.kb import KnowledgeBase
    from reasoning.localizer import IntentLocalizer

PROMPT = "llm4sbr_interest"
KB_KIND = "llm4sbr_interest"
#: The short-term question reads the prefix's last items (the paper: the session's end).
SHORT_TERM_ITEMS = 3
#: r, catalogue items per interest (the paper's r = 5).
R_ITEMS = 5
MAX_INTEREST_CHARS = 80
#: Bump when :func:`parse_interest` changes: stored titles and items depend on it.
PARSER_VERSION = "parse-v2"


class Horizon(str, Enum):
    """Which of the paper's two questions."""

    LONG = "long"
    SHORT = "short"

    @property
    def words(self) -> str:
        return f"{self.value} term"


def movie_title(item: Item) -> str:
    """``Title (year)``, as the prompt's example writes titles."""
    title = item.display_name or item.title
    if item.year is not None and f"({item.year})" not in title:
        title = f"{title} ({item.year})"
    return title


def question_items(titles: Sequence[str], horizon: Horizon) -> list[str]:
    """The titles a question shows: all of the prefix (long) or its last few (short)."""
    return list(titles) if horizon is Horizon.LONG else list(titles[-SHORT_TERM_ITEMS:])


def question_messages(titles: Sequence[str], horizon: Horizon) -> list[dict[str, str]]:
    """Chat messages of one question (``titles`` as :func:`question_items` chose them)."""
    numbered = "\n".join(f"{n}. {t}" for n, t in enumerate(titles, start=1))
    return load_prompt(PROMPT).messages(items=numbered, horizon=horizon.words)


_LEAD_IN = re.compile(r"^(?:.*?\b(?:is|are|would be|might be|could be|like|likes|enjoy|enjoys)"
                      r"\s*:?\s+)(?=[\"'A-Z0-9])")
_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")
_FILM_WORD = re.compile(r"^(?:(?:[Tt]he\s+)?(?:film|movie)\s+|(?:Film|Movie|Title)\s*:\s*)"
                        r"(?=[\"'A-Z0-9])")
# An answer that restates the question names no movie.
_ECHO = re.compile(r"\b(?:the viewer|interested in|long term|short term)\b", re.IGNORECASE)


def parse_interest(answer: str) -> str:
    """The movie title in an LLM answer, or "" when there is none.

    Keeps the first non-empty line; drops list numbering, a lead-in sentence
    ("The movie they like in the short term is ..."), quotes, a year cut off
    by the token limit (``"(201"``) and trailing punctuation.
    """
    line = next((ln.strip() for ln in answer.splitlines() if ln.strip()), "")
    line = _NUMBERING.sub("", line)
    line = _LEAD_IN.sub("", line, count=1)
    line = _FILM_WORD.sub("", line, count=1)
    if _ECHO.search(line):
        return ""
    line = re.sub(r"\s*\([^)]*$", "", line)          # an unclosed "(201" at the token limit
    line = re.sub(r"[\"“”*]", "", line)
    line = line.strip().strip("'‘’").strip().rstrip(".,;:!").strip()
    if sum(c.isalpha() for c in line) < 2:
        return ""
    return line[:MAX_INTEREST_CHARS].strip()


@dataclass(frozen=True)
class BuildSummary:
    """What a :meth:`InterestBuilder.build_all` call did."""

    users_built: int
    users_skipped: int
    points: int
    llm_calls: int
    kb_hits: int
    tokens_in: int
    tokens_out: int
    unusable_answers: int
    seconds: float


class InterestBuilder:
    """Asks, reuses and localizes the two interests of every window prefix.

    Args:
        dataset: the catalogue (titles, item ids).
        backend: the local LLM.
        kb: the knowledge base (None: every question is asked).
        localizer: maps an answer to catalogue items (the sentence encoder).
        r: items per interest.
    """

    def __init__(self, dataset: Dataset, backend: LLMBackend, kb: KnowledgeBase | None,
                 localizer: IntentLocalizer, r: int = R_ITEMS) -> None:
        self.dataset = dataset
        self.backend = backend
        self.kb = kb
        self.localizer = localizer
        self.r = r
        self.prompt = load_prompt(PROMPT)

    @property
    def key(self) -> InterestKey:
        return InterestKey(dataset=self.dataset.name, model=self.backend.model_identity,
                           prompt=self.prompt.version, localizer=self.localizer.identity,
                           r=self.r, short_items=SHORT_TERM_ITEMS, parser=PARSER_VERSION)

    def ask(self, titles: Sequence[str], horizon: Horizon, cost: InterestCost) -> str:
        """The LLM's answer to one question, from the KB when it was asked before.

        Raises:
            reasoning.backend.LLMError: the backend failed; nothing is stored.
        """
        shown = question_items(titles, horizon)
        fields = {"items": shown, "horizon": horizon.value}
        model = self.backend.model_identity
        if self.kb is not None:
            stored = self.kb.get(KB_KIND, model, self.prompt.version, fields)
            if stored is not None:
                cost.kb_hits += 1
                return str(stored["answer"])
        # Greedy (the request's default temperature 0): a stored answer is the answer.
        response = self.backend.complete(LLMRequest(messages=question_messages(shown, horizon),
                                                    max_tokens=self.prompt.max_tokens))
        cost.llm_calls += 1
        cost.tokens_in += response.tokens_in
        cost.tokens_out += response.tokens_out
        if self.kb is not None:
            self.kb.put(KB_KIND, model, self.prompt.version, fields,
                        {"answer": response.text, "tokens_in": response.tokens_in,
                         "tokens_out": response.tokens_out})
        return response.text

    def localize(self, answer: str) -> LocalizedInterest:
        interest = parse_interest(answer)
        ranked = self.localizer.localize(interest, self.r) if interest else []
        total = sum(w for _, w in ranked)
        catalogue = self.dataset.catalogue
        items = tuple((catalogue[index].item_id, round(w / total, 6)) for index, w in ranked
                      ) if total > 0 else ()
        return LocalizedInterest(answer=answer, interest=interest, items=items)

    def build_user(self, user: str, window: Sequence[int], steps: Sequence[int]) -> UserInterests:
        """Interests at each of ``steps`` of ``window`` (catalogue indices, window order)."""
        started = time.perf_counter()
        catalogue = self.dataset.catalogue
        titles = [movie_title(catalogue[int(i)]) for i in window]
        cost = InterestCost()
        points = []
        for step in sorted(set(int(s) for s in steps)):
            if not 0 <= step < len(window):
                raise ValueError(f"step {step} is outside user {user}'s {len(window)}-item window")
            prefix = titles[: step + 1]
            points.append(PointInterests(step, self.localize(self.ask(prefix, Horizon.LONG, cost)),
                                         self.localize(self.ask(prefix, Horizon.SHORT, cost))))
        cost.seconds = round(time.perf_counter() - started, 3)
        return UserInterests(user=str(user),
                             window=tuple(catalogue[int(i)].item_id for i in window),
                             points=points, cost=cost)

    def build_all(self, jobs: Sequence[tuple[str, Sequence[int], Sequence[int]]],
                  store: InterestStore,
                  log: Callable[[str], None] = lambda _: None) -> BuildSummary:
        """Build and save each ``(user, window, steps)`` not yet in ``store``; a backend
        failure propagates after the users finished so far are saved."""
        started = time.perf_counter()
        built = skipped = unusable = points = 0
        total = InterestCost()
        for number, (user, window, steps) in enumerate(jobs, start=1):
            done = store.load(user)
            if done is not None and [str(i) for i in done.window] == [
                    self.dataset.catalogue[int(i)].item_id for i in window] and all(
                    done.at(s) is not None for s in steps):
                skipped += 1
                continue
            record = self.build_user(user, window, steps)
            store.save(record)
            built += 1
            points += len(record.points)
            unusable += sum((not p.long.interest) + (not p.short.interest) for p in record.points)
            for name in ("llm_calls", "kb_hits", "tokens_in", "tokens_out"):
                setattr(total, name, getattr(total, name) + getattr(record.cost, name))
            elapsed = time.perf_counter() - started
            log(f"[{number}/{len(jobs)}] user {user}: {record.cost.llm_calls} LLM calls, "
                f"{record.cost.kb_hits} KB hits, {record.cost.seconds:.1f} s "
                f"({elapsed / 60:.1f} min so far)")
        return BuildSummary(users_built=built, users_skipped=skipped, points=points,
                            llm_calls=total.llm_calls, kb_hits=total.kb_hits,
                            tokens_in=total.tokens_in, tokens_out=total.tokens_out,
                            unusable_answers=unusable,
                            seconds=round(time.perf_counter() - started, 1))
