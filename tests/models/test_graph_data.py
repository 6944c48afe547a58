"""Reasoning graph -> PyG data: G_rea, G_div, the control graph, counterfactuals, batching."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from models.graph_data import (CANDIDATE_ITEM, CHAIN, DIVERGE_INTENT, DIVERGE_ITEM, INTENT,
                               SEQUENCE, SESSION_ITEM, GraphData, GraphOptions, IntentIndex,
                               cached_intent_table, collate_pairs, counterfactual_pair,
                               intent_cache_path, reasoning_elements, reasoning_pair, remove,
                               sequence_graph)
from reasoning.graph import graph_to_json, prefix_graph
from tests.models.fusion_setup import HashEncoder
from tests.models.reasoning_graphs import (INTENTS, ChainSpec, build_graph, example_graph,
                                           small_graphs)
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)

TENSOR_FIELDS = ("x", "intent", "node_kind", "edge_index", "edge_type", "edge_weight",
                 "alias_inputs", "last")
INDEX = IntentIndex(INTENTS)
WINDOW = [5, 9, 2, 7, 11, 3, 8, 14]


def edges_of(data: GraphData) -> dict[tuple[int, int, int], float]:
    """``(type, source item, target item) -> weight``: node-order independent."""
    x = data.x.tolist()
    return {(int(t), x[int(s)], x[int(d)]): round(float(w), 6)
            for (s, d), t, w in zip(data.edge_index.T, data.edge_type, data.edge_weight)}


def assert_same(a: GraphData, b: GraphData) -> None:
    for name in TENSOR_FIELDS:
        assert torch.equal(a[name], b[name]), name
    assert a.num_nodes == b.num_nodes


def test_rea_graph_has_session_items_sequence_and_verified_chains() -> None:
    rea = reasoning_pair(example_graph(), INDEX).rea
    assert rea.x.tolist() == sorted(WINDOW)
    assert rea.x[rea.alias_inputs].tolist() == WINDOW        # alias maps positions to nodes
    assert rea.x[rea.last].tolist() == [WINDOW[-1]]
    assert set(rea.node_kind.tolist()) == {SESSION_ITEM}
    sequence = {(SEQUENCE, a, b): 1.0 for a, b in zip(WINDOW[:-1], WINDOW[1:])}
    chains = {(CHAIN, 5, 2): 0.8, (CHAIN, 2, 3): 0.8,       # c1, verified 0.8
              (CHAIN, 11, 8): 0.5, (CHAIN, 8, 14): 0.5}     # c3, unverified weight
    assert edges_of(rea) == sequence | chains                # c2 (rejected) left out
    assert rea.node_ids[rea.alias_inputs[2]] == ("s2",)


def test_options_are_the_ablations() -> None:
    graph = example_graph()
    no_verify = reasoning_pair(graph, INDEX, options=GraphOptions(verification=False)).rea
    chain_weights = {k: w for k, w in edges_of(no_verify).items() if k[0] == CHAIN}
    assert chain_weights == {(CHAIN, 5, 2): 1.0, (CHAIN, 2, 3): 1.0, (CHAIN, 9, 7): 1.0,
                             (CHAIN, 11, 8): 1.0, (CHAIN, 8, 14): 1.0}
    keep_rejected = reasoning_pair(graph, INDEX, options=GraphOptions(
        drop_rejected=False, unverified_weight=0.25)).rea
    weights = edges_of(keep_rejected)
    assert weights[(CHAIN, 9, 7)] == 0.2 and weights[(CHAIN, 11, 8)] == 0.25
    no_div = reasoning_pair(graph, INDEX, options=GraphOptions(divergent=False)).div
    assert no_div.num_nodes == 0 and no_div.last.numel() == 0


def test_chain_records_fill_in_edges_without_scores() -> None:
    graph = example_graph()
    for u, v, attrs in graph.edges(data=True):
        if attrs["kind"] == "chain":
            attrs.pop("score", None)
            attrs.pop("status", None)
    chains = {k: w for k, w in edges_of(reasoning_pair(graph, INDEX).rea).items() if k[0] == CHAIN}
    assert chains == {(CHAIN, 5, 2): 0.8, (CHAIN, 2, 3): 0.8, (CHAIN, 11, 8): 0.5,
                      (CHAIN, 8, 14): 0.5}


def test_div_graph_has_chain_ends_intents_and_weighted_candidates() -> None:
    div = reasoning_pair(example_graph(), INDEX).div
    kinds = div.node_kind.tolist()
    assert kinds.count(SESSION_ITEM) == 2 and kinds.count(INTENT) == 3
    assert sorted(div.x[div.node_kind == CANDIDATE_ITEM].tolist()) == [20, 21, 22, 23]
    intents = {div.node_ids[i][0]: int(div.intent[i]) for i in range(div.num_nodes)
               if kinds[i] == INTENT}
    assert intents == {"dc1.1": INDEX[INTENTS[1]], "dc1.2": INDEX[INTENTS[3]], "dc3.1": 0}
    assert all(div.intent[i] == 0 for i in range(div.num_nodes) if kinds[i] != INTENT)
    ids = [n[0] for n in div.node_ids]
    weighted = {(int(t), ids[s], ids[d]): round(float(w), 6)
                for (s, d), t, w in zip(div.edge_index.T.tolist(), div.edge_type, div.edge_weight)}
    assert weighted == {
        (DIVERGE_INTENT, "s5", "dc1.1"): 1.0, (DIVERGE_INTENT, "s5", "dc1.2"): 1.0,
        (DIVERGE_INTENT, "s7", "dc3.1"): 1.0,
        (DIVERGE_ITEM, "dc1.1", "c20"): 0.9, (DIVERGE_ITEM, "dc1.1", "c21"): 0.6,
        (DIVERGE_ITEM, "dc1.2", "c22"): 0.7, (DIVERGE_ITEM, "dc3.1", "c20"): 0.5,
        (DIVERGE_ITEM, "dc3.1", "c23"): 0.4}
    assert ids[int(div.last)] == "s7"                        # the most recent chain end
    assert div.alias_inputs.tolist() == list(range(div.num_nodes))


def test_prefix_step_filters_both_graphs() -> None:
    graph = example_graph()
    early = reasoning_pair(graph, INDEX, step=3)
    assert early.session == WINDOW[:4]
    assert early.rea.x[early.rea.alias_inputs].tolist() == WINDOW[:4]
    assert early.div.num_nodes == 0                           # chain ends are at steps 5 and 7
    middle = reasoning_pair(graph, INDEX, step=5).div
    assert sorted(n[0] for n in middle.node_ids) == ["c20", "c21", "c22", "dc1.1", "dc1.2", "s5"]


def test_prefix_hides_scores_that_saw_later_items() -> None:
    graph = example_graph()                                   # c1 = steps 0, 2, 5 (0.8)
    at = {step: edges_of(reasoning_pair(graph, INDEX, step=step).rea) for step in (3, 5)}
    assert at[3][(CHAIN, 5, 2)] == 0.5                        # c1 still open: unverified weight
    assert at[5][(CHAIN, 5, 2)] == 0.8 and at[5][(CHAIN, 2, 3)] == 0.8
    assert (CHAIN, 9, 7) not in at[3]                         # c2 closed at 3, rejected
    shown = reasoning_pair(graph, INDEX, step=3, options=GraphOptions(hide_future_scores=False))
    assert edges_of(shown.rea)[(CHAIN, 5, 2)] == 0.8
    cf = counterfactual_pair(graph, INDEX, 3, nodes=["s1"])
    assert edges_of(cf.rea)[(CHAIN, 5, 2)] == 0.5


def test_sequence_graph_is_srgnn_session_graph() -> None:
    data = sequence_graph([6, 1, 6, 2, 2])
    assert data.x.tolist() == [1, 2, 6]
    assert data.alias_inputs.tolist() == [2, 0, 2, 1, 1]
    assert data.edge_index.tolist() == [[0, 1, 2, 2], [2, 1, 0, 1]]   # (1,6) (2,2) (6,1) (6,2)
    assert data.edge_type.tolist() == [SEQUENCE] * 4
    assert data.edge_weight.tolist() == [1.0] * 4
    assert data.last.tolist() == [1]
    assert data.node_ids[2] == ("s0", "s2")
    empty = sequence_graph([])
    assert empty.num_nodes == 0 and empty.last.numel() == 0 and empty.edge_index.shape == (2, 0)


@pytest.mark.parametrize("name", list(small_graphs()))
def test_removing_all_reasoning_gives_the_control_input(name: str) -> None:
    graph = small_graphs()[name]
    window = graph.graph["window"]
    for step in range(len(window)):
        chains, nodes = reasoning_elements(prefix_graph(graph, step))
        pair = counterfactual_pair(graph, INDEX, step, chains=chains, nodes=nodes)
        assert_same(pair.rea, sequence_graph(window[: step + 1]))
        assert pair.div.num_nodes == 0 and pair.div.edge_index.shape == (2, 0)
        assert pair.session == window[: step + 1]


def test_remove_chain_takes_its_extension_and_orphans_only() -> None:
    graph = example_graph()
    edited = remove(graph, chains=["c1"])
    assert not any(a.get("chain") == "c1" for _, _, a in edited.edges(data=True)
                   if a["kind"] == "chain")
    assert {"dc1.1", "dc1.2", "c21", "c22"}.isdisjoint(edited.nodes)
    assert {"dc3.1", "c20", "c23", "s0", "s2", "s5"} <= set(edited.nodes)   # c20 still via c3
    assert [c.id for c in edited.graph["chains"]] == ["c2", "c3"]
    graph_to_json(edited)                                     # still a valid graph document
    assert "dc1.1" in graph and graph.has_edge("s0", "s2")   # the input is untouched


def test_remove_session_item_bridges_chain_and_sequence() -> None:
    pair = counterfactual_pair(example_graph(), INDEX, nodes=["s2"])    # c1 is steps 0, 2, 5
    edges = edges_of(pair.rea)
    assert edges[(CHAIN, 5, 3)] == 0.8 and (CHAIN, 5, 2) not in edges
    assert edges[(SEQUENCE, 9, 7)] == 1.0
    assert pair.session == [5, 9, 7, 11, 3, 8, 14]
    assert pair.rea.x[pair.rea.alias_inputs].tolist() == pair.session


def test_remove_chain_end_drops_the_intents_it_proposed() -> None:
    edited = remove(example_graph(), nodes=["s7"])
    assert {"s7", "dc3.1", "c23"}.isdisjoint(edited.nodes)
    assert "c20" in edited                                    # still proposed by dc1.1
    assert not edited.has_edge("s6", "s7")
    div = reasoning_pair(edited, INDEX).div
    assert div.node_ids[int(div.last)] == ("s5",)


def test_remove_rejects_unknown_ids() -> None:
    with pytest.raises(KeyError, match="c9.*s99"):
        remove(example_graph(), chains=["c9"], nodes=["s99"])
    with pytest.raises(KeyError, match="dc1.1"):               # exists only from step 5 on
        counterfactual_pair(example_graph(), INDEX, 3, nodes=["dc1.1"])


def test_batching_offsets_every_index_field_with_mixed_sizes_and_empty_div() -> None:
    graphs = small_graphs()
    pairs = [reasoning_pair(graphs["example"], INDEX),
             reasoning_pair(graphs["no_divergence"], INDEX),          # empty G_div
             reasoning_pair(graphs["example"], INDEX, step=2),        # empty G_div, 3 nodes
             reasoning_pair(graphs["repeat"], INDEX),
             reasoning_pair(graphs["single"], INDEX)]
    rea, div = collate_pairs(pairs)
    assert rea.num_graphs == div.num_graphs == len(pairs)
    for batch, parts in ((rea, [p.rea for p in pairs]), (div, [p.div for p in pairs])):
        assert batch.alias_inputs.numel() == sum(p.alias_inputs.numel() for p in parts)
        assert batch.batch[batch.last].tolist() == [i for i, p in enumerate(parts)
                                                    if p.num_nodes > 0]
        readout_start, last_i = 0, 0
        for i, part in enumerate(parts):
            alias = batch.alias_inputs[readout_start: readout_start + part.alias_inputs.numel()]
            readout_start += part.alias_inputs.numel()
            assert (batch.batch[alias] == i).all()
            assert torch.equal(batch.x[alias], part.x[part.alias_inputs])
            assert torch.equal(batch.node_kind[alias], part.node_kind[part.alias_inputs])
            if part.num_nodes:
                last = batch.last[last_i]
                last_i += 1
                assert int(batch.batch[last]) == i and int(batch.x[last]) == int(part.x[part.last])
            back = batch.get_example(i)
            for name in TENSOR_FIELDS:
                assert torch.equal(back[name], part[name]), name
    assert Batch.from_data_list([pairs[1].div, pairs[2].div]).num_nodes == 0


def test_intent_index_rows_and_table() -> None:
    index = IntentIndex([*INTENTS, INTENTS[0]])               # duplicates collapse
    assert len(index) == len(INTENTS) + 1
    assert index[INTENTS[0]] == 1 and index["never seen"] == 0 and index[None] == 0
    table = index.table(lambda labels: torch.ones(len(labels), 3) * torch.arange(
        1, len(labels) + 1)[:, None])
    assert table.shape == (len(INTENTS) + 1, 3)
    assert table[0].tolist() == [0, 0, 0] and table[index[INTENTS[2]]].tolist() == [3, 3, 3]
    with pytest.raises(ValueError, match="encode must return"):
        index.table(lambda labels: torch.zeros(2, 3))


# ------------------------------------------------------- intent vocabulary
FREE_TEXT = "an intent outside the vocabulary"      # example_graph's divergent intent of c3


def test_intent_index_is_labels_then_the_graphs_free_texts_sorted() -> None:
    graphs = list(small_graphs().values())
    extra = build_graph([4, 6], [ChainSpec("c1", [0, 1], INTENTS[2], 0.9, "verified",
                                           diverge=[("zombie comedy", [(3, 0.5)]),
                                                    (INTENTS[4], [(5, 0.4)])])])
    index = IntentIndex.from_graphs(INTENTS[:3], [*graphs, extra])
    # Vocabulary first, in its order; then every other intent text once, sorted;
    # a label used as a divergent intent (INTENTS[1]) keeps its vocabulary row.
    assert index.labels == (*INTENTS[:3], FREE_TEXT, INTENTS[3], INTENTS[4], "zombie comedy")
    # Deterministic: the order graphs are read in does not move a row.
    assert IntentIndex.from_graphs(INTENTS[:3], [extra, *reversed(graphs)]) == index
    assert index.digest() != IntentIndex.from_graphs(INTENTS[:3], graphs).digest()
    # The free text has its own row in G_div, not the unknown row.
    div = reasoning_pair(example_graph(), index).div
    rows = {div.node_ids[i][0]: int(div.intent[i]) for i in range(div.num_nodes)
            if int(div.node_kind[i]) == INTENT}
    assert rows["dc3.1"] == index[FREE_TEXT] == 4 and 0 not in rows.values()


def test_unknown_intent_texts_fall_back_to_row_zero() -> None:
    index = IntentIndex.from_graphs(INTENTS, [small_graphs()["single"]])
    assert index.unknown(example_graph()) == [FREE_TEXT]
    div = reasoning_pair(example_graph(), index).div
    intent_rows = div.intent[div.node_kind == INTENT].tolist()
    assert intent_rows.count(0) == 1 and len(intent_rows) == 3
    assert index.unknown(small_graphs()["single"]) == []


def test_intent_index_json_round_trip_and_damage() -> None:
    index = IntentIndex.from_graphs(INTENTS, [example_graph()])
    back = IntentIndex.from_json(json.loads(json.dumps(index.to_json())))
    assert back == index and back[FREE_TEXT] == index[FREE_TEXT]
    damaged = {**index.to_json(), "labels": list(reversed(index.labels))}
    with pytest.raises(ValueError, match="damaged"):
        IntentIndex.from_json(damaged)


def test_intent_table_is_cached_and_a_second_run_never_calls_the_encoder(tmp_path: Path) -> None:
    index = IntentIndex.from_graphs(INTENTS, [example_graph()])
    first = HashEncoder()
    table = cached_intent_table(index, first, tmp_path)
    assert first.calls == 1 and first.texts == list(index.labels)
    assert table.shape == (len(index), 8) and table.dtype == torch.float32
    assert torch.equal(table[0], torch.zeros(8))                       # the unknown row
    # Standardized per dimension over the texts (the encoder's huge dims tamed).
    assert torch.allclose(table[1:].mean(0), torch.zeros(8), atol=1e-5)
    assert torch.allclose(table[1:].std(0, unbiased=False) * math.sqrt(8), torch.ones(8),
                          atol=1e-3)
    path = intent_cache_path(index, first.identity, tmp_path)
    assert path.is_file() and not list(tmp_path.glob(".*.tmp"))      # written atomically
    # A second run (a fresh encoder object: a fresh process) reads the file only.
    second = HashEncoder()
    assert torch.equal(cached_intent_table(index, second, tmp_path), table)
    assert second.calls == 0
    # Another encoder or other texts are other files, never a stale table.
    other = HashEncoder(identity="hash-encoder-v2")
    cached_intent_table(index, other, tmp_path)
    grown = IntentIndex([*index.labels, "zombie comedy"])
    cached_intent_table(grown, second, tmp_path)
    assert other.calls == 1 and second.calls == 1 and len(list(tmp_path.glob("*.npy"))) == 3
    # A damaged file is recomputed, not trusted.
    path.write_bytes(b"not an array")
    third = HashEncoder()
    assert torch.equal(cached_intent_table(index, third, tmp_path), table) and third.calls == 1


def test_intent_table_refuses_bad_vectors_and_caches_nothing(tmp_path: Path) -> None:
    class NaNEncoder(HashEncoder):
        def encode(self, texts: list[str]) -> np.ndarray:
            out = super().encode(texts)
            out[0, 0] = np.nan
            return out

    with pytest.raises(ValueError, match="non-finite"):
        cached_intent_table(IntentIndex(INTENTS), NaNEncoder(), tmp_path)
    assert not list(tmp_path.glob("*.npy"))


@pytest.mark.llm
@pytest.mark.slow
def test_real_text_encoder_builds_and_caches_the_intent_table(tmp_path: Path) -> None:
    """#3's sentence encoder (all-MiniLM-L6-v2, shared with tests/reasoning) on a few texts."""
    from models.data import default_data_dir
    from reasoning.sentence_encoder import open_text_encoder

    # The encoder is extracted where the studio (and tests/reasoning) keep it,
    # so it is extracted at most once; the intent table goes to tmp_path.
    shared = default_data_dir()
    index = IntentIndex([INTENTS[0], INTENTS[2], "space battles", FREE_TEXT])
    encoder = open_text_encoder("", shared, 1)
    started = time.perf_counter()
    table = cached_intent_table(index, encoder, tmp_path)
    encoded = time.perf_counter() - started
    assert encoder.loaded and table.shape == (5, 384) and torch.isfinite(table).all()
    assert torch.equal(table[0], torch.zeros(384)) and (table[1:].norm(dim=1) > 0.5).all()
    fresh = open_text_encoder("", shared, 1)
    started = time.perf_counter()
    assert torch.equal(cached_intent_table(index, fresh, tmp_path), table)
    cached = time.perf_counter() - started
    assert not fresh.loaded                                  # transformers never loaded
    print(f"intent table: load+encode {encoded:.2f} s (load {encoder.load_seconds:.2f} s), "
          f"cache hit {cached:.3f} s")


def test_verification_ablation_reaches_the_encoder_at_the_shipped_graphs_eval_points() -> None:
    """llmrg and llmrg-no-verify must read different G_rea where they are evaluated.

    The bench once showed both rows at exactly the same test NDCG@10; this pins
    that the difference is not lost on the way: at the test step no chain is
    hidden as "future" (the window ends there), so chain edges carry their
    verification scores, rejected chains are left out, and the encoder's
    E_ori differs from the unweighted variant's.
    """
    from models.encoders.gated_graph import GatedGraphEncoder
    from models.fusion.samples import VARIANTS
    from models.graph_data import _chains_after
    from models.graph_sources import BundleGraphSource, shipped_bundle_path

    source = BundleGraphSource(shipped_bundle_path("ml-100k"))
    full, plain = VARIANTS["llmrg"].options, VARIANTS["llmrg-no-verify"].options
    assert full is not None and plain is not None and full.verification and not plain.verification
    graphs = [source.get(u) for u in source.users()]
    differ = {"test": 0, "valid": 0}
    pairs = []
    for graph in graphs:
        last = len(graph.graph["window"]) - 1
        assert not _chains_after(graph, last)           # nothing is hidden at the test step
        for role, step in (("test", last), ("valid", last - 1)):
            a = reasoning_pair(graph, IntentIndex([]), step, full).rea
            b = reasoning_pair(graph, IntentIndex([]), step, plain).rea
            chains_b = {k: w for k, w in edges_of(b).items() if k[0] == CHAIN}
            chains_a = {k: w for k, w in edges_of(a).items() if k[0] == CHAIN}
            assert all(w == 1.0 for w in chains_b.values())
            differ[role] += chains_a != chains_b
            if role == "test" and len(pairs) < 32:
                pairs.append((a, b))
    assert differ["test"] >= 0.9 * len(graphs) and differ["valid"] >= 0.9 * len(graphs)
    torch.manual_seed(0)
    items = torch.nn.Embedding(2000, 16)
    encoder = GatedGraphEncoder(items).eval()
    with torch.no_grad():
        e_a = encoder(Batch.from_data_list([a for a, _ in pairs]))
        e_b = encoder(Batch.from_data_list([b for _, b in pairs]))
    moved = (e_a - e_b).abs().amax(dim=1) > 1e-4
    assert moved.float().mean() >= 0.9


def test_intent_index_names_the_texts_it_does_not_know() -> None:
    graph = example_graph()
    unknown = INDEX.unknown(graph)
    dc31 = graph.nodes["dc3.1"]["intent"]
    assert unknown == [dc31] and dc31 not in INDEX
    assert IntentIndex([*INTENTS, dc31]).unknown(graph) == []
