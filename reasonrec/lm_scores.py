"""Zero-shot LM ranking wiring: build the sample's LM scores, read them, explain them.

* :func:`build_lm_scores` scores each sampled user's validation and test
  points (the base model's top-N, one prefix plus N continuations each) on the
  configured LLM into the data directory's store; finished points are skipped,
  a backend failure stops the run (nothing is stored for the point in flight).
* :func:`lm_score_provider` is the workspace's :class:`InputProvider` for
  ``Need.LM_SCORES`` (the store, then the shipped bundle), keyed by the base
  run, N, the configured GGUF and the prompt.
* :func:`history_effects` explains one candidate's LM score by leave-one-out
  over the history titles in the prompt (a few LLM calls, on demand).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.fusion.lm_rank.inputs import LMScoreProvider
    from models.fusion.workspace import BaseChoice, FusionWorkspace
    from reasoning.backend import LLMBackend
    from reasoning.config import ReasoningConfig
    from reasoning.lm_scores import LMScoreKey
    from reasonrec.studio import Studio

#: Candidates per point (the base model's top-N) and recent titles in the prompt.
DEFAULT_TOP_N = 50
DEFAULT_HISTORY = 10
STORE_NAME = "lm_scores.sqlite"


def _quiet(_: str) -> None:
    return None


def store_path(config: ReasoningConfig) -> Path:
    """The data directory's LM-score database (next to the KB)."""
    return Path(config.kb_path).parent / STORE_NAME


def bundle_path(dataset: str) -> Path:
    """The shipped scores of the sample: ``assets/lm_scores/<dataset>.jsonl.gz``."""
    return Path(str(resources.files("assets").joinpath("lm_scores", f"{dataset}.jsonl.gz")))


def base_run_name(base: BaseChoice) -> str:
    """The base run as the fused runs' fingerprints name it (``model/run-id``)."""
    return f"{base.name}/{Path(base.run_dir).name}"


def score_key(dataset: str, base: BaseChoice, model_identity: str, *,
              top_n: int = DEFAULT_TOP_N, history: int = DEFAULT_HISTORY) -> LMScoreKey:
    from reasoning.lm_scores import LMScoreKey, prompt_version

    return LMScoreKey(dataset=dataset, base_run=base_run_name(base), top_n=top_n,
                      model=model_identity, prompt=prompt_version(), history=history)


def configured_model_identity(config: ReasoningConfig) -> str:
    """The configured GGUF's ``sha256:...`` (hashes the file once; loads nothing)."""
    from reasoning.llama_backend import model_identity_of, resolve_model_path

    return model_identity_of(resolve_model_path(config))


def lm_score_provider(studio: Studio, base: BaseChoice, *, top_n: int = DEFAULT_TOP_N,
                      history: int = DEFAULT_HISTORY) -> LMScoreProvider:
    """The workspace's LM-score provider for the configured model (nothing loaded yet).

    The model's identity is computed only when a variant reading LM scores asks
    for it (the GGUF is hashed once per process), so other variants pay nothing.
    """
    from models.fusion.lm_rank.inputs import LMScoreProvider

    config = studio.reasoning_settings()

    def key() -> LMScoreKey:
        return score_key(studio.dataset.name, base, configured_model_identity(config),
                         top_n=top_n, history=history)

    return LMScoreProvider(key, store_path(config), bundle_path(studio.dataset.name))


@dataclass
class LMScoreSummary:
    """What a build did (``reasonrec fusion lm-scores --json``)."""

    key: dict[str, Any]
    store: str
    users: int
    points_scored: int = 0
    points_skipped: int = 0
    llm_calls: int = 0
    tokens: int = 0
    llm_seconds: float = 0.0
    wall_seconds: float = 0.0
    per_user: dict[str, float] = field(default_factory=dict)

    def finish(self, started: float, scored_users: int) -> LMScoreSummary:
        """Close the summary; ``per_user`` averages over the users this run scored."""
        self.wall_seconds = time.perf_counter() - started
        if scored_users:
            self.per_user = {"llm_calls": self.llm_calls / scored_users,
                             "tokens": self.tokens / scored_users,
                             "seconds": self.llm_seconds / scored_users}
        return self


def build_lm_scores(workspace: FusionWorkspace, backend: LLMBackend, store: Path, *,
                    top_n: int = DEFAULT_TOP_N, history: int = DEFAULT_HISTORY,
                    shard: tuple[int, int] = (0, 1),
                    log: Callable[[str], None] = _quiet) -> LMScoreSummary:
    """Score every sampled user's validation and test points into ``store`` (resumable).

    ``shard = (k, n)`` scores only the users at sample positions ``k, k + n, ...``:
    processes with different shards (one LLM thread each) share the work and the store.

    Raises:
        reasoning.backend.LLMError: the backend failed; every point finished
            before it stays stored, and a rerun continues from there.
    """
    from models.fusion.lm_rank.inputs import SCORED_ROLES, top_candidates
    from reasoning.lm_scores import LMScoreStore, score_point

    started = time.perf_counter()
    key = score_key(workspace.dataset.name, workspace.base, backend.model_identity, top_n=top_n,
                    history=history)
    path = Path(store)
    db = LMScoreStore(path)
    db.claim(key)
    points = workspace.points
    part, parts = shard
    if not 0 <= part < parts:
        raise ValueError(f"shard {part}/{parts}: the part must be 0..{parts - 1}")
    mine = {u.user_id for n, u in enumerate(workspace.user_graphs) if n % parts == part}
    wanted = [i for i, p in enumerate(points.points)
              if p.role in SCORED_ROLES and p.user.user_id in mine]
    tops = top_candidates(points.e_base[wanted], workspace.item_table, top_n)
    catalogue = workspace.dataset.catalogue
    summary = LMScoreSummary(key=asdict(key), store=str(path), users=len(mine))
    done: dict[str, set[int]] = {}
    scored_users: set[str] = set()
    try:
        for row, index in enumerate(wanted):
            point = points.points[index]
            user = point.user.user_id
            if user not in done:
                done[user] = db.done(key, user)
                log(f"user {user} ({len(done)}/{len(mine)})")
            if point.step in done[user]:
                summary.points_skipped += 1
                continue
            prompt_items = [catalogue[int(i)]
                            for i in point.user.base_input(point.step)[-history:]]
            scored = score_point(backend, user, point.step, prompt_items,
                                 [catalogue[int(c)] for c in tops[row].tolist()])
            db.put(key, scored)
            scored_users.add(user)
            summary.points_scored += 1
            summary.llm_calls += scored.calls
            summary.tokens += scored.tokens
            summary.llm_seconds += scored.seconds
    finally:
        db.close()
    return summary.finish(started, len(scored_users))


@dataclass(frozen=True)
class HistoryEffect:
    """How much one history title raises a candidate's LM score (leave-one-out)."""

    item: int
    title: str
    effect: float   # per-token score with the full prompt minus without this title


@dataclass(frozen=True)
class CandidateEvidence:
    """A candidate's per-token LM score and each history title's effect, strongest first."""

    item: int
    title: str
    score: float
    effects: list[HistoryEffect]


def history_effects(backend: LLMBackend, history: Sequence[Any],
                    candidates: Sequence[Any]) -> list[CandidateEvidence]:
    """Leave-one-out over the prompt's history titles for each candidate.

    One scoring call for the full prompt and one per left-out title, each
    scoring every candidate after that prompt (cached prefix): len(history) + 1
    LLM calls for any number of candidates.
    """
    from reasoning.lm_scores import continuation, normalize, prompt_text

    texts = [continuation(c) for c in candidates]

    def scores(items: Sequence[Any]) -> list[float]:
        result = backend.score_continuations(prompt_text(items), texts)
        return normalize(result.logprobs, result.lengths)

    full = scores(history)
    without = [scores([h for j, h in enumerate(history) if j != i]) for i in range(len(history))]
    out = []
    for c, candidate in enumerate(candidates):
        effects = [HistoryEffect(int(h.index), str(h.title), full[c] - without[i][c])
                   for i, h in enumerate(history)]
        out.append(CandidateEvidence(int(candidate.index), str(candidate.title), full[c],
                                     sorted(effects, key=lambda e: -e.effect)))
    return out


def explain_history(studio: Studio, user_id: str, history_length: int, items: Sequence[int],
                    history: int = DEFAULT_HISTORY) -> list[dict[str, Any]]:
    """``reasonrec explain``'s on-demand evidence for LM ranking: for each of ``items``
    (catalogue indices), which recent titles in the prompt raise its LM score most.

    Args:
        history_length: the point's input history length (``PointInfo.history_length``):
            the prompt lists the last ``history`` of those items, as the stored scores do.

    Raises:
        reasoning.backend.LLMError: the LLM could not be loaded or failed.
    """
    from reasoning.backend import open_backend

    dataset = studio.dataset
    seen = dataset.histories[dataset.user_index(user_id)][:history_length]
    prompt_items = [dataset.catalogue[int(i)] for i in seen[-history:]]
    backend = open_backend(studio.reasoning_settings())
    evidence = history_effects(backend, prompt_items, [dataset.catalogue[int(i)] for i in items])
    return [asdict(e) for e in evidence]
