"""Stage 2: divergent extension from the end of each kept chain.

The LLM proposes up to K things the viewer may want next after the chain's
last item, as free text (an item-level question: it shows only that item and
the chain's intent, so the KB reuses it across sessions). Each text is then
localized to real catalogue items by :class:`reasoning.localizer.IntentLocalizer`;
the LLM never names items directly, so a hallucinated title can never become
an item node. Localizations are stored in the KB too (kind ``localize``, tagged
with the localizer's identity instead of a prompt version), so a warm run
needs neither the LLM nor the encoder. Candidates skip everything the user has
seen up to the window's end; among the items nearest the text, those that
viewers of the chain's films went on to watch (training co-watch, lift above 1)
come first.

:func:`candidate_support_share` measures how plausible the candidates are as
next films: the share with co-watch lift above 1 after one of the chain's
items, on training interactions only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import networkx as nx

from models.data import Dataset, Item
from models.evidence import CoWatch, CoWatchIndex
from reasoning.graph import EdgeKind
from reasoning.graph_nodes import candidates, chain_records, graph_edges, node_chain
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


# Divergent candidates are chosen among this many times r nearest items: those the
# chain's viewers went on to watch first, by text similarity within each group.
# (At 3, user 13's "The Lion King" reached Unforgiven; at 2 the pool stays near the text.)
GROUNDING_POOL = 2


def localize(asker: Asker, localizer: IntentLocalizer, text: str, r: int, exclude: set[int],
             max_excluded: int, supported: Callable[[int], bool] | None = None
             ) -> list[tuple[int, float]]:
    """Top-``r`` ``(catalogue index, weight)`` for ``text``, skipping ``exclude``.

    ``exclude`` is what the user has seen (their history up to the window's end).
    With ``supported`` (co-watch support from the chain, see :func:`candidate_support`)
    the ``GROUNDING_POOL * r`` nearest items are considered and the supported ones
    come first: of the items that fit the text, those viewers of the chain really
    went on to watch. The stored ranking ignores the exclusions so sessions share
    it: it holds ``pool + max_excluded`` items (``max_excluded`` is the window
    length). When a long history leaves fewer items, the text is ranked again deep
    enough to skip every excluded item; that ranking is not stored (it needs the
    encoder, whose query vector the localizer caches).
    """
    pool = r * GROUNDING_POOL if supported is not None else r
    limit = pool + max_excluded
    fields = {"text": text, "limit": limit}
    stored = asker.kb_get(LOCALIZE_STAGE, "localize", localizer.identity, fields)
    if stored is not None:
        ranked = [(int(i), float(w)) for i, w in stored]
    else:
        ranked = localizer.rank(text, limit)
        asker.kb_put("localize", localizer.identity, fields, [[i, w] for i, w in ranked])
    found = localizer.localize(text, pool, exclude, ranked=ranked)
    if len(found) < pool and len(ranked) >= limit:
        found = localizer.localize(text, pool, exclude)
    if supported is None:
        return found[:r]
    backed = [entry for entry in found if supported(entry[0])]
    return (backed + [entry for entry in found if entry not in backed])[:r]


def training_co_watch(dataset: Dataset) -> CoWatchIndex:
    """Co-watch counts over ``dataset``'s training interactions only.

    Training is ``models.protocol.leave_one_out``'s: each history without its
    validation and test targets, so a held-out target never lends support.
    """
    from models.protocol import leave_one_out

    return CoWatchIndex(leave_one_out(dataset).train, dataset.n_items)


def candidate_support(co_watch: CoWatchIndex, chain_items: Sequence[int],
                      candidate: int) -> CoWatch | None:
    """The candidate's strongest co-watch with a chain item when its lift is above 1, else None.

    A count is "training users who watched the chain item, and the candidate
    later" (``models.evidence.CoWatchIndex``, built from
    ``models.protocol.leave_one_out(dataset).train``, so no validation or test
    target is ever counted); lift is that share over the candidate's share of
    all training users.
    """
    counts = [co_watch.count(int(item), int(candidate)) for item in chain_items]
    best = max(counts, key=lambda c: c.lift, default=None)
    return best if best is not None and best.lift > 1.0 else None


def chain_candidates(graph: nx.DiGraph) -> list[tuple[tuple[int, ...], int]]:
    """Every ``(chain's item indices, candidate index)`` pair of ``graph``'s divergent extension."""
    chains = {record.id: tuple(record.item_indices) for record in chain_records(graph)}
    by_id = {candidate.id: candidate for candidate in candidates(graph)}
    pairs = set()
    for edge in graph_edges(graph, EdgeKind.DIVERGE):
        candidate = by_id.get(edge.target)
        if candidate is not None:
            chain = chains.get(edge.chain or node_chain(graph, edge.source))
            if chain:
                pairs.add((chain, candidate.item_index))
    return sorted(pairs)


def candidate_support_share(graphs: Iterable[nx.DiGraph], co_watch: CoWatchIndex) -> float | None:
    """Share of (chain, candidate) pairs over ``graphs`` with co-watch support; None if none."""
    pairs = [pair for graph in graphs for pair in chain_candidates(graph)]
    if not pairs:
        return None
    return sum(candidate_support(co_watch, chain, candidate) is not None
               for chain, candidate in pairs) / len(pairs)
