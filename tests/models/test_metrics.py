"""HR/NDCG/MRR@K from 0-based target ranks, and the rank computation itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.metrics import DEFAULT_KS, metrics_from_ranks, per_user_metrics, target_ranks

NEG_INF = float("-inf")


# ----------------------------------------------------------------- metrics by hand

def test_metrics_by_hand():
    ranks = np.array([0, 1, 4, 5, 9, 10])
    got = metrics_from_ranks(ranks, ks=(5, 10))
    # HR@5: ranks < 5 are 0, 1, 4 -> 3 hits of 6 = 0.5
    assert got["HR@5"] == pytest.approx(0.5)
    # NDCG@5 = (1/log2(0+2) + 1/log2(1+2) + 1/log2(4+2)) / 6
    #        = (1 + 0.6309297535714575 + 0.3868528072345416) / 6 = 2.017782560805999 / 6
    assert got["NDCG@5"] == pytest.approx(2.017782560805999 / 6, rel=1e-12)
    # MRR@5 = (1/1 + 1/2 + 1/5) / 6 = 1.7 / 6
    assert got["MRR@5"] == pytest.approx(1.7 / 6, rel=1e-12)
    # HR@10: ranks 0, 1, 4, 5, 9 hit (10 does not) -> 5/6
    assert got["HR@10"] == pytest.approx(5 / 6)
    # NDCG@10 adds 1/log2(5+2) = 0.35620718710802218 and 1/log2(9+2) = 0.28906482631788782
    #         -> (2.017782560805999 + 0.3562071871080222 + 0.2890648263178878) / 6
    #          = 2.663054574231909 / 6
    assert got["NDCG@10"] == pytest.approx(2.663054574231909 / 6, rel=1e-12)
    # MRR@10 = (1 + 1/2 + 1/5 + 1/6 + 1/10) / 6 = (59/30) / 6 = 59/180
    assert got["MRR@10"] == pytest.approx(59 / 180, rel=1e-12)
    assert list(got) == ["HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR@5", "MRR@10"]


def test_per_user_metrics_by_hand():
    values = per_user_metrics(np.array([0, 2, 3]), ks=(3,))
    # rank 0: HR 1, NDCG 1/log2(2) = 1, MRR 1/1
    # rank 2: HR 1, NDCG 1/log2(4) = 0.5, MRR 1/3
    # rank 3: not < 3 -> all zero
    assert values["HR@3"].tolist() == [1.0, 1.0, 0.0]
    assert values["NDCG@3"].tolist() == pytest.approx([1.0, 0.5, 0.0], rel=1e-12)
    assert values["MRR@3"].tolist() == pytest.approx([1.0, 1 / 3, 0.0], rel=1e-12)
    assert set(values) == {"HR@3", "NDCG@3", "MRR@3"}


@pytest.mark.parametrize("k", [1, 5, 10, 20])
def test_k_boundary(k):
    values = per_user_metrics(np.array([k - 1, k]), ks=(k,))
    # rank K-1 is the K-th item: a hit; rank K is the (K+1)-th: a miss.
    assert values[f"HR@{k}"].tolist() == [1.0, 0.0]
    assert values[f"NDCG@{k}"][0] == pytest.approx(1 / np.log2(k + 1))
    assert values[f"NDCG@{k}"][1] == 0.0
    assert values[f"MRR@{k}"].tolist() == pytest.approx([1 / k, 0.0])


def test_default_ks_and_key_order():
    assert DEFAULT_KS == (5, 10, 20)
    got = metrics_from_ranks(np.array([7]))
    assert list(got) == ["HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20",
                         "MRR@5", "MRR@10", "MRR@20"]
    # rank 7: miss at 5, hit at 10 and 20; NDCG 1/log2(9) = 0.31546487678572877, MRR 1/8
    assert got["HR@5"] == 0.0 and got["HR@10"] == 1.0 and got["HR@20"] == 1.0
    assert got["NDCG@10"] == pytest.approx(0.31546487678572877, rel=1e-12)
    assert got["NDCG@20"] == got["NDCG@10"]
    assert got["MRR@10"] == got["MRR@20"] == 0.125 and got["MRR@5"] == 0.0


def test_empty_input():
    got = metrics_from_ranks(np.zeros(0, dtype=np.int64))
    assert len(got) == 9 and all(v == 0.0 for v in got.values())
    assert all(isinstance(v, float) for v in got.values())
    assert metrics_from_ranks([], ks=(3,)) == {"HR@3": 0.0, "NDCG@3": 0.0, "MRR@3": 0.0}
    values = per_user_metrics(np.zeros(0), ks=(5,))
    assert all(v.shape == (0,) for v in values.values())


def test_metrics_are_plain_means_of_per_user_values():
    rng = np.random.default_rng(0)
    ranks = rng.integers(0, 40, size=200)
    per_user = per_user_metrics(ranks)
    means = metrics_from_ranks(ranks)
    for key, value in means.items():
        assert value == pytest.approx(per_user[key].mean())
    assert means["HR@5"] == pytest.approx(np.mean(ranks < 5))


# ----------------------------------------------------------------- target ranks

def test_target_ranks_with_ties_by_hand():
    #                       pad   1     2     3     4     5
    scores = torch.tensor([[NEG_INF, 0.5, 0.9, 0.5, 0.1, 0.5]] * 5)
    targets = torch.tensor([2, 1, 3, 5, 4])
    # target 2 (0.9): nothing higher                                   -> 0
    # target 1 (0.5): higher {2}; ties at lower index: none            -> 1
    # target 3 (0.5): higher {2}; ties at lower index {1}              -> 2
    # target 5 (0.5): higher {2}; ties at lower index {1, 3}           -> 3
    # target 4 (0.1): higher {1, 2, 3, 5}                              -> 4
    ranks = target_ranks(scores, targets)
    assert ranks.dtype == torch.int64
    assert ranks.tolist() == [0, 1, 2, 3, 4]


def test_padding_column_never_outranks():
    # All real items tie; padding is -inf. Target t is preceded only by items 1..t-1.
    scores = torch.zeros(4, 6)
    scores[:, 0] = NEG_INF
    targets = torch.tensor([1, 2, 4, 5])
    assert target_ranks(scores, targets).tolist() == [0, 1, 3, 4]
    # Padding had the best raw score; once masked it does not count (as in evaluation).
    raw = torch.tensor([[100.0, 1.0, 2.0]])
    raw[:, 0] = NEG_INF
    assert target_ranks(raw, torch.tensor([1])).tolist() == [1]
    assert target_ranks(raw, torch.tensor([2])).tolist() == [0]


def test_ranks_agree_with_stable_descending_sort():
    generator = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 4, (64, 40), generator=generator).float()   # many ties
    scores[:, 0] = NEG_INF
    targets = torch.randint(1, 40, (64,), generator=generator)
    ranks = target_ranks(scores, targets)
    order = np.argsort(-scores.numpy(), axis=1, kind="stable")           # lower index first
    expected = [int(np.flatnonzero(order[b] == targets[b].item())[0]) for b in range(64)]
    assert ranks.tolist() == expected
    # The same order as torch's own stable sort (what a top-k list would use).
    torch_order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    assert torch.equal(torch_order, torch.from_numpy(order))


def test_target_ranks_empty_batch():
    ranks = target_ranks(torch.zeros(0, 7), torch.zeros(0, dtype=torch.int64))
    assert ranks.shape == (0,) and ranks.dtype == torch.int64
    assert metrics_from_ranks(ranks.numpy())["HR@5"] == 0.0


def test_nan_scores_are_rejected():
    # A NaN target score compares false with everything and would count as rank 0 (a hit).
    scores = torch.tensor([[NEG_INF, 0.3, float("nan"), 0.9]])
    with pytest.raises(ValueError, match="NaN"):
        target_ranks(scores, torch.tensor([2]))


def test_stable_top_k_breaks_ties_by_item_index_as_the_ranks_do() -> None:
    from models.metrics import mask_padding, stable_top_k, top_items

    generator = torch.Generator().manual_seed(0)
    scores = mask_padding(torch.randint(0, 4, (6, 30), generator=generator).float())   # many ties
    order = stable_top_k(scores, 30)
    assert torch.equal(order, torch.from_numpy(np.argsort(-scores.numpy(), axis=1, kind="stable")))
    for row in range(6):   # the item at position r of the list has rank r
        ranks = target_ranks(scores[row:row + 1].expand(30, -1), order[row])
        assert ranks.tolist() == list(range(30))
    assert order[:, -1].tolist() == [0] * 6   # padding last
    row = scores[0].clone()
    row[[3, 5]] = -torch.inf
    best = top_items(row, 100)
    assert len(best) == 27 and not {0, 3, 5} & set(best) and best == stable_top_k(row, 27).tolist()


def test_soft_rank_approaches_the_rank_and_moves_when_the_rank_does_not():
    from models.metrics import soft_rank, soft_rank_temperature

    scores = torch.tensor([-torch.inf, 5.0, 4.0, 3.0, -torch.inf, 0.0])
    # A cold temperature gives the exact 0-based rank (items above), padding ignored.
    assert soft_rank(scores, 3, 0.01) == pytest.approx(2.0, abs=1e-6)
    assert soft_rank(scores, 1, 0.01) == pytest.approx(0.0, abs=1e-6)
    # The item below closes in: the exact rank holds, the smooth rank rises.
    closer = scores.clone()
    closer[5] = 2.9
    t = soft_rank_temperature(scores)
    assert soft_rank(closer, 3, t) > soft_rank(scores, 3, t)
    # Shifting every score leaves it unchanged (the item's score alone would not).
    assert soft_rank(scores + 7.0, 3, t) == pytest.approx(soft_rank(scores, 3, t))
    assert t == pytest.approx(float(torch.tensor([5.0, 4.0, 3.0, 0.0]).std()))
    assert soft_rank_temperature(torch.tensor([-torch.inf, 1.0, 1.0])) == 1.0
