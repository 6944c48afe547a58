"""Fusion wiring for the CLI and the app: a studio's config -> graph source and workspace.

The app (#5) builds its explainer the same way the CLI does::

    ws = workspace(studio, studio.config.fusion)
    explainer = ws.explainer(ws.fused(studio.config.fusion.variant))
    explainer.explain(user_id)        # or point / top_k / counterfactual / explain_item

Intent nodes read #3's text encoder (:func:`intent_encoder`: the reasoning
config's sentence encoder, by default the packaged all-MiniLM-L6-v2); its
table is cached in the data directory, so only the first run with a new
vocabulary or new graphs loads transformers.

Everything heavy is imported on first call, so importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.explain import Explainer
    from models.explain_schema import RankedItem
    from models.fusion.error_analysis import UserOutcome
    from models.fusion.fit import FusionRun
    from models.fusion.samples import UserGraph
    from models.fusion.settings import FusionSettings
    from models.fusion.workspace import FusionWorkspace
    from models.graph_sources import GraphSource
    from reasoning.sentence_encoder import SentenceEncoder
    from reasonrec.studio import Studio


def _quiet(_: str) -> None:
    return None


def graphs_dir(studio: Studio) -> Path:
    """The reasoning builder's graph store for this config (``ReasoningConfig.graphs_dir``)."""
    return studio.reasoning_settings().graphs_dir


def intent_encoder(studio: Studio) -> tuple[SentenceEncoder, Path]:
    """#3's text encoder and the folder its vectors are cached in, as the localizer picks them.

    The encoder is ``reasoning.encoder_path``, else the packaged all-MiniLM-L6-v2
    (``reasoning.sentence_encoder.open_text_encoder``, as
    ``reasoning.localizer.open_localizer`` opens it), so intent vectors and
    localization come from one encoder; the cache is ``embeddings_dir``, next
    to the item vectors. Nothing is loaded here.

    Raises:
        models.fusion.workspace.IntentEncoderError: no such encoder (the message says how to
            install it); a ValueError, so the CLI prints it without a traceback.
    """
    from models.fusion.workspace import IntentEncoderError
    from reasoning.backend import ModelFileError
    from reasoning.sentence_encoder import open_text_encoder

    config = studio.reasoning_settings()
    try:
        encoder = open_text_encoder(config.encoder_path, config.resolved_data_dir, config.threads)
    except ModelFileError as exc:
        raise IntentEncoderError(f"intent nodes need #3's text encoder: {exc}") from None
    return encoder, config.embeddings_dir


def graph_source(studio: Studio, settings: FusionSettings) -> GraphSource:
    """The graph source ``settings.graphs`` names, for this studio's dataset."""
    from models.genre_graphs import GenreGraphSource
    from models.graph_sources import resolve_source

    dataset, split = studio.dataset, studio.split
    return resolve_source(settings.graphs, dataset_name=dataset.name,
                          store_dir=graphs_dir(studio),
                          genre=lambda: GenreGraphSource(dataset, split.train,
                                                         window=settings.window))


def build_missing_graph(studio: Studio, user: str,
                        log: Callable[[str], None] = _quiet) -> None:
    """Build ``user``'s reasoning graph on the configured LLM and store it, as the app does.

    The window is the one before the user's test target, the window ``explain``
    and the fused models read. Stage changes are reported through ``log``.

    Raises:
        reasoning.backend.LLMError: the LLM could not be loaded or reached.
        reasoning.builder.EmptySessionError: the user has no history before the target.
    """
    from reasoning.builder import session_window

    config = studio.reasoning_settings()
    session = session_window(studio.dataset, user, config.l_tru)
    builder = studio.open_builder(config)
    seen: set[str] = set()

    def on_token(stage: str, _piece: str) -> None:
        if stage not in seen:
            seen.add(stage)
            log(f"  {stage} stage…")

    log(f"user {user} has no reasoning graph yet: building one for the last "
        f"{len(session.items)} items on the local LLM")
    try:
        graph = builder.build(session, on_token=on_token)
        store = studio.graph_store(config)
        store.claim(studio.dataset.name, builder.settings)
        path = store.save(graph)
    finally:
        if builder.kb is not None:
            builder.kb.close()
    build = graph.graph["build_log"]
    log(f"built in {build.wall_seconds:.1f} s ({build.llm_calls} LLM calls); stored as {path}")


def workspace(studio: Studio, settings: FusionSettings,
              log: Callable[[str], None] = _quiet) -> FusionWorkspace:
    """Base model, graph source and sample wired from the studio's config.

    Args:
        studio: dataset, split, runs directory, base-model training settings.
        settings: the fusion settings (usually ``studio.config.fusion``).
        log: progress lines (base or fused training, reused runs).
    """
    from models.fusion.samples import load_user_graphs, sample_users
    from models.fusion.workspace import FusionWorkspace, choose_base
    from models.graph_data import IntentIndex
    from reasoning.prompts import load_intents

    dataset, split, config = studio.dataset, studio.split, studio.config
    source = graph_source(studio, settings)
    # Graphs first: a missing graph is found in seconds, not after training a base model.
    # (Placed with the vocabulary alone; the workspace re-places them with its full index.)
    graphs = load_user_graphs(dataset, sample_users(split, settings.users, settings.seed),
                              source, IntentIndex(load_intents().labels))
    encoder, cache_dir = intent_encoder(studio)
    base = choose_base(studio.runs_dir, dataset.name, split, settings, config.train,
                       config.models, log=log)
    from reasoning.localizer import open_localizer
    from reasonrec.interests import interest_provider
    from reasonrec.lm_scores import lm_score_provider

    return FusionWorkspace(dataset, split, base, source, settings, studio.runs_dir, log=log,
                           user_graphs=graphs, intent_encoder=encoder,
                           intent_cache_dir=cache_dir,
                           interest_similarity=open_localizer(dataset, studio.reasoning_settings()),
                           providers=[lm_score_provider(studio, base),
                                      interest_provider(studio)])


@dataclass(frozen=True)
class StrategyRun:
    """A registered fused variant and its trained run in a workspace, or why it has none.

    Attributes:
        name: the variant's name (``models.fusion.registry.VARIANTS``).
        description: the registry's description of it, in words.
        run: its saved run matching the workspace (None: not available).
        reason: why it is not available, in plain words (None when it is).
        detail: the technical cause behind ``reason`` (for a "Details" view).
    """

    name: str
    description: str
    run: FusionRun | None
    reason: str | None = None
    detail: str | None = None

    @property
    def available(self) -> bool:
        return self.run is not None


def strategy_runs(ws: FusionWorkspace) -> list[StrategyRun]:
    """Every registered variant with its trained run for ``ws``'s base model, sample and
    graphs; a variant without one says why (nothing is trained here)."""
    from models.fusion.registry import VARIANTS
    from models.fusion.samples import variant

    found = []
    for spec in VARIANTS:
        def missing(reason: str, exc: Exception) -> StrategyRun:
            return StrategyRun(spec.name, spec.description, None, reason, str(exc))

        try:
            ws.check_needs(variant(spec.name))
        except ValueError as exc:   # e.g. LLM interests that no provider here builds
            found.append(missing("the inputs it needs are not built on this machine yet", exc))
            continue
        try:
            found.append(StrategyRun(spec.name, spec.description,
                                     ws.fused(spec.name, train_if_missing=False)))
        except LookupError as exc:
            found.append(missing("not trained yet for this sample of users", exc))
        except (ValueError, OSError) as exc:   # a run folder that cannot be loaded
            found.append(missing("its saved model cannot be read", exc))
    return found


@dataclass(frozen=True)
class StrategyTopK:
    """One strategy's top-k at a point, and where it ranks the film watched next.

    Attributes:
        fused: the strategy's top-k (each row's ``base_rank`` is the base model's rank).
        base: the base model's top-k at the same point.
        target_index: the film the user watched next (its catalogue index).
        target_title: its title.
        target_rank: its rank under this strategy (among all films when it was seen before).
        target_base_rank: its rank under the base model, counted the same way.
    """

    fused: list[RankedItem]
    base: list[RankedItem]
    target_index: int
    target_title: str
    target_rank: int
    target_base_rank: int


def strategy_top_k(explainer: Explainer, user_graph: UserGraph, step: int) -> StrategyTopK:
    """``explainer``'s strategy ranked at window ``step`` of ``user_graph`` (placed with that
    explainer's intents): the lists only, no explanation (milliseconds).

    Raises:
        ValueError: a step outside the graph's window.
    """
    from models.explain_faithfulness import rank_rows

    point = explainer.point(user_graph, step)
    top = explainer.top_k(point)
    target = point.target   # every step of a graph's window predicts a film of the history
    # A re-watched film is hidden by the seen-mask: rank it among all films then (as explain).
    seen = bool(point.masked[target])
    fused, base = ((point.fused_raw, point.base_raw) if seen
                   else (point.fused_scores, point.base_scores))
    return StrategyTopK(top.fused, top.base, target, explainer.item_ref(target).title,
                        int(rank_rows(fused[None], target)[0]),
                        int(rank_rows(base[None], target)[0]))


#: What the app and the report say when a fused run kept the base model (plain words).
KEPT_BASE_NOTE = ("The reasoning does not change this model's recommendations: when the fused "
                  "model was trained, no round of training beat the base model on the held-out "
                  "films, so it kept the base model's behaviour. Its list equals the base list, "
                  "and switching reasoning off changes nothing. The strategy comparison below "
                  "and the Evaluation page show the other strategies.")


def kept_base(run: FusionRun) -> bool:
    """Whether ``run`` tried to improve on its starting point and kept it (no training epoch
    or validation choice beat it on validation), so its rankings are the base model's.

    Only a fit under ``[fusion] selection = "best"`` can keep its start. Every registered
    strategy starts as the base model (identity initialisation; LM reranking at weight 0),
    except ``lm-only``, which has nothing to try: its fit walks no epochs, so it is never
    reported as having kept the base.
    """
    return run.report.best_epoch == 0 and len(run.report.epochs) > 0


def below_base_note(run: FusionRun) -> str | None:
    """A plain finding when ``run``'s trained model scores below its untrained start (the
    base model) on validation, else None (it beats the start, or kept it)."""
    start = (run.report.start_valid or {}).get("NDCG@10")
    best = run.report.best_valid.get("NDCG@10")
    if start is None or best is None or run.report.best_epoch == 0 or best >= start:
        return None
    return (f"No round of training beat the base model on the held-out validation films "
            f"(NDCG@10 {best:.4f} against the base model's {start:.4f}). This fused model is "
            "its best trained round: the reasoning changes its scores, and sometimes its "
            "order, and the explanations below measure how; but on average it does not "
            "recommend better than the base model. The Evaluation page compares the two on "
            "the test films.")


def strategy_description(name: str) -> str | None:
    """The registry's description of strategy ``name`` in words (None: not registered)."""
    from models.fusion.registry import variant_spec

    try:
        return variant_spec(name).description
    except ValueError:
        return None


def user_outcomes(ws: FusionWorkspace, run: FusionRun) -> list[UserOutcome]:
    """One row per sampled user's test point: the held-out film's base and fused ranks and
    the outcome (``models.fusion.error_analysis.user_outcomes``)."""
    from models.fusion.error_analysis import user_outcomes as outcomes

    return outcomes(ws, run)
