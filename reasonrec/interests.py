"""LLM4SBR's stage-1 interests for the CLI, the bench and the app: build them, provide them.

``reasonrec fusion interests`` builds them for the fusion sample on the
configured LLM (:func:`build_interests`); :func:`interest_provider` hands the
fusion workspace a ``models.fusion.llm4sbr.inputs.InterestProvider`` reading
the store of the configured model, prompt and localizer, or the shipped
bundle ``assets/interests/<dataset>.jsonl.gz`` when its key is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.data import Dataset
    from models.fusion.llm4sbr.inputs import InterestProvider, InterestSource
    from models.fusion.samples import UserGraph
    from models.fusion.settings import FusionSettings
    from reasoning.config import ReasoningConfig
    from reasoning.interest_store import (InterestKey, InterestStore, LocalizedInterest,
                                          UserInterests)
    from reasoning.interests import BuildSummary
    from reasoning.localizer import IntentLocalizer
    from reasonrec.studio import Studio

BUILD_COMMAND = "reasonrec fusion interests"


def _quiet(_: str) -> None:
    return None


def interests_root(config: ReasoningConfig) -> Path:
    """``<data dir>/reasoning/interests``."""
    return config.resolved_data_dir / "reasoning" / "interests"


def shipped_bundle(dataset: str) -> Path | None:
    """``assets/interests/<dataset>.jsonl.gz`` when it is shipped."""
    path = Path(str(resources.files("assets").joinpath("interests", f"{dataset}.jsonl.gz")))
    return path if path.is_file() else None


def configured_key(studio: Studio, config: ReasoningConfig) -> InterestKey:
    """The key interests built now would have, without loading the LLM's weights."""
    from reasoning.backend import open_backend
    from reasoning.interest_store import InterestKey
    from reasoning.interests import PARSER_VERSION, PROMPT, R_ITEMS, SHORT_TERM_ITEMS
    from reasoning.llama_backend import model_identity_of, resolve_model_path
    from reasoning.localizer import open_localizer
    from reasoning.prompts import load_prompt

    model = (model_identity_of(resolve_model_path(config)) if config.backend == "llama"
             else open_backend(config).model_identity)
    return InterestKey(dataset=studio.dataset.name, model=model, prompt=load_prompt(PROMPT).version,
                       localizer=open_localizer(studio.dataset, config).identity, r=R_ITEMS,
                       short_items=SHORT_TERM_ITEMS, parser=PARSER_VERSION)


def sample_jobs(studio: Studio, settings: FusionSettings) -> list[tuple[str, list[int], list[int]]]:
    """``(user, window, steps)`` of every sampled user: the graph window and the steps of
    the fusion points (test, valid and ``train_steps`` training steps)."""
    from models.fusion.samples import load_user_graphs, sample_users
    from models.graph_data import IntentIndex
    from reasoning.prompts import load_intents
    from reasonrec.fusion import graph_source

    graphs: list[UserGraph] = load_user_graphs(
        studio.dataset, sample_users(studio.split, settings.users, settings.seed),
        graph_source(studio, settings), IntentIndex(load_intents().labels))
    return [(u.user_id, u.window, sorted(p.step for p in u.points(settings.train_steps)))
            for u in graphs]


def build_interests(studio: Studio, settings: FusionSettings, config: ReasoningConfig,
                    limit: int | None = None, log: Callable[[str], None] = _quiet
                    ) -> tuple[BuildSummary, InterestKey, Path]:
    """Build the sample's interests (the first ``limit`` users only, when given) and store
    them; finished users are skipped.

    Raises:
        reasoning.backend.LLMError: the LLM could not be loaded or failed mid-run
            (the users finished before it are kept).
    """
    from reasoning.backend import open_backend
    from reasoning.interest_store import InterestStore
    from reasoning.interests import InterestBuilder
    from reasoning.kb import KnowledgeBase
    from reasoning.localizer import open_localizer

    jobs = sample_jobs(studio, settings)[: limit]
    kb = KnowledgeBase(config.kb_path) if config.kb_enabled else None
    try:
        builder = InterestBuilder(studio.dataset, open_backend(config), kb,
                                  open_localizer(studio.dataset, config))
        store = InterestStore(interests_root(config), builder.key)
        seeded = seed_from_bundle(store, studio.dataset.name)
        if seeded:
            log(f"{seeded} users' interests taken from the shipped bundle (same key)")
        log(f"interests for {len(jobs)} users ({sum(len(j[2]) for j in jobs)} points, two "
            f"questions each) into {store.directory}")
        summary = builder.build_all(jobs, store, log)
    finally:
        if kb is not None:
            kb.flush_counters()
            kb.close()
    return summary, builder.key, store.directory


def seed_from_bundle(store: InterestStore, dataset: str) -> int:
    """Copy the shipped bundle's users into ``store`` when it was built under the same key
    (a partial bundle then resumes like a partial store); how many were copied."""
    from reasoning.interest_store import read_bundle

    bundle = shipped_bundle(dataset)
    if bundle is None:
        return 0
    key, records = read_bundle(bundle)
    if key != store.key:
        return 0
    missing = [r for user, r in records.items() if store.load(user) is None]
    for record in missing:
        store.save(record)
    return len(missing)


def interest_source(dataset: Dataset, localizer: IntentLocalizer, key: InterestKey,
                    load_record: Callable[[str], UserInterests | None]) -> InterestSource:
    """The models layer's view of stored interests: catalogue indices, the encoder's item
    vectors (``e_item`` of ``h = Σ w · e_item``) and each user's build cost."""
    from models.fusion.llm4sbr.inputs import Interest, InterestSource, StoredInterests

    catalogue = dataset.catalogue

    def plain(value: LocalizedInterest) -> Interest:
        return Interest(text=value.interest, answer=value.answer,
                        items=tuple((catalogue.by_id(i).index, w) for i, w in value.items))

    def load(user: str) -> StoredInterests | None:
        found = load_record(user)
        if found is None:
            return None
        cost = found.cost
        return StoredInterests(
            window=tuple(catalogue.by_id(i).index for i in found.window),
            points={p.step: (plain(p.long), plain(p.short)) for p in found.points},
            cost={"llm_calls": cost.llm_calls, "tokens": cost.tokens_in + cost.tokens_out,
                  "llm_seconds": cost.seconds})

    return InterestSource(identity=key.digest(), describe=str(asdict(key)), load=load,
                          item_vectors=localizer.item_vectors(),
                          command=f"`{BUILD_COMMAND}` (the LLM's two interests per window)")


def interest_provider(studio: Studio) -> InterestProvider:
    """The fusion workspace's provider of LLM interests for the configured model: the data
    dir's store for this key, else the shipped bundle when it was built under the same key."""
    from models.fusion.llm4sbr.inputs import InterestProvider
    from reasoning.interest_store import InterestStore, read_bundle
    from reasoning.localizer import open_localizer

    config = studio.config.reasoning_settings()

    def open_source() -> InterestSource:
        key = configured_key(studio, config)
        store = InterestStore(interests_root(config), key)
        bundle = shipped_bundle(studio.dataset.name)
        shipped = read_bundle(bundle) if bundle is not None else None
        records = shipped[1] if shipped is not None and shipped[0] == key else {}
        return interest_source(studio.dataset, open_localizer(studio.dataset, config), key,
                               lambda user: store.load(user) or records.get(user))

    return InterestProvider(open_source)


def bundle_interests(studio: Studio, settings: FusionSettings, config: ReasoningConfig,
                     out: Path) -> tuple[Path, int, int]:
    """Write the sample's stored interests (this model, prompt and localizer) to ``out``, a
    bundle like ``assets/interests/<dataset>.jsonl.gz``: ``(path, users written, users
    missing)``. A partial bundle is allowed: building the rest resumes from it."""
    from reasoning.interest_store import InterestStore, write_bundle

    key = configured_key(studio, config)
    store = InterestStore(interests_root(config), key)
    seed_from_bundle(store, studio.dataset.name)
    records, missing = [], 0
    for user, _, _ in sample_jobs(studio, settings):
        found = store.load(user)
        if found is None:
            missing += 1
        else:
            records.append(found)
    return write_bundle(out, key, records), len(records), missing
