"""Stage 3: self-verification and scoring of chains, by multiple-choice log-likelihood.

For each chain, mask one item at a time (several masks per chain) and ask how
well the LLM recovers it among distractors, as lm-evaluation-harness scores
multiple choice: the prompt lists the chain's intent and its other titles, and
each option's one-line description is scored as the text that follows, by its
log-probability (:meth:`reasoning.backend.LLMBackend.score_continuations`; the
prompt is read once per mask). A softmax over the options' scores gives the
probability of the true item: the mask's ``recovered``. The chain's score is
the mean over its masks; chains with score >= tau are kept (verified), the
others stay in the graph, rejected. A chain none of whose masks could be
scored is ``unverified`` (score ``None``).

Distractors are matched on popularity (training interaction counts: items of
about the same popularity rank), so a chain does not pass because its items
are well known, and they never repeat an item of the chain. Options depend
only on the seed, the masked item and the chain's items.

Why these choices (measured on chains built for users outside the fusion
sample, windows of training items only; see ``reasoning/verification_eval.py``
and the report of issue #17): the old question (pick a letter among two
options by generating it) passed 0.49 of chains, chance. Scores here are
pointwise mutual information, as lm-evaluation-harness's ``acc_mutual_info``:
the option's log-probability minus its log-probability with no chain shown.
It asks how much the chain raises an option, not how likely a title is anyway.
Over 60 calibration chains (chains built as the builder builds them, every
position masked, 5 distractors) against corrupted twins, the AUC of the mean
over two masks was 0.76 with PMI, 0.65 with the per-token and 0.59 with the
total log-probability; three masks gave 0.75 with PMI, so two are the default. The option's
unconditional log-probability (the prompt's task and example, no chain) is
item-level, so it is computed once per item and stored in the knowledge base
(``option_prior``).
The whole chain's score is stored in the knowledge base (``verified_chain``),
keyed by its items, so a rebuilt session asks nothing.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from enum import Enum
from typing import Sequence

import numpy as np

from models.data import Catalogue, Item
from reasoning.chain import Chain
from reasoning.config import ReasoningConfig
from reasoning.graph import MaskRecord
from reasoning.prompts import Prompt, load_prompt
from reasoning.structured import Asker

STAGE = "verify"
# Distractors come from the items nearest the masked one in popularity rank: this
# many candidates per distractor, at least POOL_MIN, are drawn from.
POOL_PER_DISTRACTOR = 4
POOL_MIN = 24


class Normalization(str, Enum):
    """How an option's log-probability becomes its score before the softmax."""

    TOTAL = "total"            # sum over tokens (favours short options)
    PER_TOKEN = "per_token"    # mean over tokens
    PMI = "pmi"                # total minus the option's log-probability with no chain shown


class DistractorGenres(str, Enum):
    """Whether distractors must share a genre with the masked item."""

    ANY = "any"
    SHARED = "shared"


NORMALIZATION = Normalization.PMI
DISTRACTOR_GENRES = DistractorGenres.ANY


@dataclass
class Verdict:
    score: float | None
    status: str          # verified | rejected | unverified
    masks: list[MaskRecord]


def mask_positions(length: int, count: int) -> list[int]:
    """Which chain positions to mask: the last item first (the one the chain predicts),
    then the first, then the middle ones."""
    order = [length - 1] + [p for p in range(length - 1)]
    return order[: min(count, length)]


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def popularity_ranks(popularity: Sequence[int] | np.ndarray | None, n_items: int) -> np.ndarray:
    """Rank of each catalogue index (0 = most popular; ties by index); slot 0 is padding.

    ``popularity[i]`` counts item ``i``'s training interactions; ``None`` ranks
    by index (no popularity known: distractors are then the index neighbours).
    """
    counts = np.zeros(n_items + 1, dtype=np.int64)
    if popularity is not None:
        values = np.asarray(popularity, dtype=np.int64)
        counts[: len(values)] = values[: n_items + 1]
    order = sorted(range(1, n_items + 1), key=lambda i: (-counts[i], i))
    ranks = np.zeros(n_items + 1, dtype=np.int64)
    for rank, index in enumerate(order):
        ranks[index] = rank
    return ranks


def training_popularity(histories: Sequence[Sequence[int]], n_items: int) -> np.ndarray:
    """Interactions per catalogue index over training histories only (the ``loo``
    training part: each history without its last two items)."""
    counts = np.zeros(n_items + 1, dtype=np.int64)
    for history in histories:
        for index in history[:-2]:
            counts[int(index)] += 1
    return counts


def build_options(catalogue: Catalogue, true_index: int, exclude: set[int], n_distractors: int,
                  seed: int, ranks: np.ndarray | None = None,
                  genres: DistractorGenres = DISTRACTOR_GENRES) -> list[int]:
    """True item plus ``n_distractors`` others of about its popularity, shuffled.

    Candidates are the items nearest the true one in popularity rank (``ranks``
    from :func:`popularity_ranks`; by index when ``None``), skipping ``exclude``
    (the chain's items: a second right answer). With :attr:`DistractorGenres.SHARED`
    candidates sharing a genre with the true item come first. Deterministic in
    ``(seed, true item, exclude)``.
    """
    if ranks is None:
        ranks = np.arange(len(catalogue) + 1)
    rng = np.random.default_rng(_stable_seed(seed, "distractors", true_index))
    true_rank = int(ranks[true_index])
    others = [i for i in range(1, len(catalogue) + 1) if i != true_index and i not in exclude]
    others.sort(key=lambda i: (abs(int(ranks[i]) - true_rank), i))
    pool = others[: max(POOL_MIN, POOL_PER_DISTRACTOR * n_distractors)]
    if genres is DistractorGenres.SHARED:
        wanted = set(catalogue[true_index].genres)
        matching = [i for i in pool if wanted & set(catalogue[i].genres)]
        rest = [i for i in pool if i not in set(matching)]
        pool_order = list(rng.permutation(matching)) + list(rng.permutation(rest))
    else:
        pool_order = list(rng.permutation(pool))
    options = [int(i) for i in pool_order[:n_distractors]]
    position = _stable_seed(seed, "position", true_index) % (len(options) + 1)
    options.insert(position, true_index)
    return options


def status_of(score: float | None, tau: float) -> str:
    if score is None:
        return "unverified"
    return "verified" if score >= tau else "rejected"


def option_text(item: Item) -> str:
    """An option as the scored continuation: a space, then ``Title (1995) [Genres]``."""
    return " " + item.describe()


def mask_prefix(prompt: Prompt, intent: str, context: list[Item]) -> str:
    """The raw text every option of one mask is scored after.

    The prompt file's task, its worked example, then this chain's intent and
    other titles; ends where the missing movie's description begins.
    """
    movies = "; ".join(item.describe() for item in context) or "none"
    return prompt.scored_text(intent=intent, movies=movies)


def prior_prefix(prompt: Prompt) -> str:
    """The text an option's unconditional log-probability is scored after (no chain)."""
    text = prompt.scored_text(intent="", movies="")
    return text[: text.rindex(prompt.input.splitlines()[0].split("{")[0])] + \
        prompt.input.splitlines()[-1]


def option_priors(asker: Asker, prompt: Prompt, items: list[Item], piece: str) -> list[float] | None:
    """Each item's option log-probability with no chain shown (KB ``option_prior``, item-level)."""
    priors: dict[int, float] = {}
    missing = []
    for item in items:
        stored = asker.kb_get(STAGE, "option_prior", prompt.version, {"item": item.describe()})
        if stored is not None:
            priors[item.index] = float(stored["logprob"])
        elif asker.kb is None and item.index in _PRIOR_CACHE.get(asker.model_key(prompt.version), {}):
            priors[item.index] = _PRIOR_CACHE[asker.model_key(prompt.version)][item.index]
        else:
            missing.append(item)
    if missing:
        scored = asker.score(STAGE, piece, prior_prefix(prompt), [option_text(i) for i in missing],
                             fallback="mask left out of the score")
        if scored is None:
            return None
        cache = _PRIOR_CACHE.setdefault(asker.model_key(prompt.version), {})
        for item, logprob in zip(missing, scored.logprobs):
            priors[item.index] = cache[item.index] = logprob
            asker.kb_put("option_prior", prompt.version, {"item": item.describe()},
                         {"logprob": logprob})
    return [priors[item.index] for item in items]


# Option priors per (model, prompt version) for builds without a knowledge base (with one,
# the KB holds them and every prior it lacks is scored and stored there).
_PRIOR_CACHE: dict[str, dict[int, float]] = {}


def clear_option_prior_cache() -> None:
    """Forget the in-process option priors (benches that stand for separate processes)."""
    _PRIOR_CACHE.clear()


def option_probabilities(logprobs: list[float], lengths: list[int],
                         normalization: Normalization = NORMALIZATION,
                         priors: list[float] | None = None) -> list[float]:
    """Softmax over the options' (normalized) log-probabilities."""
    if normalization is Normalization.PER_TOKEN:
        scores = [lp / max(1, n) for lp, n in zip(logprobs, lengths)]
    elif normalization is Normalization.PMI:
        if priors is None:
            raise ValueError("PMI scores need the options' priors")
        scores = [lp - prior for lp, prior in zip(logprobs, priors)]
    else:
        scores = list(logprobs)
    peak = max(scores)
    weights = [math.exp(s - peak) for s in scores]
    total = sum(weights)
    return [w / total for w in weights]


@dataclass(frozen=True)
class VerifySetup:
    """What scoring a chain needs besides the LLM: popularity ranks and the choices above."""

    ranks: np.ndarray | None = None
    normalization: Normalization = NORMALIZATION
    genres: DistractorGenres = DISTRACTOR_GENRES


def score_chain(asker: Asker, chain_items: list[Item], steps: list[int], intent: str,
                catalogue: Catalogue, config: ReasoningConfig, setup: VerifySetup,
                chain_id: str = "chain") -> tuple[float | None, list[MaskRecord], int]:
    """``(score, masks, failed masks)`` of one chain, asking the LLM (no KB)."""
    prompt = load_prompt("verify")
    exclude = {i.index for i in chain_items}
    masks: list[MaskRecord] = []
    failed = 0
    for position in mask_positions(len(chain_items), config.masks_per_chain):
        true_item = chain_items[position]
        options = build_options(catalogue, true_item.index, exclude, config.n_distractors,
                                config.seed, setup.ranks, setup.genres)
        context = [item for p, item in enumerate(chain_items) if p != position]
        scored = asker.score(STAGE, f"mask of step {steps[position]} in {chain_id}",
                             mask_prefix(prompt, intent, context),
                             [option_text(catalogue[i]) for i in options],
                             fallback="mask left out of the score")
        priors = None
        if scored is not None and setup.normalization is Normalization.PMI:
            priors = option_priors(asker, prompt, [catalogue[i] for i in options],
                                   f"option priors of step {steps[position]} in {chain_id}")
        if scored is None or (setup.normalization is Normalization.PMI and priors is None):
            failed += 1
            continue
        probabilities = option_probabilities(scored.logprobs, scored.lengths, setup.normalization,
                                             priors)
        true_probability = probabilities[options.index(true_item.index)]
        best = options[int(np.argmax(probabilities))]
        masks.append(MaskRecord(step=steps[position], options=options, answer=best,
                                recovered=round(true_probability, 6),
                                probability=round(true_probability, 6)))
    if not masks:
        return None, [], failed
    return float(np.mean([m.recovered for m in masks])), masks, failed


def verify_chain(asker: Asker, chain: Chain, items: list[Item], catalogue: Catalogue,
                 config: ReasoningConfig, setup: VerifySetup | None = None) -> Verdict:
    """Score one chain; ``items`` are the window items (indexed by step)."""
    setup = setup or VerifySetup()
    chain_items = [items[s] for s in chain.steps]
    prompt = load_prompt("verify")
    # The whole-chain entry stores the score, not the status: tau may change.
    whole_key = {"items": [i.describe() for i in chain_items], "intent": chain.intent,
                 "masks": config.masks_per_chain, "distractors": config.n_distractors,
                 "seed": config.seed, "normalization": setup.normalization.value,
                 "genres": setup.genres.value, "popularity": setup.ranks is not None}
    stored = asker.kb_get(STAGE, "verified_chain", prompt.version, whole_key)
    if stored is not None:
        masks = [MaskRecord.model_validate({**{k: v for k, v in m.items() if k != "position"},
                                            "step": chain.steps[m["position"]]})
                 for m in stored["masks"]]
        return Verdict(score=stored["score"], status=status_of(stored["score"], config.tau),
                       masks=masks)
    score, masks, failed = score_chain(asker, chain_items, chain.steps, chain.intent, catalogue,
                                       config, setup, chain.id)
    if score is None:
        return Verdict(score=None, status="unverified", masks=[])
    if not failed:   # a partial score is not a fact worth reusing
        position_of = {step: p for p, step in enumerate(chain.steps)}
        asker.kb_put("verified_chain", prompt.version, whole_key,
                     {"score": score,
                      "masks": [{**m.model_dump(exclude={"step"}), "position": position_of[m.step]}
                                for m in masks]})
    return Verdict(score=score, status=status_of(score, config.tau), masks=masks)
