"""The typed, weighted SR-GNN encoder: against a dense reference, batching, empty graphs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from models.encoders.gated_graph import GatedGraphEncoder
from models.graph_data import (CHAIN, NUM_EDGE_TYPES, SEQUENCE, GraphData, IntentIndex,
                               reasoning_pair, sequence_graph)
from tests.models.reasoning_graphs import INTENTS, example_graph, small_graphs
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)

D = 8
N_ITEMS = 30
INDEX = IntentIndex(INTENTS)


def make_encoder(seed: int = 0, **kwargs: object) -> GatedGraphEncoder:
    torch.manual_seed(seed)
    encoder = GatedGraphEncoder(nn.Embedding(N_ITEMS + 1, D), **kwargs)
    with torch.no_grad():   # kind embeddings start at zero; make them matter in the tests
        encoder.kind_embedding.weight.normal_()
    return encoder.eval()


def graphs() -> list[GraphData]:
    pairs = [reasoning_pair(g, INDEX) for g in small_graphs().values()]
    return [p.rea for p in pairs] + [p.div for p in pairs] + [sequence_graph([3, 4, 3])]


def dense_reference(enc: GatedGraphEncoder, data: GraphData) -> Tensor:
    """SR-GNN's equations with dense per-type adjacency matrices, for one graph."""
    n = data.num_nodes
    if n == 0:
        return torch.zeros(D)
    h = enc.node_features(data)
    src, dst = data.edge_index
    in_deg = torch.bincount(dst, minlength=n).clamp(min=1).float()
    out_deg = torch.bincount(src, minlength=n).clamp(min=1).float()
    conv = enc.conv
    for _ in range(enc.steps):
        a_in, a_out = conv.bias_in.expand(n, D).clone(), conv.bias_out.expand(n, D).clone()
        for t in range(conv.num_edge_types):
            A_in, A_out = torch.zeros(n, n), torch.zeros(n, n)
            for s, d, typ, w in zip(src.tolist(), dst.tolist(), data.edge_type.tolist(),
                                    data.edge_weight.tolist()):
                if typ == t:
                    A_in[d, s] += w / in_deg[d]
                    A_out[s, d] += w / out_deg[s]
            a_in = a_in + A_in @ h @ conv.weight_in[t]
            a_out = a_out + A_out @ h @ conv.weight_out[t]
        h = conv.gru(torch.cat([a_in, a_out], dim=-1), h)
    v_last = h[data.last[0]]
    seq = h[data.alias_inputs]
    alpha = enc.attn_score(torch.sigmoid(enc.attn_last(v_last) + enc.attn_node(seq)))
    return enc.transform(torch.cat([(alpha * seq).sum(0), v_last]))


@torch.no_grad()
@pytest.mark.parametrize("steps", [1, 2])
def test_matches_dense_srgnn_reference(steps: int) -> None:
    encoder = make_encoder(steps=steps, num_intents=len(INDEX))
    for data in graphs():
        expected = dense_reference(encoder, data)
        assert torch.allclose(encoder(data)[0], expected, atol=1e-5), data.node_ids


@torch.no_grad()
def test_batched_output_equals_per_graph_output() -> None:
    encoder = make_encoder(num_intents=len(INDEX))
    parts = graphs()
    singles = torch.cat([encoder(g) for g in parts])
    batched = encoder(Batch.from_data_list(parts))
    assert batched.shape == (len(parts), D)
    assert torch.allclose(batched, singles, atol=1e-5)
    reordered = encoder(Batch.from_data_list(parts[::-1]))
    assert torch.allclose(reordered, singles.flip(0), atol=1e-5)


@torch.no_grad()
def test_empty_graphs_give_zero_rows() -> None:
    encoder = make_encoder()
    empty, full = sequence_graph([]), sequence_graph([1, 2])
    out = encoder(Batch.from_data_list([empty, full, empty]))
    assert out[0].abs().sum() == 0 and out[2].abs().sum() == 0 and out[1].abs().sum() > 0
    assert torch.equal(encoder(Batch.from_data_list([empty, empty])), torch.zeros(2, D))
    assert torch.equal(encoder(empty), torch.zeros(1, D))


@torch.no_grad()
def test_edge_types_and_weights_change_the_output() -> None:
    encoder = make_encoder()
    rea = reasoning_pair(example_graph(), INDEX).rea
    base = encoder(rea)
    retyped = rea.clone()
    retyped.edge_type = torch.where(rea.edge_type == CHAIN, SEQUENCE, rea.edge_type)
    assert not torch.allclose(encoder(retyped), base, atol=1e-4)
    reweighted = rea.clone()
    reweighted.edge_weight = torch.where(rea.edge_type == CHAIN, 0.1, rea.edge_weight)
    assert not torch.allclose(encoder(reweighted), base, atol=1e-4)
    same = rea.clone()
    same.edge_weight = rea.edge_weight.clone()
    assert torch.equal(encoder(same), base)


@torch.no_grad()
def test_intent_nodes_read_the_projected_intent_table() -> None:
    vectors = torch.randn(len(INDEX), 5)
    encoder = make_encoder(intent_vectors=vectors)
    div = reasoning_pair(example_graph(), INDEX).div
    base = encoder(div)
    used = int(div.intent[div.intent > 0][0])
    unused = next(r for r in range(1, len(INDEX)) if r not in div.intent.tolist())
    for row, changes in ((used, True), (unused, False)):
        encoder.intent_vectors[row] += 1.0
        assert torch.allclose(encoder(div), base, atol=1e-6) is not changes
        encoder.intent_vectors[row] -= 1.0
    assert "intent_vectors" in encoder.state_dict()            # saved with the model


def test_gradients_reach_every_parameter() -> None:
    encoder = make_encoder(intent_vectors=torch.randn(len(INDEX), 5)).train()
    pairs = [reasoning_pair(g, INDEX) for g in small_graphs().values()]
    batch = Batch.from_data_list([p.div for p in pairs] + [p.rea for p in pairs])
    encoder(batch).pow(2).sum().backward()
    for name, param in encoder.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_shared_item_table_is_not_copied_or_reinitialized() -> None:
    table = nn.Embedding(N_ITEMS + 1, D)
    before = table.weight.detach().clone()
    encoder = GatedGraphEncoder(table, num_edge_types=NUM_EDGE_TYPES)
    assert encoder.item_embedding is table and torch.equal(table.weight, before)
    with pytest.raises(ValueError, match="steps"):
        GatedGraphEncoder(table, steps=0)
