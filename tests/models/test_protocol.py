"""The ``loo`` protocol (per-user temporal leave-one-out) and sequence padding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.data import Catalogue, Dataset, load_dataset
from models.protocol import DEFAULT_MAX_LEN, leave_one_out, pad_sequences


def hand_dataset() -> Dataset:
    catalogue = Catalogue.build([(str(i), f"Item {i}", None, ()) for i in range(1, 11)])
    histories = {"a": [1, 2, 3, 4, 5, 6, 7],   # long: truncated inputs
                 "b": [8, 9],                  # < 3: training only
                 "c": [3, 1, 2],               # exactly 3: one item of training
                 "d": [10]}                    # < 3: training only
    return Dataset(name="hand", source=Path("."), catalogue=catalogue,
                   user_ids=list(histories),
                   histories=[np.array(h, dtype=np.int64) for h in histories.values()],
                   timestamps=[np.arange(len(h), dtype=np.float64) for h in histories.values()])


def test_loo_by_hand():
    split = leave_one_out(hand_dataset(), max_len=3)
    assert split.n_items == 10 and split.max_len == 3
    assert [t.tolist() for t in split.train] == [[1, 2, 3, 4, 5], [8, 9], [3], [10]]
    # Only users a (0) and c (2) have >= 3 interactions.
    assert split.valid.users.tolist() == [0, 2]
    assert split.test.users.tolist() == [0, 2]
    # a: valid target h[-2] = 6, input h[:-2] = [1..5] -> last 3 = [3, 4, 5]
    #    test target h[-1] = 7, input h[:-1] = [1..6] -> last 3 = [4, 5, 6]
    # c: valid target 1, input [3]; test target 2, input [3, 1]
    assert split.valid.targets.tolist() == [6, 1]
    assert [x.tolist() for x in split.valid.inputs] == [[3, 4, 5], [3]]
    assert split.test.targets.tolist() == [7, 2]
    assert [x.tolist() for x in split.test.inputs] == [[4, 5, 6], [3, 1]]
    for array in (split.valid.users, split.valid.targets, split.test.users, split.test.targets):
        assert array.dtype == np.int64


def test_loo_without_truncation_and_no_leak():
    dataset = hand_dataset()
    split = leave_one_out(dataset, max_len=100)
    assert [x.tolist() for x in split.valid.inputs] == [[1, 2, 3, 4, 5], [3]]
    assert [x.tolist() for x in split.test.inputs] == [[1, 2, 3, 4, 5, 6], [3, 1]]
    for row, user in enumerate(split.test.users):
        history = dataset.histories[user].tolist()
        valid_in, test_in = split.valid.inputs[row].tolist(), split.test.inputs[row].tolist()
        # The validation target is exactly what the test input adds; train is the valid input.
        assert valid_in + [int(split.valid.targets[row])] == test_in
        assert test_in + [int(split.test.targets[row])] == history
        assert split.train[user].tolist() == valid_in


def test_loo_max_len_one_and_default():
    split = leave_one_out(hand_dataset(), max_len=1)
    assert [x.tolist() for x in split.valid.inputs] == [[5], [3]]
    assert [x.tolist() for x in split.test.inputs] == [[6], [1]]
    assert DEFAULT_MAX_LEN == 50
    assert leave_one_out(hand_dataset()).max_len == 50


def test_eval_set_selection():
    split = leave_one_out(hand_dataset())
    assert split.eval_set("valid") is split.valid
    assert split.eval_set("test") is split.test
    with pytest.raises(ValueError, match="train"):
        split.eval_set("train")


def test_loo_targets_follow_file_order_on_timestamp_ties(write_atomic):
    # u's last two rows share t=300: the later one in the file is the test target.
    directory = write_atomic("user_id:token\titem_id:token\ttimestamp:float\n"
                             "u\tx\t100\nu\tlast\t300\nu\ty\t200\nu\tfirst\t300\n")
    dataset = load_dataset(directory)
    split = leave_one_out(dataset)
    ids = lambda idx: dataset.catalogue[int(idx)].item_id  # noqa: E731
    assert ids(split.valid.targets[0]) == "last"
    assert ids(split.test.targets[0]) == "first"
    assert [ids(i) for i in split.test.inputs[0]] == ["x", "y", "last"]


def test_loo_on_real_ml100k(ml100k):
    split = leave_one_out(ml100k)
    assert len(split.test.users) == len(split.valid.users) == 943    # every user has >= 20
    assert split.n_items == 1682
    assert sum(len(t) for t in split.train) == 100000 - 2 * 943
    assert max(len(x) for x in split.test.inputs) == 50
    assert min(len(x) for x in split.valid.inputs) == 18              # shortest history: 20
    for row in (0, 100, 942):
        user = split.test.users[row]
        history = ml100k.histories[user]
        assert split.test.targets[row] == history[-1]
        assert split.valid.targets[row] == history[-2]
        assert split.test.inputs[row].tolist() == history[:-1][-50:].tolist()


# ----------------------------------------------------------------- padding

def test_pad_sequences_truncates_and_right_pads():
    seqs = [np.array([1, 2, 3]), np.array([4]), np.array([], dtype=np.int64)]
    items, lengths = pad_sequences(seqs, max_len=2)
    # keep the last 2 items: [2, 3], [4] -> [4, 0], [] -> [0, 0]
    assert items.tolist() == [[2, 3], [4, 0], [0, 0]]
    assert lengths.tolist() == [2, 1, 0]
    assert items.dtype == torch.int64 and lengths.dtype == torch.int64
    assert seqs[0].tolist() == [1, 2, 3]                      # input untouched


def test_pad_sequences_width_is_longest_when_shorter_than_max_len():
    items, lengths = pad_sequences([[5, 6], [7, 8, 9]], max_len=50)
    assert items.tolist() == [[5, 6, 0], [7, 8, 9]]
    assert lengths.tolist() == [2, 3]


def test_pad_sequences_empty():
    items, lengths = pad_sequences([], max_len=5)
    assert tuple(items.shape) == (0, 1) and tuple(lengths.shape) == (0,)
    items, lengths = pad_sequences([[], []], max_len=5)
    assert items.tolist() == [[0], [0]] and lengths.tolist() == [0, 0]


def test_pad_sequences_of_loo_inputs():
    split = leave_one_out(hand_dataset(), max_len=3)
    items, lengths = pad_sequences(split.test.inputs, split.max_len)
    assert items.tolist() == [[4, 5, 6], [3, 1, 0]]
    assert lengths.tolist() == [3, 2]
