"""Stage 1: chained graph reasoning over the session window.

Walk the window in order. Stage 1 is asked as two questions per item, so that
the knowledge base can reuse most of the work across sessions:

* **intent** (item-level): the item's title, year and genres -> one intent
  label from the closed vocabulary (``assets/prompts/intents.toml``), chosen by
  scoring each option's log-probability. The same movie gets the same question
  in every session that holds it.
* **chain** (a rule, :func:`choose_chain`): the item continues the latest
  chain with its intent, or starts a new one.
* **reason** (about the films, :mod:`reasoning.reasons`): what the item
  shares with the chain it joins, or what the new interest is, chosen by the
  LLM among phrases built from the data.

The first item always starts chain ``c1``. When the LLM cannot score a
question, the item gets a rule-based answer and the build log records the
dropped piece and the fallback used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.data import Item
from reasoning.prompts import IntentVocabulary, load_prompt
from reasoning.reasons import choose_reason
from reasoning.schemas import NEW_CHAIN
from reasoning.structured import Asker

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
    """The item's intent label, chosen by the LLM among the intents its genres fit.

    Each option is scored as the text after the prompt (mean log-probability
    per token; ties keep the better genre fit). Falls back to the best genre
    fit when the LLM cannot score. The answer is stored in the knowledge base
    keyed by the movie and its options, so every session holding it reuses it.
    """
    options = vocabulary.options_for(item.genres, MAX_INTENT_OPTIONS)
    if len(options) == 1:
        return options[0]   # the genres leave one choice: no question to ask
    prompt = load_prompt("intent")
    return asker.choose(STAGE, "intent", prompt.version,
                        {"item": item.describe(), "options": options},
                        f"intent of item {item.item_id}",
                        prompt.scored_text(item=item.describe(), options=", ".join(options)),
                        options, fallback=f"intent {options[0]!r}, the best fit of its genres")


def choose_chain(intent: str, chains: list[Chain]) -> str:
    """The chain an item of ``intent`` continues: the latest-grown chain with that intent,
    or ``"new"``.

    No LLM question: membership follows the rule the chain prompt used to state
    ("a new movie continues a chain only if its intent matches that chain"),
    and the LLM's judgement is in the intent it gave the movie. Over 45
    decisions of five users the SmolLM2-135M answer matched this rule 38 times;
    the 7 others were errors by its own rule (four comedies in a row, each
    starting a new "a good laugh" chain; Psycho joining a "serious drama"
    chain), and each question cost about 0.5 s of grammar-constrained decoding.
    """
    same_intent = [c for c in chains if c.intent == intent]
    if not same_intent:
        return NEW_CHAIN
    return max(same_intent, key=lambda c: c.steps[-1]).id


def build_chains(asker: Asker, items: list[Item],
                 vocabulary: IntentVocabulary) -> tuple[list[Chain], list[Link]]:
    """Chains over ``items`` (the window, in order) and how each item joined them.

    Intents are asked first for the whole window, then the chains are formed,
    then the reasons, those for joining a chain before those for starting one:
    consecutive questions with the same prompt reuse the model's cached prompt
    prefix (switching prompts re-reads it).
    """
    intents = [item_intent(asker, item, vocabulary) for item in items]
    chains: list[Chain] = []
    joined: list[tuple[int, Chain, int | None]] = []   # (step, chain, the chain's tail before it)
    for step, intent in enumerate(intents):
        chosen = choose_chain(intent, chains)
        if chosen == NEW_CHAIN:
            chain = Chain(id=f"c{len(chains) + 1}", intent=intent)
            chains.append(chain)
        else:
            chain = next(c for c in chains if c.id == chosen)
        joined.append((step, chain, chain.steps[-1] if chain.steps else None))
        chain.steps.append(step)

    def chain_before(step: int, chain: Chain) -> list[Item]:
        return [items[s] for s in chain.steps if s < step]

    order = sorted(joined, key=lambda entry: (entry[2] is None, entry[0]))
    reasons = {step: choose_reason(asker, step, items[step],
                                   chain_before(step, chain) if previous is not None else None)
               for step, chain, previous in order}
    links = [Link(step=step, chain=chain.id, intent=intents[step], reason=reasons[step],
                  previous_step=previous) for step, chain, previous in joined]
    return chains, links
