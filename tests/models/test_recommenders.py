"""Base recommenders: training data, SR-GNN session graphs, and 1-epoch runs on real ml-100k."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from models.evaluation import evaluate
from models.protocol import LeaveOneOut, leave_one_out, pad_sequences
from models.recommenders import MODEL_NAMES, Recommender, create
from models.recommenders.neural import causal_windows, prefix_samples
from models.recommenders.srgnn import SRGNN, SRGNNCell, batch_session_graphs, session_graph
from models.runs import load_run
from reasonrec.config import load_config
from reasonrec.studio import Studio

NEURAL = ("gru4rec", "sasrec", "srgnn")


# ------------------------------------------------------------------ training data
def test_prefix_samples_by_hand():
    samples = prefix_samples([np.array([1, 2, 3, 4]), np.array([9]), np.array([5, 6])], max_len=2)
    items, lengths, targets = samples.gather(torch.arange(len(samples)))
    # [9] is too short to give a target; prefixes never cross into another history.
    assert targets.tolist() == [2, 3, 4, 6]
    assert lengths.tolist() == [1, 2, 2, 1]
    assert items.tolist() == [[1, 0], [1, 2], [2, 3], [5, 0]]


def test_prefix_samples_match_brute_force():
    rng = np.random.default_rng(0)
    histories = [rng.integers(1, 30, size=n) for n in (2, 5, 17, 3, 40)]
    samples = prefix_samples(histories, max_len=6)
    order = torch.from_numpy(rng.permutation(len(samples)))
    items, lengths, targets = samples.gather(order)
    expected = [(h[max(0, t - 6):t].tolist(), int(h[t])) for h in histories for t in range(1, len(h))]
    got = [(items[r, :lengths[r]].tolist(), int(targets[r])) for r in range(len(order))]
    assert sorted(got) == sorted(expected)
    assert bool((items[torch.arange(items.shape[1])[None] >= lengths[:, None]] == 0).all())


@pytest.mark.parametrize("max_len, stride", [(4, 1), (4, 3), (4, 4), (50, 10)])
def test_causal_windows_predict_each_target_once_with_its_prefix(max_len, stride):
    # Item ids unique across all histories: a target's id tells its history and position.
    sizes = (1, 2, 4, 5, 9, 23, 120)
    starts = np.cumsum((1,) + sizes[:-1])
    histories = [np.arange(s, s + n) for s, n in zip(starts, sizes)]
    where = {int(item): (h, t) for h in histories for t, item in enumerate(h)}
    inputs, targets, lengths = causal_windows(histories, max_len, stride)
    predicted = []
    for row in range(len(inputs)):
        assert bool((inputs[row, lengths[row]:] == 0).all())
        for pos in np.flatnonzero(targets[row].numpy()):
            h, t = where[int(targets[row, pos])]
            context = inputs[row, :pos + 1].numpy()
            # The input is the target's causal prefix, cut to the window ...
            assert context.tolist() == h[t - len(context):t].tolist()
            # ... which keeps at least max_len - stride + 1 items (or all there are).
            assert len(context) >= min(t, max_len - stride + 1)
            predicted.append(int(targets[row, pos]))
    expected = [int(item) for h in histories for item in h[1:]]
    assert sorted(predicted) == expected  # every target exactly once


# ------------------------------------------------- GRU4Rec truncated backprop
def _gru4rec_split(n_items: int = 40) -> LeaveOneOut:
    rng = np.random.default_rng(3)
    train = [rng.integers(1, n_items + 1, size=int(n)) for n in (3, 8, 30, 47)]
    return LeaveOneOut(train=train, valid=None, test=None, n_items=n_items,  # type: ignore[arg-type]
                       max_len=12)


def test_gru4rec_grad_window_must_cover_a_continuing_windows_targets():
    from models.recommenders.gru4rec import GRU4RecParams
    with pytest.raises(ValueError, match=r"grad_window must be at least window_stride \(10\)"):
        GRU4RecParams(window_stride=10, grad_window=5)
    assert GRU4RecParams(window_stride=10, grad_window=10).grad_window == 10
    assert GRU4RecParams(max_len=5, window_stride=5).grad_window == 10  # no warm-up then


def test_gru4rec_grad_window_batches_every_window_once_by_kind():
    from models.recommenders.gru4rec import GRU4Rec, GRU4RecParams
    split = _gru4rec_split()
    model = GRU4Rec(split.n_items, GRU4RecParams(max_len=12, window_stride=4, grad_window=5))
    inputs, targets, lengths, continuing = model.training_data(split)
    plain = GRU4Rec(split.n_items, GRU4RecParams(max_len=12, window_stride=4, grad_window=None))
    assert all(torch.equal(a, b) for a, b in zip((inputs, targets, lengths),
                                                 plain.training_data(split)))
    # Continuing windows are full and predict nothing in their warm-up steps.
    assert continuing.any() and (~continuing).any()
    assert bool((lengths[continuing] == 12).all()) and not (targets[continuing, :7] > 0).any()
    assert bool((targets[~continuing, 0] > 0).all())  # a starting window predicts from item 1 on
    def window_of(row_inputs: torch.Tensor, row_targets: torch.Tensor) -> int:
        width = len(row_inputs)
        return next(r for r in range(len(inputs)) if torch.equal(row_inputs, inputs[r, :width])
                    and torch.equal(row_targets, targets[r, :width]))

    seen = []
    data = (inputs, targets, lengths, continuing)
    batches = list(model.iter_batches(data, 3, np.random.default_rng(0), torch.device("cpu")))
    assert len(batches) == model.n_batches(data, 3)
    for batch_inputs, batch_targets, warm_up in batches:
        rows = [window_of(i, t) for i, t in zip(batch_inputs, batch_targets)]
        assert {bool(continuing[r]) for r in rows} == {warm_up == 7}  # one kind per batch
        seen += rows
    assert sorted(seen) == list(range(len(inputs)))  # every window once per epoch


def test_gru4rec_warm_up_changes_the_gradient_not_the_loss():
    from models.recommenders.gru4rec import GRU4Rec, GRU4RecParams
    split = _gru4rec_split()
    torch.manual_seed(0)
    model = GRU4Rec(split.n_items, GRU4RecParams(max_len=12, window_stride=4, grad_window=5))
    inputs, targets, _, continuing = model.training_data(split)
    model.eval()  # no dropout: both paths see the same inputs
    batch = (inputs[continuing], targets[continuing])
    full = model.batch_loss(batch)
    full_grad = torch.autograd.grad(full, model.gru.weight_hh_l0)[0]
    warm = model.batch_loss((*batch, 7))
    warm_grad = torch.autograd.grad(warm, model.gru.weight_hh_l0)[0]
    assert torch.allclose(full, warm, atol=1e-6)  # the warm-up hands the same state on
    assert not torch.allclose(full_grad, warm_grad)  # but no gradient flows through it


# --------------------------------------------------------------- SR-GNN graphs
MIXED = [[5, 3, 5, 7], [2], [9, 9, 1, 2, 9], [4, 6], [8, 1, 8, 1, 8, 1, 3]]


def test_session_graph_by_hand():
    g = session_graph([9, 9, 1, 2, 9])
    assert g.x.tolist() == [1, 2, 9]                      # unique items, sorted
    assert g.alias_inputs.tolist() == [2, 2, 0, 1, 2]
    # 9->9 (self loop), 9->1, 1->2, 2->9; the repeated pair counts once.
    assert g.edge_index.t().tolist() == [[0, 1], [1, 2], [2, 0], [2, 2]]
    # in-degree: node 0 has 1, node 2 has 2 (from 1 and itself); out-degree of 9 is 2.
    assert g.weight_in.tolist() == [1.0, 0.5, 1.0, 0.5]
    assert g.weight_out.tolist() == [1.0, 1.0, 0.5, 0.5]


def test_batched_graphs_equal_pyg_batch_of_single_graphs():
    items, lengths = pad_sequences([np.array(s) for s in MIXED], 50)
    batched = batch_session_graphs(items, lengths)
    reference = Batch.from_data_list([session_graph(s) for s in MIXED])
    assert torch.equal(batched.x, reference.x)
    assert torch.equal(batched.edge_index, reference.edge_index)
    assert torch.equal(batched.batch, reference.batch)
    assert torch.equal(batched.weight_in, reference.weight_in)
    assert torch.equal(batched.weight_out, reference.weight_out)
    # Data.__inc__ offsets alias_inputs by each graph's node count, as our construction does.
    valid = torch.arange(items.shape[1])[None] < lengths[:, None]
    assert torch.equal(batched.alias_inputs[valid], reference.alias_inputs)
    for row, seq in enumerate(MIXED):
        nodes = batched.alias_inputs[row, :len(seq)]
        assert batched.x[nodes].tolist() == seq           # each position finds its own item
        assert bool((batched.batch[nodes] == row).all())


def dense_recbole_cell(cell: SRGNNCell, h: torch.Tensor, alias: list[int]) -> torch.Tensor:
    """The cell as the paper's code computes it, with dense normalised A_in / A_out."""
    n = h.shape[0]
    a = torch.zeros(n, n)
    for u, v in zip(alias[:-1], alias[1:]):
        a[u, v] = 1.0
    a_in = (a / a.sum(0).clamp(min=1)).t()                 # row v: 1/indeg(v) over u -> v
    a_out = a / a.sum(1, keepdim=True).clamp(min=1)        # row u: 1/outdeg(u) over u -> v
    m_in = a_in @ cell.lin_in(h) + cell.bias_in
    m_out = a_out @ cell.lin_out(h) + cell.bias_out
    gi = cell.gate_input(torch.cat([m_in, m_out], 1))
    gh = cell.gate_hidden(h)
    i_r, i_z, i_n = gi.chunk(3, 1)
    h_r, h_z, h_n = gh.chunk(3, 1)
    reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    candidate = torch.tanh(i_n + reset * h_n)
    return (1 - update) * candidate + update * h


@torch.no_grad()
def test_cell_matches_dense_adjacency_reference():
    torch.manual_seed(0)
    cell = SRGNNCell(8)
    for p in cell.parameters():
        torch.nn.init.normal_(p)
    for seq in MIXED:
        g = session_graph(seq)
        h = torch.randn(g.num_nodes, 8)
        got = cell(h, g.edge_index, g.weight_in, g.weight_out)
        torch.testing.assert_close(got, dense_recbole_cell(cell, h, g.alias_inputs.tolist()))


@torch.no_grad()
def test_srgnn_batch_encoding_matches_per_sample():
    torch.manual_seed(0)
    model = SRGNN(n_items=10)
    model.eval()
    items, lengths = pad_sequences([np.array(s) for s in MIXED], 50)
    together = model.encode(items, lengths)
    alone = torch.cat([model.encode(torch.tensor([s]), torch.tensor([len(s)])) for s in MIXED])
    torch.testing.assert_close(together, alone)
    assert together.shape == (len(MIXED), model.params.embedding_size)


def test_batch_session_graphs_rejects_empty_rows():
    with pytest.raises(ValueError, match="at least one item"):
        batch_session_graphs(torch.tensor([[1, 2], [0, 0]]), torch.tensor([2, 0]))


# ------------------------------------------------------- real ml-100k, 1 epoch
ONE_EPOCH = {"epochs": 1, "progress": False, "seed": 7}


@pytest.fixture(scope="module")
def split(ml100k) -> LeaveOneOut:
    return leave_one_out(ml100k)


@pytest.fixture(scope="module")
def studio(ml100k_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Studio:
    data_dir = tmp_path_factory.mktemp("runs")
    return Studio(load_config(overrides={"data": {"path": str(ml100k_dir),
                                                  "data_dir": str(data_dir)},
                                         "train": {**ONE_EPOCH, "device": "cpu"}}))


@pytest.fixture(scope="module")
def trained(studio: Studio) -> dict[str, object]:
    """Each model trained for one epoch through the studio (which saves a run)."""
    return {name: studio.train(name) for name in MODEL_NAMES}


def eval_batch(split: LeaveOneOut, rows: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    return pad_sequences(split.test.inputs[:rows], split.max_len)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_one_epoch_trains_evaluates_and_saves(name, trained, split):
    info = trained[name]
    assert info.directory.is_dir()
    assert {p.name for p in info.directory.iterdir()} >= {"model", "config.json", "metrics.json",
                                                          "fit.json"}
    assert info.fit["best_epoch"] == 1
    test = info.metrics["test"]
    for key, value in test.items():
        assert 0.0 <= value <= 1.0, key
    for k1, k2 in ((5, 10), (10, 20)):
        assert test[f"HR@{k1}"] <= test[f"HR@{k2}"]
    assert test["MRR@10"] <= test["NDCG@10"] <= test["HR@10"]
    # A random ranking puts the target in the top 10 with probability 10 / n_items (~0.006);
    # one epoch is far from converged but must already be much better than that. (GRU4Rec,
    # with truncated backprop, is the slowest starter: 0.020 after one epoch, 0.12 converged.)
    assert test["HR@10"] > 3 * 10 / split.n_items
    if name in NEURAL:
        assert len(info.fit["epochs"]) == 1 and info.fit["epochs"][0]["loss"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_score_shape_padding_and_reload(name, trained, split):
    model: Recommender = trained[name].model
    items, lengths = eval_batch(split)
    scores = model.score(items, lengths)
    assert scores.shape == (len(items), split.n_items + 1)
    assert bool(torch.isfinite(scores[:, 1:]).all())
    if name in NEURAL:
        assert bool(torch.isneginf(scores[:, 0]).all())
    reloaded, config, metrics = load_run(trained[name].directory, device="cpu")
    assert config["model"] == name and metrics == trained[name].metrics
    assert torch.equal(reloaded.score(items, lengths), scores)
    assert evaluate(reloaded, split, "test") == trained[name].metrics["test"]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_recommend_after_one_epoch(name, studio, trained):
    result = studio.recommend("196", k=10, name=name)
    ranks = [r.rank for r in result.top_k]
    assert ranks == list(range(1, 11))
    scores = [r.score for r in result.top_k]
    assert scores == sorted(scores, reverse=True)
    seen = {h.item_id for h in result.history}
    assert not seen & {r.item.item_id for r in result.top_k}
    assert result.to_json()["top_k"][0]["title"] == result.top_k[0].item.title


@pytest.mark.slow
@pytest.mark.parametrize("name", NEURAL)
def test_same_seed_same_model(name, split, studio, trained):
    model = create(name, split.n_items, studio.config.models.get(name))
    model.fit(split, studio.config.train)
    items, lengths = eval_batch(split)
    assert torch.equal(model.score(items, lengths), trained[name].model.score(items, lengths))


@pytest.mark.slow
def test_gru4rec_trains_in_steps_of_its_tuned_32_windows(split, studio, trained,
                                                         monkeypatch: pytest.MonkeyPatch):
    """Issue #22: TrainConfig's generic batch (128) must not override GRU4Rec's own (32)."""
    from models.recommenders.gru4rec import GRU4Rec
    train = studio.config.train
    assert train.batch_size == 128 and "batch_size" not in train.model_fields_set
    model = create("gru4rec", split.n_items, studio.config.models.get("gru4rec"))
    sizes: list[int] = []
    batch_loss = GRU4Rec.batch_loss

    def counting(self: GRU4Rec, batch: tuple) -> torch.Tensor:
        sizes.append(len(batch[0]))
        return batch_loss(self, batch)

    monkeypatch.setattr(GRU4Rec, "batch_loss", counting)
    model.fit(split, train)
    windows = len(model.training_data(split)[0])
    assert sum(sizes) == windows and max(sizes) == 32  # every window once, 32 a step
    assert len(sizes) == model.n_batches(model.training_data(split), 32) > windows // 32
    assert trained["gru4rec"].model.params.batch_size == 32  # what a saved run records
