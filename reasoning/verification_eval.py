"""Does verification discriminate? Real chains against corrupted ones (issue #17, section 4).

A corrupted chain is a real chain with one item (a seeded random position)
swapped for a random catalogue item that shares no genre with it. Both are
scored by :func:`reasoning.verify.score_chain` exactly as the builder scores
chains (no knowledge base), and the report gives the AUC of the chain score
(the probability that a real chain outscores a corrupted one, ties counting
half), the mean scores, and the tau that best separates the two sets (the
largest Youden's J: true-positive minus false-positive rate). ``reasonrec bench
quality`` reports ``verification_auc`` from here; tau is calibrated here on
chains of users outside the fusion sample.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from models.data import Catalogue
from reasoning.backend import LLMBackend
from reasoning.config import ReasoningConfig
from reasoning.graph import BuildLog
from reasoning.structured import Asker
from reasoning.verify import STAGE, VerifySetup, score_chain


@dataclass(frozen=True)
class ChainSample:
    """A chain to score: its intent and its items (catalogue indices, in window order)."""

    intent: str
    items: tuple[int, ...]


@dataclass
class VerificationEval:
    """Real against corrupted chain scores.

    Attributes:
        chains: real chains scored (each also scored corrupted).
        auc: probability that a real chain outscores its corrupted set's chain.
        real_mean, corrupted_mean: mean chain scores.
        best_tau: threshold with the largest true-minus-false positive rate.
        best_tau_accuracy: balanced accuracy at ``best_tau``.
        seconds, tokens: wall time and LLM tokens read for all scoring.
        dropped: masks the backend failed to score.
    """

    chains: int
    auc: float | None
    real_mean: float | None
    corrupted_mean: float | None
    best_tau: float | None
    best_tau_accuracy: float | None
    seconds: float
    tokens: int
    dropped: int
    real_scores: list[float] = field(default_factory=list)
    corrupted_scores: list[float] = field(default_factory=list)


def corrupt(chain: ChainSample, catalogue: Catalogue, seed: int) -> ChainSample:
    """``chain`` with one seeded position swapped for an item sharing no genre with the one it replaces."""
    rng = np.random.default_rng(seed)
    position = int(rng.integers(len(chain.items)))
    replaced = set(catalogue[chain.items[position]].genres)
    present = set(chain.items)
    pool = [i for i in range(1, len(catalogue) + 1)
            if i not in present and not replaced & set(catalogue[i].genres)]
    swapped = list(chain.items)
    swapped[position] = int(pool[int(rng.integers(len(pool)))])
    return ChainSample(intent=chain.intent, items=tuple(swapped))


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """Mann-Whitney AUC: P(positive > negative) + P(tie) / 2."""
    if not positives or not negatives:
        return None
    pos = np.asarray(positives)[:, None]
    neg = np.asarray(negatives)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def best_threshold(positives: Sequence[float], negatives: Sequence[float]) -> tuple[float, float] | None:
    """``(tau, balanced accuracy)`` maximizing Youden's J; tau is a midpoint between scores."""
    if not positives or not negatives:
        return None
    values = sorted(set(positives) | set(negatives))
    cuts = [values[0]] + [(a + b) / 2 for a, b in zip(values, values[1:])]
    pos, neg = np.asarray(positives), np.asarray(negatives)
    best = max(cuts, key=lambda t: ((pos >= t).mean() - (neg >= t).mean(), -t))
    accuracy = 0.5 * ((pos >= best).mean() + (neg < best).mean())
    return float(best), float(accuracy)


def evaluate_verification(backend: LLMBackend, catalogue: Catalogue, chains: Sequence[ChainSample],
                          config: ReasoningConfig, setup: VerifySetup,
                          seed: int = 0) -> VerificationEval:
    """Score every chain and its corrupted twin (chains of one item are skipped)."""
    log = BuildLog(backend={}, prompt_versions={}, settings={})
    asker = Asker(backend, None, config, log)
    started = time.perf_counter()
    real, corrupted = [], []
    for n, chain in enumerate(c for c in chains if len(c.items) >= 2):
        twin = corrupt(chain, catalogue, seed * 1_000_003 + n)
        pair = []
        for sample in (chain, twin):
            items = [catalogue[i] for i in sample.items]
            score, _, _ = score_chain(asker, items, list(range(len(items))), sample.intent,
                                      catalogue, config, setup)
            pair.append(score)
        if None not in pair:
            real.append(pair[0])
            corrupted.append(pair[1])
    threshold = best_threshold(real, corrupted)
    return VerificationEval(
        chains=len(real), auc=auc(real, corrupted),
        real_mean=float(np.mean(real)) if real else None,
        corrupted_mean=float(np.mean(corrupted)) if corrupted else None,
        best_tau=threshold[0] if threshold else None,
        best_tau_accuracy=threshold[1] if threshold else None,
        seconds=time.perf_counter() - started, tokens=log.tokens_in,
        dropped=sum(1 for d in log.dropped if d.stage == STAGE),
        real_scores=real, corrupted_scores=corrupted)
