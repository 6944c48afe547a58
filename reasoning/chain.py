"""Stage 1: chained graph reasoning over the session window.

Walk the window in order. Stage 1 is asked as two questions per item, so that
the knowledge base can reuse most of the work across sessions:

* **intent** (item-level): the item's title, year and genres -> one intent
  label from the closed vocabulary (``assets/prompts/intents.toml``). The same
  movie gets the same question in every session that holds it.
* **chain** (structural): the viewer's attributes, the chains so far (named by
  their intents) and the new item's intent -> the chain it continues, or
  ``new``. It names no movie, so the question recurs whenever the same
  intents meet.
* **reason** (about the films, :mod:`reasoning.reasons`): what the item
  shares with the chain it joins, or what the new interest is, chosen by the
  LLM among phrases built from the data.

The first item always starts chain ``c1``: there is no chain to ask about. When
the LLM fails a question (after its retry), the item gets a rule-based answer
and the build log records the dropped piece and the fallback used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.data import Item
from reasoning.prompts import IntentVocabulary, load_prompt
from reasoning.reasons import choose_reason
from reasoning.schemas import NEW_CHAIN, ChainAnswer, IntentAnswer, chain_schema, intent_schema
from reasoning.structured import Asker, Question

STAGE = "chain"
MAX_INTENT_OPTIONS = 4   # a short enum: shorter prompts, fewer ways for a small model to stray
# Attributes shown to the LLM, coarsened so that chain questions still recur
# across viewers (an exact age or a zip code would make every question unique).
_VIEWER_KEYS = ("age", "gender", "occupation")


@dataclass
class Chain:
    """A chain being built: its id, founding intent, and window steps in order."""

    id: str
    intent: str
    steps: list[int] = field(default_factory=list)


@dataclass
class Link:
    """How one window item joined the chains."""

    step: int
    chain: str
    intent: str
    reason: str
    previous_step: int | None   # the chain's tail before this item; None for a new chain


def viewer_text(attributes: dict[str, str]) -> str:
    """Coarse user attributes for prompts: age in decades, gender, occupation.

    Returns ``unknown`` when the dataset has none of them.
    """
    lowered = {str(k).lower().split(":")[0]: str(v).strip() for k, v in (attributes or {}).items()}
    parts = []
    for key in _VIEWER_KEYS:
        value = lowered.get(key, "")
        if not value:
            continue
        if key == "age":
            try:
                value = f"{int(float(value)) // 10 * 10}s"
            except ValueError:
                continue
        parts.append(f"{key} {value}")
    return ", ".join(parts) or "unknown"


def item_intent(asker: Asker, item: Item, vocabulary: IntentVocabulary) -> str:
    """The item's intent label; falls back to the best genre fit when the LLM fails."""
    options = vocabulary.options_for(item.genres, MAX_INTENT_OPTIONS)
    if len(options) == 1:
        return options[0]   # the genres leave one choice: no question to ask
    prompt = load_prompt("intent")
    question = Question(
        stage=STAGE, kind="intent", prompt=prompt,
        messages=prompt.messages(item=item.describe(), options=", ".join(options)),
        schema=intent_schema(options), answer_model=IntentAnswer, context={"options": options},
        key_fields={"item": item.describe(), "options": options},
        piece=f"intent of item {item.item_id}",
        fallback=f"intent {options[0]!r}, the best fit of its genres")
    answer = asker.ask(question)
    return options[0] if answer is None else answer["intent"]


def chain_options(chains: list[Chain], intent: str) -> list[str]:
    """Answer options: the chains' distinct intents plus ``new``, most plausible first.

    A chain with the item's own intent comes first; when there is none,
    ``new`` does. Other chains follow in vocabulary-independent sorted order,
    not by recency, so the question depends only on which intents are present.
    """
    present = sorted({c.intent for c in chains})
    others = [label for label in present if label != intent]
    if intent in present:
        return [intent, *others, NEW_CHAIN]
    return [NEW_CHAIN, *others]


def choose_chain(asker: Asker, step: int, item: Item, intent: str, chains: list[Chain],
                 viewer: str) -> str:
    """The chain id the item at ``step`` continues, or ``"new"``."""
    prompt = load_prompt("chain")
    options = chain_options(chains, intent)
    listing = "; ".join(label for label in options if label != NEW_CHAIN)
    same_intent = [c for c in chains if c.intent == intent]
    question = Question(
        stage=STAGE, kind="chain", prompt=prompt,
        messages=prompt.messages(viewer=viewer, chains=listing, intent=intent,
                                 options=", ".join(options)),
        schema=chain_schema(options), answer_model=ChainAnswer,
        context={"options": options},
        key_fields={"viewer": viewer, "chains": listing, "intent": intent, "options": options},
        piece=f"chain of step {step} (item {item.item_id})",
        fallback=(f"joined {same_intent[-1].id}, the latest chain with the same intent"
                  if same_intent else "started a new chain"))
    answer = asker.ask(question)
    if answer is None:
        return same_intent[-1].id if same_intent else NEW_CHAIN
    if answer["chain"] == NEW_CHAIN:
        return NEW_CHAIN
    # Several chains may share an intent (the LLM may start a new one for it):
    # the item continues the one that grew most recently.
    return max((c for c in chains if c.intent == answer["chain"]), key=lambda c: c.steps[-1]).id


def build_chains(asker: Asker, items: list[Item], vocabulary: IntentVocabulary,
                 viewer: str) -> tuple[list[Chain], list[Link]]:
    """Chains over ``items`` (the window, in order) and how each item joined them.

    Intents are asked first for the whole window: consecutive questions with the
    same prompt reuse the model's cached prompt prefix.
    """
    intents = [item_intent(asker, item, vocabulary) for item in items]
    chains: list[Chain] = []
    links: list[Link] = []
    for step, (item, intent) in enumerate(zip(items, intents)):
        chosen = choose_chain(asker, step, item, intent, chains, viewer) if chains else NEW_CHAIN
        if chosen == NEW_CHAIN:
            chain = Chain(id=f"c{len(chains) + 1}", intent=intent)
            chains.append(chain)
            previous = None
            reason = choose_reason(asker, step, item, None)
        else:
            chain = next(c for c in chains if c.id == chosen)
            previous = chain.steps[-1]
            reason = choose_reason(asker, step, item, [items[s] for s in chain.steps])
        chain.steps.append(step)
        links.append(Link(step=step, chain=chain.id, intent=intent, reason=reason,
                          previous_step=previous))
    return chains, links
