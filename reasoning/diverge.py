"""Stage 2: divergent extension from the end of each kept chain.

The LLM proposes up to K things the viewer may want next after the chain's
last item, as free text (an item-level question: it shows only that item and
the chain's intent, so the KB reuses it across sessions). Each text is then
localized to real catalogue items by :class:`reasoning.localizer.IntentLocalizer`;
the LLM never names items directly, so a hallucinated title can never become
an item node. Localizations are stored in the KB too (kind ``localize``, tagged
with the localizer's identity instead of a prompt version), so a warm run
needs neither the LLM nor the encoder.
"""

from __future__ import annotations

from models.data import Item
from reasoning.localizer import IntentLocalizer
from reasoning.prompts import load_prompt
from reasoning.schemas import DivergeAnswer, diverge_schema
from reasoning.structured import Asker, Question

STAGE = "diverge"
LOCALIZE_STAGE = "localize"


def next_intents(asker: Asker, item: Item, intent: str, k: int, text_limit: int) -> list[str]:
    """Up to ``k`` distinct free-text intents after ``item``; empty when the LLM failed."""
    prompt = load_prompt("diverge")
    question = Question(
        stage=STAGE, kind="diverge", prompt=prompt,
        messages=prompt.messages(task_fields={"k": k}, item=item.describe(), intent=intent),
        schema=diverge_schema(k), answer_model=DivergeAnswer,
        context={"k": k, "text_limit": text_limit},
        key_fields={"item": item.describe(), "intent": intent, "k": k},
        piece=f"next intents after item {item.item_id}", fallback="no divergent extension")
    answer = asker.ask(question)
    return [] if answer is None else list(answer["intents"])


def localize(asker: Asker, localizer: IntentLocalizer, text: str, r: int, exclude: set[int],
             max_excluded: int) -> list[tuple[int, float]]:
    """Top-``r`` ``(catalogue index, weight)`` for ``text``, skipping ``exclude``.

    The stored ranking ignores the exclusions: it holds ``r + max_excluded``
    items (``max_excluded`` is the window length, so any window's items can
    be skipped), and sessions with different windows share it.
    """
    limit = r + max(max_excluded, len(exclude))
    fields = {"text": text, "limit": limit}
    stored = asker.kb_get(LOCALIZE_STAGE, "localize", localizer.identity, fields)
    if stored is not None:
        ranked = [(int(i), float(w)) for i, w in stored]
    else:
        ranked = localizer.rank(text, limit)
        asker.kb_put("localize", localizer.identity, fields, [[i, w] for i, w in ranked])
    return localizer.localize(text, r, exclude, ranked=ranked)
