"""``reasonrec bench quality``: would a film-literate reader accept the reasoning? (issue #17)

Per LLM, on users outside the fusion sample (so nothing here is tuned on the
users the fused models are evaluated on), with windows of training items only:

* **cold sessions**: full graphs built with no knowledge base: seconds, LLM
  calls and tokens per session, the share of chain reasons that are templates,
  negations or intent-label copies (:func:`reasoning.reasons.is_template_reason`),
  the share of divergent candidates with co-watch support on training
  interactions (:func:`reasoning.diverge.candidate_support_share`), and the
  verification pass rate at the configured tau;
* **verification AUC**: real chains (from the chain stage on further sessions)
  against corrupted twins with one item swapped for an item of other genres
  (:mod:`reasoning.verification_eval`);
* **localization** hit@5 and MRR on the hand-labelled dev and held-back sets
  (the sentence encoder's, so the same for every LLM).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import networkx as nx

from models.data import Dataset
from models.evidence import CoWatchIndex
from models.fusion.samples import sample_users
from reasoning.backend import open_backend
from reasoning.builder import EmptySessionError, GraphBuilder, SessionWindow, session_window
from reasoning.chain import build_chains
from reasoning.config import ReasoningConfig
from reasoning.diverge import candidate_support_share, chain_candidates
from reasoning.graph import BuildLog
from reasoning.graph_nodes import chain_records, session_items
from reasoning.localization_eval import evaluate_localizer, load_labelled_set
from reasoning.localizer import IntentLocalizer, open_localizer
from reasoning.prompts import load_intents
from reasoning.reasons import is_template_reason
from reasoning.structured import Asker
from reasoning.verification_eval import ChainSample, evaluate_verification
from reasoning.verify import VerifySetup, popularity_ranks, training_popularity

# The hand-labelled localization sets (written from knowledge of the films, issue #17).
LABELLED_DIR = Path(__file__).resolve().parents[1] / "tests" / "reasoning" / "data"
LABELLED_SETS = {"dev": "localization_dev.toml", "held_back": "localization_heldout.toml"}
BARS = {"localization_hit_at_5": 0.75, "localization_hit_at_5_held_back": 0.65,
        "template_reason_share": 0.05, "verification_auc": 0.75,
        "candidate_support_share": 0.60, "cold_session_seconds_median": 10.0}
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Localization:
    cases: int
    hit_at_5: float
    mrr: float
    misses: list[str]


@dataclass
class ModelQuality:
    """One LLM's numbers (see the module docstring)."""

    model: str
    model_identity: str
    sessions: int
    seconds_per_session_median: float
    seconds_per_session_p95: float
    llm_calls_per_session: float
    tokens_per_session: float
    template_reason_share: float | None
    reasons: int
    candidate_support_share: float | None
    candidate_pairs: int
    verification_pass_rate: float | None
    dropped_pieces: int
    verification_auc: float | None
    verification_chains: int
    verification_real_mean: float | None
    verification_corrupted_mean: float | None
    verification_best_tau: float | None
    verification_seconds: float
    example_reasons: list[str] = field(default_factory=list)


@dataclass
class QualityBench:
    dataset: str
    users: int
    chains_requested: int
    threads: int | None
    cpu_count: int | None
    load_average_before: list[float]
    localization: dict[str, Localization]
    models: list[ModelQuality]
    bars: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"benchmark": "quality", **asdict(self)}


def calibration_windows(dataset: Dataset, excluded: set[int], l_tru: int) -> list[SessionWindow]:
    """Windows of training items (before the validation target) of users outside ``excluded``,
    in user order."""
    windows = []
    for dense, user in enumerate(dataset.user_ids):
        if dense in excluded:
            continue
        history = dataset.history(user)
        try:
            windows.append(session_window(dataset, user, l_tru, position=len(history) - 2))
        except (EmptySessionError, ValueError):
            continue
    return windows


def _reasons(graph: nx.DiGraph) -> list[tuple[str, str]]:
    return [(item.reason or "", item.intent or "") for item in session_items(graph)]


def _chain_samples(asker: Asker, windows: list[SessionWindow], limit: int) -> list[ChainSample]:
    vocabulary = load_intents()
    samples: list[ChainSample] = []
    for window in windows:
        chains, _ = build_chains(asker, list(window.items), vocabulary)
        samples += [ChainSample(c.intent, tuple(window.items[s].index for s in c.steps))
                    for c in chains if len(c.steps) >= 2]
        if len(samples) >= limit:
            break
    return samples[:limit]


def measure_model(dataset: Dataset, config: ReasoningConfig, localizer: IntentLocalizer,
                  windows: list[SessionWindow], n_sessions: int, n_chains: int,
                  co_watch: CoWatchIndex, model_name: str,
                  progress: Progress | None = None) -> ModelQuality:
    """Cold graphs for the first ``n_sessions`` windows, then the AUC over ``n_chains`` chains
    of the windows after them."""
    catalogue = dataset.catalogue
    popularity = training_popularity([dataset.history(u) for u in dataset.user_ids], len(catalogue))
    backend = open_backend(config)   # shared per process: left open for the caller
    builder = GraphBuilder(backend, catalogue, config, None, localizer, popularity=popularity,
                           co_watch=co_watch)
    builder.warm_up(encoder=True)
    graphs, seconds, calls, tokens, dropped = [], [], 0, 0, 0
    for done, window in enumerate(windows[:n_sessions], start=1):
        started = time.perf_counter()
        graph = builder.build(window)
        seconds.append(time.perf_counter() - started)
        log: BuildLog = graph.graph["build_log"]
        calls += log.llm_calls
        tokens += log.tokens_in + log.tokens_out
        dropped += len(log.dropped)
        graphs.append(graph)
        if progress:
            progress(f"{model_name}: cold sessions", done, n_sessions)
    reasons = [pair for graph in graphs for pair in _reasons(graph)]
    chains = [c for graph in graphs for c in chain_records(graph)]
    scored = [c for c in chains if c.score is not None]
    pairs = sum(len(chain_candidates(graph)) for graph in graphs)

    # Chains for the AUC: the chain stage only (no KB: each is built as in a cold session).
    log = BuildLog(backend={}, prompt_versions={}, settings={})
    samples = _chain_samples(Asker(backend, None, config, log), windows[n_sessions:], n_chains)
    if progress:
        progress(f"{model_name}: verification", 0, len(samples))
    setup = VerifySetup(ranks=popularity_ranks(popularity, len(catalogue)))
    evaluation = evaluate_verification(backend, catalogue, samples, config, setup)
    return ModelQuality(
        model=model_name, model_identity=backend.info().model_identity,
        sessions=len(graphs),
        seconds_per_session_median=round(statistics.median(seconds), 3),
        seconds_per_session_p95=round(sorted(seconds)[max(0, round(0.95 * len(seconds)) - 1)], 3),
        llm_calls_per_session=round(calls / len(graphs), 2),
        tokens_per_session=round(tokens / len(graphs), 1),
        template_reason_share=(round(sum(is_template_reason(r, i) for r, i in reasons)
                                     / len(reasons), 4) if reasons else None),
        reasons=len(reasons),
        candidate_support_share=_rounded(candidate_support_share(graphs, co_watch)),
        candidate_pairs=pairs,
        verification_pass_rate=(round(sum(c.status == "verified" for c in scored) / len(scored), 4)
                                if scored else None),
        dropped_pieces=dropped,
        verification_auc=_rounded(evaluation.auc),
        verification_chains=evaluation.chains,
        verification_real_mean=_rounded(evaluation.real_mean),
        verification_corrupted_mean=_rounded(evaluation.corrupted_mean),
        verification_best_tau=_rounded(evaluation.best_tau),
        verification_seconds=round(evaluation.seconds, 1),
        example_reasons=[r for r, _ in reasons[:10]])


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def localization_quality(dataset: Dataset, localizer: IntentLocalizer) -> dict[str, Localization]:
    """hit@5 and MRR on each hand-labelled set."""
    out = {}
    for name, file in LABELLED_SETS.items():
        cases = load_labelled_set(LABELLED_DIR / file, dataset.catalogue)
        score = evaluate_localizer(localizer, cases, len(dataset.catalogue))
        out[name] = Localization(cases=len(cases), hit_at_5=score.hit_at_k, mrr=score.mrr,
                                 misses=score.misses())
    return out


def bench_quality(dataset: Dataset, config: ReasoningConfig, models: list[tuple[str, str]],
                  n_sessions: int, n_chains: int, excluded_users: set[int],
                  train: list[Any], progress: Progress | None = None) -> QualityBench:
    """Measure every ``(name, model_path)`` in ``models`` on the same windows.

    Args:
        excluded_users: dense user indices left out (the fusion sample).
        train: per user, the training item indices (``LeaveOneOut.train``), for co-watch.
    """
    if n_sessions < 1 or n_chains < 1:
        raise ValueError("--users and --chains must be at least 1")
    load_before = [round(x, 2) for x in os.getloadavg()]
    localizer = open_localizer(dataset, config)
    windows = calibration_windows(dataset, excluded_users, config.l_tru)
    co_watch = CoWatchIndex(train, len(dataset.catalogue))
    results = [measure_model(dataset, config.model_copy(update={"model_path": path}), localizer,
                             windows, n_sessions, n_chains, co_watch, name, progress)
               for name, path in models]
    return QualityBench(dataset=dataset.name, users=n_sessions, chains_requested=n_chains,
                        threads=config.n_threads, cpu_count=os.cpu_count(),
                        load_average_before=load_before,
                        localization=localization_quality(dataset, localizer),
                        models=results, bars=dict(BARS))


def default_excluded(split: Any, users: int, seed: int) -> set[int]:
    """The fusion sample's dense user indices (never used to choose or tune anything here)."""
    return {int(u) for u in sample_users(split, users, seed)}
