"""Chain reasons that explain: what a film shares with its chain, or what a new interest is.

A 135M model asked for a free-text reason wrote templates and negations ("no
romance chain yet", "no suspense") or copied the intent label, and it never
saw the titles. So the reason is chosen, not written: we build a few candidate
phrases from the data (shared title words such as a franchise, shared genres,
the decade) and the LLM picks one by scoring each phrase as the continuation
of a sentence about the two films (:meth:`LLMBackend.score_continuations`,
mean log-probability per token; one prompt read per step). Every candidate
is about the films, so whichever it picks explains; when the LLM cannot score,
the first (most specific) candidate is used and the log says so.

:func:`is_template_reason` recognizes the reasons we replaced (negations,
templates, label copies, empty ones); the quality bench reports their share.
"""

from __future__ import annotations

import re
from functools import lru_cache

from models.data import Item
from reasoning.prompts import load_intents, load_prompt
from reasoning.structured import Asker

STAGE = "chain"
MAX_CANDIDATES = 4

# Genre -> (adjective, noun) for phrases such as "romantic comedy" or "animated musical".
_GENRE_WORDS: dict[str, tuple[str, str]] = {
    "Action": ("action", "action film"), "Adventure": ("adventure", "adventure"),
    "Animation": ("animated", "animated film"), "Children's": ("children's", "children's film"),
    "Comedy": ("comic", "comedy"), "Crime": ("crime", "crime film"),
    "Documentary": ("documentary", "documentary"), "Drama": ("dramatic", "drama"),
    "Fantasy": ("fantasy", "fantasy"), "Film-Noir": ("noir", "film noir"),
    "Horror": ("horror", "horror film"), "Musical": ("musical", "musical"),
    "Mystery": ("mystery", "mystery"), "Romance": ("romantic", "romance"),
    "Sci-Fi": ("sci-fi", "sci-fi film"), "Thriller": ("suspense", "thriller"),
    "War": ("war", "war film"), "Western": ("western", "western"),
}
# Which genre names the film in a two-genre phrase ("romantic comedy", not "comic romance").
_NOUN_PRIORITY = ("Comedy", "Thriller", "Drama", "Western", "Musical", "Documentary", "Film-Noir",
                  "Horror", "Mystery", "Romance", "War", "Sci-Fi", "Fantasy", "Adventure", "Crime",
                  "Action", "Animation", "Children's")
_TITLE_STOP = {"the", "a", "an", "of", "and", "in", "to", "on", "for", "with", "at", "from", "by",
               "is", "it", "my", "me", "la", "le", "el", "de", "der", "die", "das", "les", "i", "ii",
               "iii", "iv", "part", "2", "3", "4"}
_NEGATIONS = {"no", "not", "none", "never", "nothing", "without", "yet", "nor", "neither", "isn't",
              "doesn't", "don't", "aren't", "wasn't"}
_TEMPLATE_PATTERNS = (re.compile(r"\bchain\b"), re.compile(r"\bfirst item\b"),
                      re.compile(r"\bsame intent\b"), re.compile(r"\bwindow\b"),
                      re.compile(r"\bintent\b"), re.compile(r"\bjoined\b"))
_FILLER = {"a", "an", "the", "another", "same", "more", "film", "films", "movie", "movies", "new",
           "also", "like", "one", "again", "and", "of", "for", "some", "it", "is", "its", "both",
           "second", "interest", "in", "with", "to", "s"}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.casefold())


@lru_cache(maxsize=1)
def _vocabulary_words() -> frozenset[str]:
    return frozenset(w for label in load_intents().labels for w in _words(label))


def is_template_reason(reason: str, intent_label: str) -> bool:
    """Whether ``reason`` explains nothing about the films.

    True for an empty reason, a negation ("no romance chain yet"), a mechanism
    template ("first item of the window", anything about chains or intents),
    and a copy of the intent label or of other intent labels ("family fun",
    "another serious drama", "family fun, serious drama"): its words, less
    filler words, all come from intent labels.
    """
    words = _words(reason)
    if not words:
        return True
    if any(w in _NEGATIONS or w.endswith("n't") for w in words):
        return True
    lowered = reason.casefold()
    if any(p.search(lowered) for p in _TEMPLATE_PATTERNS):
        return True
    content = {w for w in words if w not in _FILLER}
    labels = set(_words(intent_label)) | _vocabulary_words()
    return not content or content <= labels


def _title_words(item: Item) -> list[str]:
    title = re.sub(r"\(\d{4}\)", "", item.title)
    # "Empire Strikes Back, The" -> the article is dropped anyway
    return [w for w in re.findall(r"[A-Za-z0-9']+", title) if w.casefold() not in _TITLE_STOP]


def _decade(item: Item) -> str | None:
    return f"{item.year // 10 * 10}s" if item.year else None


def genre_phrase(genres: list[str] | tuple[str, ...]) -> str | None:
    """``"romantic comedy"``, ``"thriller"``: at most two genres, the noun by priority."""
    known = [g for g in genres if g in _GENRE_WORDS]
    if not known:
        return None
    ordered = sorted(known, key=lambda g: _NOUN_PRIORITY.index(g) if g in _NOUN_PRIORITY else 99)
    noun = ordered[0]
    if len(ordered) == 1:
        return _GENRE_WORDS[noun][1]
    return f"{_GENRE_WORDS[ordered[1]][0]} {_GENRE_WORDS[noun][1]}"


def _article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def shared_candidates(new: Item, chain_items: list[Item]) -> list[str]:
    """Phrases about what ``new`` shares with the chain, most specific first."""
    tail = chain_items[-1]
    candidates: list[str] = []
    shared_words = [w for w in _title_words(new) if w.casefold() in
                    {t.casefold() for item in chain_items for t in _title_words(item)}]
    if shared_words:
        name = " ".join(shared_words[:3])
        candidates.append(f"another {name} film")
    shared_genres = [g for g in new.genres if g in tail.genres] or \
                    [g for g in new.genres if any(g in i.genres for i in chain_items)]
    phrase = genre_phrase(shared_genres)
    decade = _decade(new) if _decade(new) == _decade(tail) else None
    if phrase and decade:
        candidates.append(f"another {decade} {phrase}")
    if phrase:
        candidates.append(f"another {phrase}, like {tail.title}")
    if decade and not candidates:   # the decade alone says little: only when nothing else is shared
        candidates.append(f"another film of the {decade}, like {tail.title}")
    if not candidates:   # nothing in common in the data: name the new film's own kind
        own = genre_phrase(list(new.genres)) or "film"
        candidates.append(f"{_article(own)} to follow {tail.title}")
    return _distinct(candidates)


def new_interest_candidates(new: Item) -> list[str]:
    """Phrases naming the interest a film starts, most specific first."""
    phrase = genre_phrase(list(new.genres)) or "film"
    decade = _decade(new)
    candidates = []
    if decade:
        candidates.append(f"{_article(decade + ' ' + phrase)}")
    candidates.append(f"{_article(phrase)} such as {new.title}")
    words = _title_words(new)
    if words:
        candidates.append(f"films like {new.title}")
    return _distinct(candidates)


def _distinct(candidates: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for text in candidates:
        seen.setdefault(text.casefold(), text)
    return list(seen.values())[:MAX_CANDIDATES]


def choose_reason(asker: Asker, step: int, new: Item, chain_items: list[Item] | None) -> str:
    """The reason for step ``step``: joining ``chain_items`` or (``None``) starting a chain.

    The LLM scores the candidates after a sentence about the films (prompt files
    ``assets/prompts/reason_join.toml`` and ``reason_new.toml``); its answer is stored in the knowledge base
    keyed by the films and candidates.
    """
    if chain_items:
        prompt = load_prompt("reason_join")
        candidates = shared_candidates(new, chain_items)
        prefix = prompt.scored_text(new=new.describe(), previous=chain_items[-1].describe())
    else:
        prompt = load_prompt("reason_new")
        candidates = new_interest_candidates(new)
        prefix = prompt.scored_text(new=new.describe())
    if len(candidates) == 1:
        return candidates[0]
    return asker.choose(STAGE, "reason", prompt.version, {"prefix": prefix, "candidates": candidates},
                        f"reason of step {step} (item {new.item_id})", prefix, candidates,
                        fallback="the most specific phrase from the data")
