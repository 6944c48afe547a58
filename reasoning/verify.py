"""Stage 3: self-verification and scoring of chains.

For each chain, mask one item at a time and ask the LLM to pick it from
options: the true item plus distractors from the catalogue. A mask's recovery
is the probability the model gives the true option (from token
log-probabilities) or, when the backend gives none, 1 for a right and 0 for a
wrong answer. The chain's score is the mean recovery over its masks; chains
with score >= tau are kept (verified), the others stay in the graph, rejected.
A chain none of whose masks could be asked is ``unverified`` (score ``None``).

What makes the questions recur in the knowledge base: the distractors and the
true option's letter depend only on the seed and the masked item, and the
prompt shows the chain's intent and the options, not the titles around the
mask. A mask question is then item-level (item and intent) and recurs across
sessions; with up to three neighbouring titles shown, no question recurred in
a 60-session bench. A whole chain's score is stored too (``verified_chain``),
keyed by its items.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from models.data import Catalogue, Item
from reasoning.backend import LLMResponse, choice_probabilities
from reasoning.chain import Chain
from reasoning.config import ReasoningConfig
from reasoning.graph import MaskRecord
from reasoning.prompts import Prompt, load_prompt
from reasoning.schemas import VerifyAnswer, verify_schema
from reasoning.structured import Asker, Question

STAGE = "verify"
LETTERS = "ABCDEFGHIJ"
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


def build_options(catalogue: Catalogue, true_index: int, exclude: set[int], n_distractors: int,
                  seed: int) -> list[int]:
    """True item plus distractors, shuffled; a function of ``(seed, true item)`` only
    (items in ``exclude`` are skipped and replaced deterministically)."""
    rng = np.random.default_rng(_stable_seed(seed, "distractors", true_index))
    distractors: list[int] = []
    for candidate in rng.permutation(np.arange(1, len(catalogue) + 1)):
        candidate = int(candidate)
        if candidate != true_index and candidate not in exclude:
            distractors.append(candidate)
            if len(distractors) == n_distractors:
                break
    options = distractors[:]
    position = _stable_seed(seed, "position", true_index) % (len(options) + 1)
    options.insert(position, true_index)
    return options


def status_of(score: float | None, tau: float) -> str:
    if score is None:
        return "unverified"
    return "verified" if score >= tau else "rejected"


def verify_chain(asker: Asker, chain: Chain, items: list[Item], catalogue: Catalogue,
                 config: ReasoningConfig) -> Verdict:
    """Score one chain; ``items`` are the window items (indexed by step)."""
    chain_items = [items[s] for s in chain.steps]
    prompt = load_prompt("verify")
    # The whole-chain entry stores the score, not the status: tau may change.
    whole_key = {"items": [i.describe() for i in chain_items], "intent": chain.intent,
                 "masks": config.masks_per_chain, "distractors": config.n_distractors,
                 "seed": config.seed}
    stored = asker.kb_get(STAGE, "verified_chain", prompt.version, whole_key)
    if stored is not None:
        masks = [MaskRecord.model_validate({**{k: v for k, v in m.items() if k != "position"},
                                            "step": chain.steps[m["position"]]})
                 for m in stored["masks"]]
        return Verdict(score=stored["score"], status=status_of(stored["score"], config.tau),
                       masks=masks)
    # Distractors never repeat an item of the chain (that would be a second right answer).
    exclude = {i.index for i in chain_items}
    masks: list[MaskRecord] = []
    positions: list[int] = []
    failed = 0
    for position in mask_positions(len(chain_items), config.masks_per_chain):
        record = _ask_mask(asker, prompt, chain, chain_items, position, catalogue, exclude, config)
        if record is None:
            failed += 1
        else:
            masks.append(record)
            positions.append(position)
    if not masks:
        return Verdict(score=None, status="unverified", masks=[])
    score = float(np.mean([m.recovered for m in masks]))
    if not failed:   # a partial score is not a fact worth reusing
        asker.kb_put("verified_chain", prompt.version, whole_key,
                     {"score": score,
                      "masks": [{**m.model_dump(exclude={"step"}), "position": p}
                                for m, p in zip(masks, positions)]})
    return Verdict(score=score, status=status_of(score, config.tau), masks=masks)


def _ask_mask(asker: Asker, prompt: Prompt, chain: Chain, chain_items: list[Item], position: int,
              catalogue: Catalogue, exclude: set[int], config: ReasoningConfig) -> MaskRecord | None:
    true_item = chain_items[position]
    options = build_options(catalogue, true_item.index, exclude, config.n_distractors, config.seed)
    letters = list(LETTERS[: len(options)])
    true_letter = letters[options.index(true_item.index)]
    option_lines = [f"{letter}: {catalogue[index].describe()}" for letter, index in zip(letters, options)]

    def finish(value: dict, response: LLMResponse) -> dict:
        probabilities = choice_probabilities(response.logprobs, value["answer"], letters)
        value["probability"] = None if probabilities is None else probabilities[true_letter]
        return value

    question = Question(
        stage=STAGE, kind="verify", prompt=prompt,
        messages=prompt.messages(intent=chain.intent, options="\n".join(option_lines)),
        schema=verify_schema(letters), answer_model=VerifyAnswer, context={"letters": letters},
        key_fields={"intent": chain.intent, "options": option_lines},
        piece=f"mask of step {chain.steps[position]} in {chain.id}", watch=tuple(letters),
        finish=finish, fallback="mask left out of the score")
    answer = asker.ask(question)
    if answer is None:
        return None
    chosen = options[letters.index(answer["answer"])]
    probability = answer.get("probability")
    recovered = probability if probability is not None else float(chosen == true_item.index)
    return MaskRecord(step=chain.steps[position], options=options, answer=chosen,
                      recovered=round(float(recovered), 6),
                      probability=None if probability is None else round(float(probability), 6))
