"""Dataset readers, histories, sessions, catalogue and the checksummed ml-100k fetch."""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from models.data import (Catalogue, ChecksumError, DataError, DataFormatError, Item,
                         load_atomic, load_dataset, load_grouplens, split_sessions)
from models.data import fetch
from models.data.dataset import DEFAULT_SESSION_GAP_SECONDS
from models.data.readers import GROUPLENS_GENRES

HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
GOOD = "1\t10\t4\t100\n1\t11\t3\t200\n"          # lines 2 and 3 after HEADER
N_GENRES = 19


def snapshot(root: Path) -> list[tuple[str, str]]:
    """Every path under ``root`` with a content digest (directories marked as such)."""
    out = []
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out.append((rel, "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()))
    return out


def assert_format_error(exc: BaseException, path: Path, line: int | None,
                        field: str | None) -> None:
    """The error is a DataFormatError whose message reads ``FILE:LINE: field 'F': ...``."""
    assert isinstance(exc, DataFormatError), type(exc)
    assert exc.path == path
    assert exc.line == line
    assert exc.field == field
    message = str(exc)
    prefix = f"{path}:{line}: " if line is not None else f"{path}: "
    assert message.startswith(prefix), message
    if field is not None:
        assert message.startswith(prefix + f"field '{field}': "), message
    else:
        assert "field '" not in message, message
    assert exc.reason and exc.reason in message


def grouplens_item(item_id: str, title: str, date: str = "01-Jan-1995",
                   genres: tuple[int, ...] = (), flags: list[str] | None = None) -> str:
    """One u.item line: id|title|release date|video date|url|19 genre flags."""
    if flags is None:
        flags = ["1" if g in genres else "0" for g in range(N_GENRES)]
    return "|".join([item_id, title, date, "", "http://example.invalid/x"] + flags) + "\n"


# ----------------------------------------------------------------- malformed input

ATOMIC_CASES = [
    # id, files (name -> bytes), bad file, line, field
    ("missing-user", {"toy.inter": "item_id:token\trating:float\ttimestamp:float\n10\t4\t1\n"},
     "toy.inter", 1, "user_id"),
    ("missing-item", {"toy.inter": "user_id:token\trating:float\ttimestamp:float\n1\t4\t1\n"},
     "toy.inter", 1, "item_id"),
    ("missing-timestamp", {"toy.inter": "user_id:token\titem_id:token\trating:float\n1\t10\t4\n"},
     "toy.inter", 1, "timestamp"),
    ("timestamp-abc", {"toy.inter": HEADER + GOOD + "2\t12\t5\tabc\n"}, "toy.inter", 4, "timestamp"),
    ("timestamp-nan", {"toy.inter": HEADER + GOOD + "2\t12\t5\tnan\n"}, "toy.inter", 4, "timestamp"),
    ("timestamp-inf", {"toy.inter": HEADER + GOOD + "2\t12\t5\tinf\n"}, "toy.inter", 4, "timestamp"),
    ("timestamp-neg-inf", {"toy.inter": HEADER + "2\t12\t5\t-inf\n"}, "toy.inter", 2, "timestamp"),
    ("timestamp-empty", {"toy.inter": HEADER + GOOD + "2\t12\t5\t\n"}, "toy.inter", 4, "timestamp"),
    ("ragged-too-few", {"toy.inter": HEADER + GOOD + "2\t12\t5\n"}, "toy.inter", 4, None),
    ("ragged-too-many", {"toy.inter": HEADER + GOOD + "2\t12\t5\t300\textra\n"},
     "toy.inter", 4, None),
    ("blank-lines-still-counted", {"toy.inter": HEADER + "1\t10\t4\t100\n\n\n1\t11\t3\txyz\n"},
     "toy.inter", 5, "timestamp"),
    ("crlf-line-endings", {"toy.inter": (HEADER + GOOD + "2\t12\t5\tabc\n").replace("\n", "\r\n")},
     "toy.inter", 4, "timestamp"),
    ("empty-user", {"toy.inter": HEADER + GOOD + "\t12\t5\t300\n"}, "toy.inter", 4, "user_id"),
    ("empty-item", {"toy.inter": HEADER + GOOD + "2\t \t5\t300\n"}, "toy.inter", 4, "item_id"),
    ("empty-file", {"toy.inter": b""}, "toy.inter", 1, None),
    ("whitespace-only-file", {"toy.inter": b" \n\n\t\n"}, "toy.inter", 1, None),
    ("header-only", {"toy.inter": HEADER}, "toy.inter", 2, None),
    ("header-only-no-newline", {"toy.inter": HEADER.rstrip("\n")}, "toy.inter", 2, None),
    ("latin1-byte-in-utf8", {"toy.inter": HEADER.encode() + GOOD.encode()
                             + b"2\t12\t5\t300\n3\tCaf\xe9\t1\t400\n"}, "toy.inter", 5, None),
    ("latin1-byte-in-utf8-crlf", {"toy.inter": (HEADER + GOOD).replace("\n", "\r\n").encode()
                                  + b"3\tCaf\xe9\t1\t400\r\n"}, "toy.inter", 4, None),
    ("item-missing-id-column", {"toy.inter": HEADER + GOOD,
                                "toy.item": "movie_title:token_seq\nToy Story\n"},
     "toy.item", 1, "item_id"),
    ("item-ragged", {"toy.inter": HEADER + GOOD,
                     "toy.item": "item_id:token\tmovie_title:token_seq\n10\tA\n11\tB\textra\n"},
     "toy.item", 3, None),
    ("item-header-only", {"toy.inter": HEADER + GOOD, "toy.item": "item_id:token\n"},
     "toy.item", 2, None),
    ("item-empty-id", {"toy.inter": HEADER + GOOD,
                       "toy.item": "item_id:token\tmovie_title:token_seq\n10\tA\n\tB\n"},
     "toy.item", 3, "item_id"),
    ("item-duplicate-id", {"toy.inter": HEADER + GOOD,
                           "toy.item": "item_id:token\tmovie_title:token_seq\n10\tA\n11\tB\n"
                                       " 10 \tA again\n"}, "toy.item", 4, "item_id"),
    ("item-latin1-byte-in-utf8", {"toy.inter": HEADER + GOOD,
                                  "toy.item": b"item_id:token\tmovie_title:token_seq\n"
                                              b"10\tA\n11\tCaf\xe9\n"}, "toy.item", 3, None),
    ("user-ragged", {"toy.inter": HEADER + GOOD,
                     "toy.user": "user_id:token\tage:float\n1\t20\t9\n"}, "toy.user", 2, None),
    ("user-missing-id-column", {"toy.inter": HEADER + GOOD, "toy.user": "age:float\n20\n"},
     "toy.user", 1, "user_id"),
]

_U_DATA = "1\t10\t4\t100\n1\t11\t3\t200\n"      # lines 1 and 2
GROUPLENS_CASES = [
    ("data-too-few-fields", {"u.data": _U_DATA + "2\t12\t5\n"}, "u.data", 3, None),
    ("data-too-many-fields", {"u.data": "1\t10\t4\t100\textra\n"}, "u.data", 1, None),
    ("data-pipe-separated", {"u.data": _U_DATA + "2|12|5|300\n"}, "u.data", 3, None),
    ("data-timestamp-abc", {"u.data": _U_DATA + "2\t12\t5\tabc\n"}, "u.data", 3, "timestamp"),
    ("data-timestamp-nan", {"u.data": _U_DATA + "2\t12\t5\tnan\n"}, "u.data", 3, "timestamp"),
    ("data-timestamp-inf", {"u.data": _U_DATA + "2\t12\t5\tinf\n"}, "u.data", 3, "timestamp"),
    ("data-with-header-line", {"u.data": "user_id\titem_id\trating\ttimestamp\n" + _U_DATA},
     "u.data", 1, "timestamp"),
    ("data-empty-user", {"u.data": _U_DATA + " \t12\t5\t300\n"}, "u.data", 3, "user_id"),
    ("data-empty-item", {"u.data": _U_DATA + "2\t\t5\t300\n"}, "u.data", 3, "item_id"),
    ("data-empty-file", {"u.data": b""}, "u.data", 1, None),
    ("data-whitespace-only", {"u.data": b"\n\n"}, "u.data", 1, None),
    ("item-genre-flag-2", {"u.data": _U_DATA,
                           "u.item": grouplens_item("10", "A (1995)")
                           + grouplens_item("11", "B", flags=["0"] * 18 + ["2"])},
     "u.item", 2, "genre"),
    ("item-genre-flag-empty", {"u.data": _U_DATA,
                               "u.item": grouplens_item("10", "A", flags=[""] + ["0"] * 18)},
     "u.item", 1, "genre"),
    ("item-genre-flag-word", {"u.data": _U_DATA,
                              "u.item": grouplens_item("10", "A")
                              + grouplens_item("11", "B")
                              + grouplens_item("12", "C", flags=["yes"] + ["0"] * 18)},
     "u.item", 3, "genre"),
    ("item-wrong-field-count", {"u.data": _U_DATA,
                                "u.item": grouplens_item("10", "A") + "11|B|01-Jan-1995\n"},
     "u.item", 2, None),
    ("item-empty-file", {"u.data": _U_DATA, "u.item": b""}, "u.item", 1, None),
    ("item-duplicate-id", {"u.data": _U_DATA,
                           "u.item": grouplens_item("10", "A") + grouplens_item("11", "B")
                           + grouplens_item("10", "A again")}, "u.item", 3, "item_id"),
    ("item-empty-id", {"u.data": _U_DATA,
                       "u.item": grouplens_item("10", "A") + grouplens_item(" ", "B")},
     "u.item", 2, "item_id"),
    ("user-wrong-field-count", {"u.data": _U_DATA, "u.user": "1|24|M|technician|85711\n2|53|F\n"},
     "u.user", 2, None),
]


def _write_files(directory: Path, files: dict[str, str | bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        (directory / name).write_bytes(data)


@pytest.mark.parametrize("files, bad, line, field",
                         [c[1:] for c in ATOMIC_CASES], ids=[c[0] for c in ATOMIC_CASES])
def test_malformed_atomic(tmp_path, files, bad, line, field):
    directory = tmp_path / "data"
    _write_files(directory, files)
    before = snapshot(tmp_path)
    with pytest.raises(DataFormatError) as info:
        load_dataset(directory)
    assert_format_error(info.value, directory / bad, line, field)
    assert snapshot(tmp_path) == before
    # The direct reader gives the same error as the auto-detecting entry point.
    with pytest.raises(DataFormatError) as again:
        load_atomic(directory)
    assert str(again.value) == str(info.value)


@pytest.mark.parametrize("files, bad, line, field",
                         [c[1:] for c in GROUPLENS_CASES], ids=[c[0] for c in GROUPLENS_CASES])
def test_malformed_grouplens(tmp_path, files, bad, line, field):
    directory = tmp_path / "ml-toy"
    _write_files(directory, files)
    before = snapshot(tmp_path)
    with pytest.raises(DataFormatError) as info:
        load_dataset(directory)
    assert_format_error(info.value, directory / bad, line, field)
    assert snapshot(tmp_path) == before
    with pytest.raises(DataFormatError) as again:
        load_grouplens(directory)
    assert str(again.value) == str(info.value)


def test_duplicate_item_id_names_both_lines_and_the_id(tmp_path, ml100k_dir):
    """The issue #22 case: one extra row for item 242 in the real ml-100k.item."""
    directory = tmp_path / "dup"
    shutil.copytree(ml100k_dir, directory)
    with open(directory / "ml-100k.item", "a", encoding="utf-8") as handle:
        handle.write("242\tDuplicate Kolya\t1996\tComedy\n")
    before = snapshot(tmp_path)
    with pytest.raises(DataFormatError) as info:
        load_dataset(directory)
    assert_format_error(info.value, directory / "ml-100k.item", 1684, "item_id")
    assert "'242'" in str(info.value) and "line 243" in str(info.value)
    assert snapshot(tmp_path) == before


def test_grouplens_latin1_title_read_as_utf8_names_line(tmp_path):
    directory = tmp_path / "ml-toy"
    _write_files(directory, {"u.data": _U_DATA,
                             "u.item": (grouplens_item("10", "A") + grouplens_item("11", "Café")
                                        ).encode("latin-1")})
    before = snapshot(tmp_path)
    with pytest.raises(DataFormatError) as info:
        load_dataset(directory, encoding="utf-8")
    assert_format_error(info.value, directory / "u.item", 2, None)
    assert "0xe9" in str(info.value) and "utf-8" in str(info.value)
    assert snapshot(tmp_path) == before


def test_grouplens_bad_byte_in_u_data_names_line(tmp_path):
    directory = tmp_path / "ml-toy"
    _write_files(directory, {"u.data": _U_DATA.encode() + b"2\t1\xff2\t5\t300\n"})
    with pytest.raises(DataFormatError) as info:
        load_dataset(directory, encoding="utf-8")
    assert_format_error(info.value, directory / "u.data", 3, None)
    assert "0xff" in str(info.value)


@pytest.mark.parametrize("layout, files, first_file", [
    ("atomic", {"toy.inter": HEADER + GOOD}, "toy.inter"),
    ("grouplens", {"u.data": _U_DATA}, "u.data"),
])
def test_unknown_encoding_name(tmp_path, layout, files, first_file):
    directory = tmp_path / "data"
    _write_files(directory, files)
    before = snapshot(tmp_path)
    with pytest.raises(DataFormatError) as info:
        load_dataset(directory, encoding="no-such-codec-42")
    assert_format_error(info.value, directory / first_file, None, None)
    assert "no-such-codec-42" in str(info.value)
    assert snapshot(tmp_path) == before


def test_line_numbers_ignore_unicode_line_separators(tmp_path):
    """U+2028, U+0085, form feed inside a field are text, not line breaks.

    Regression: ``str.splitlines()`` split rows there, breaking valid rows and
    shifting the line numbers of every later error.
    """
    directory = tmp_path / "data"
    item = ("item_id:token\tmovie_title:token_seq\n"
            "10\tCafé\u2028Noir\n"
            "11\tDots\u0085and\x0cfeed\n"
            "12\tB\textra\n")
    _write_files(directory, {"toy.inter": HEADER + GOOD, "toy.item": item})
    with pytest.raises(DataFormatError) as info:
        load_dataset(directory)
    assert_format_error(info.value, directory / "toy.item", 4, None)
    # Without the bad row the file loads and the titles keep their characters.
    _write_files(directory, {"toy.item": item.rsplit("12\t", 1)[0]})
    dataset = load_dataset(directory)
    assert dataset.catalogue.by_id("10").title == "Café\u2028Noir"
    assert dataset.catalogue.by_id("11").title == "Dots\u0085and\x0cfeed"


def test_grouplens_cp1252_ellipsis_byte_read_as_latin1(tmp_path):
    """Byte 0x85 (cp1252 '…') decodes to U+0085 in latin-1; the row must stay whole."""
    directory = tmp_path / "ml-toy"
    _write_files(directory, {"u.data": _U_DATA,
                             "u.item": grouplens_item("10", "Wait\x85 What (1995)").encode("latin-1")
                             + grouplens_item("11", "B").encode("latin-1")})
    dataset = load_dataset(directory)
    assert dataset.catalogue.by_id("10").title == "Wait\x85 What"
    assert dataset.catalogue.by_id("10").year == 1995
    assert dataset.n_items == 2


# ----------------------------------------------------------------- directories and paths

def test_directory_without_inter_file(tmp_path):
    directory = tmp_path / "empty"
    directory.mkdir()
    (directory / "toy.item").write_text("item_id:token\n10\n")
    before = snapshot(tmp_path)
    with pytest.raises(DataError) as info:
        load_dataset(directory)
    assert not isinstance(info.value, DataFormatError)
    assert str(directory) in str(info.value) and ".inter" in str(info.value)
    assert snapshot(tmp_path) == before


def test_directory_with_several_inter_files(tmp_path, write_atomic):
    directory = write_atomic(HEADER + GOOD, name="a")
    write_atomic(HEADER + GOOD, name="b", directory=directory)
    before = snapshot(tmp_path)
    with pytest.raises(DataError) as info:
        load_dataset(directory)
    message = str(info.value)
    assert str(directory) in message and "a.inter" in message and "b.inter" in message
    assert snapshot(tmp_path) == before


def test_nonexistent_path(tmp_path):
    missing = tmp_path / "nope" / "ml-100k"
    with pytest.raises(DataError) as info:
        load_dataset(missing)
    assert str(missing) in str(info.value)
    assert not missing.exists() and not missing.parent.exists()


def test_file_path_loads_its_directory(write_atomic):
    directory = write_atomic(HEADER + GOOD)
    dataset = load_dataset(directory / "toy.inter")
    assert dataset.source == directory
    assert dataset.n_interactions == 2


def test_alternative_time_column_name_and_bom(write_atomic):
    directory = write_atomic("\ufeffuser_id:token\titem_id:token\ttime:float\n"
                             "u\ti2\t5\nu\ti1\t3\n")
    dataset = load_dataset(directory)
    assert dataset.user_ids == ["u"]
    assert [dataset.catalogue[i].item_id for i in dataset.history("u")] == ["i1", "i2"]


def test_real_copy_is_not_written_by_reading(ml100k_dir):
    before = snapshot(ml100k_dir)
    dataset = load_dataset(ml100k_dir)
    assert dataset.n_interactions == 100000
    assert snapshot(ml100k_dir) == before


# ----------------------------------------------------------------- tie-breaking

def test_ties_keep_file_order(write_atomic):
    # 40 rows of user "a" all at t=500 in a shuffled item order, plus earlier and later
    # rows; the item file lists items in yet another order, so that file order among
    # ties is neither dense-index order nor its reverse.
    rng = np.random.default_rng(7)
    tied = [f"i{k}" for k in rng.permutation(40)]
    rows = ["a\tfirst\t1\t100"] + [f"a\t{i}\t1\t500" for i in tied] + ["a\tlast\t1\t900"]
    rows.insert(10, "b\ti3\t1\t500")       # another user's row interleaved
    rows.insert(20, "a\tearly\t1\t50")     # an earlier row appearing late in the file
    item_ids = sorted(tied + ["first", "last", "early"])    # lexicographic != file order
    item_text = "item_id:token\n" + "".join(f"{i}\n" for i in item_ids)
    dataset = load_dataset(write_atomic(HEADER + "\n".join(rows) + "\n", item_text))
    history = [dataset.catalogue[i].item_id for i in dataset.history("a")]
    assert history == ["early", "first"] + tied + ["last"]
    assert dataset.timestamps[dataset.user_index("a")].tolist() == [50, 100] + [500] * 40 + [900]
    assert dataset.user_ids == ["a", "b"]           # order of first appearance
    indices = [dataset.catalogue.by_id(i).index for i in tied]
    assert indices != sorted(indices) and indices != sorted(indices, reverse=True)


def _raw_rows(ml100k_dir: Path) -> list[list[str]]:
    lines = (ml100k_dir / "ml-100k.inter").read_text("utf-8").split("\n")
    assert lines[0] == HEADER.rstrip("\n")
    return [line.split("\t") for line in lines[1:] if line]


def test_real_ml100k_ties_measured(ml100k_dir, ml100k):
    rows = _raw_rows(ml100k_dir)
    # Measured on the checksummed file: consecutive rows of the raw file almost never
    # share a timestamp (the file is not grouped by user) ...
    file_order_ties = sum(a[3] == b[3] for a, b in zip(rows, rows[1:]))
    assert file_order_ties == 4
    # ... but within a user's time-ordered history, about half the rows tie with the
    # previous one, so the tie-break decides most histories.
    history_ties = sum(int((np.diff(t) == 0).sum()) for t in ml100k.timestamps)
    assert history_ties == 50561
    assert 0.45 < history_ties / ml100k.n_interactions < 0.55


def test_real_ml100k_histories_are_stable_time_sort_of_file(ml100k_dir, ml100k):
    per_user: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for user, item, _rating, stamp in _raw_rows(ml100k_dir):
        per_user[user].append((float(stamp), item))
    assert set(per_user) == set(ml100k.user_ids)
    for user, rows in per_user.items():
        expected = sorted(rows, key=lambda r: r[0])        # Python's sort is stable
        got = [ml100k.catalogue[i].item_id for i in ml100k.history(user)]
        assert got == [item for _, item in expected], user
        assert ml100k.timestamps[ml100k.user_index(user)].tolist() == [t for t, _ in expected]


@pytest.mark.parametrize("user, stamp, items", [
    # Tied groups read off the raw file (items listed in file order).
    ("181", 878962623.0, ["1081", "121", "870", "742", "1085", "455", "18", "224", "598", "508"]),
    ("25", 885853415.0, ["181", "257", "25", "174", "455", "239", "265", "98", "1", "204"]),
])
def test_real_ml100k_tied_users(ml100k, user, stamp, items):
    times = ml100k.timestamps[ml100k.user_index(user)]
    positions = np.flatnonzero(times == stamp)
    assert len(positions) == len(items)
    assert np.all(np.diff(positions) == 1)        # contiguous in the history
    assert [ml100k.catalogue[i].item_id for i in ml100k.history(user)[positions]] == items


# ----------------------------------------------------------------- sessions

def test_split_sessions_gap_equal_does_not_split():
    # diffs: 10, 30, 31, 0  -> with gap 30 only the 31 splits
    sessions = split_sessions(np.array([0, 10, 40, 71, 71]), 30)
    assert [s.tolist() for s in sessions] == [[0, 1, 2], [3, 4]]


def test_split_sessions_configurable_gap():
    ts = np.array([0.0, 10.0, 40.0, 100.0])                 # diffs 10, 30, 60
    assert [s.tolist() for s in split_sessions(ts, 5)] == [[0], [1], [2], [3]]
    assert [s.tolist() for s in split_sessions(ts, 10)] == [[0, 1], [2], [3]]
    assert [s.tolist() for s in split_sessions(ts, 29.5)] == [[0, 1], [2], [3]]
    assert [s.tolist() for s in split_sessions(ts, 30)] == [[0, 1, 2], [3]]
    assert [s.tolist() for s in split_sessions(ts, 60)] == [[0, 1, 2, 3]]
    assert [s.tolist() for s in split_sessions(ts, float("inf"))] == [[0, 1, 2, 3]]


def test_split_sessions_empty_and_single():
    assert split_sessions(np.array([]), 30) == []
    single = split_sessions(np.array([123.0]), 30)
    assert len(single) == 1 and single[0].tolist() == [0]


@pytest.mark.parametrize("gap", [0, -1, -0.5, float("nan")])
def test_split_sessions_invalid_gap(gap):
    with pytest.raises(ValueError, match="positive"):
        split_sessions(np.array([0.0, 1.0]), gap)


def test_dataset_sessions(write_atomic):
    gap = DEFAULT_SESSION_GAP_SECONDS
    assert gap == 1800
    # user a: diffs 1800 (no split), 1801 (split), 0, 5000 (split) -> 3 sessions
    # user b: one interaction -> 1 session
    rows = [("a", "1", 0), ("b", "1", 7), ("a", "2", 1800), ("a", "3", 3601),
            ("a", "4", 3601), ("a", "5", 8601)]
    directory = write_atomic(HEADER + "".join(f"{u}\t{i}\t1\t{t}\n" for u, i, t in rows))
    dataset = load_dataset(directory)
    assert [s.tolist() for s in dataset.sessions("a")] == [[0, 1], [2, 3], [4]]
    assert [s.tolist() for s in dataset.sessions("b")] == [[0]]
    assert dataset.n_sessions() == 4
    assert [s.tolist() for s in dataset.sessions("a", gap_seconds=1799)] == [[0], [1], [2, 3], [4]]
    assert dataset.n_sessions(gap_seconds=1799) == 5
    assert dataset.n_sessions(gap_seconds=10_000) == 2
    with pytest.raises(KeyError, match="'zz'"):
        dataset.sessions("zz")


def test_real_ml100k_sessions_cover_histories(ml100k):
    # Independent count: one session per user plus one per gap longer than 30 minutes.
    expected = sum(1 + int((np.diff(t) > 1800).sum()) for t in ml100k.timestamps)
    assert ml100k.n_sessions() == expected
    assert ml100k.n_users < expected < ml100k.n_interactions
    for user in ml100k.user_ids[:50]:
        sessions = ml100k.sessions(user)
        assert np.concatenate(sessions).tolist() == list(range(len(ml100k.history(user))))


# ----------------------------------------------------------------- catalogue

def test_real_item_267_display_name(ml100k):
    item = ml100k.catalogue.by_id("267")
    assert item.title == "unkonwn"
    assert item.display_name == "unkonwn [#267]"
    assert item.year is None
    names = [it.display_name for it in ml100k.catalogue.items[1:]]
    assert names.count(item.display_name) == 1


def test_real_display_names_unique(ml100k):
    items = ml100k.catalogue.items[1:]
    names = [it.display_name for it in items]
    assert len(names) == 1682 and len(set(names)) == 1682
    titles: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        titles[it.title.strip().lower()].append(it)
    repeated = {t: its for t, its in titles.items() if len(its) > 1}
    assert len(repeated) == 22                    # measured on this copy
    assert len(repeated["that darn cat!"]) == 3
    for its in repeated.values():
        for it in its:
            assert it.display_name == f"{it.title.strip()} [#{it.item_id}]"
    toy = ml100k.catalogue.by_id("1")
    assert toy.display_name == "Toy Story"         # unique titles are shown as is
    assert toy.describe() == "Toy Story (1995) [Animation, Children's, Comedy]"


def test_catalogue_build_display_names():
    catalogue = Catalogue.build([
        ("1", "Sabrina", 1954, ()),
        ("2", "Sabrina", 1995, ("Comedy",)),
        ("3", " sabrina ", None, ()),
        ("4", "Heat", 1995, ("Action", "Crime")),
        ("5", "", None, ()),
        ("6", "Unknown", None, ()),
        ("7", "unkonwn", None, ()),
    ])
    assert len(catalogue) == 7
    assert catalogue[0].index == 0 and catalogue[0].display_name == "<pad>"
    shown = {it.item_id: it.display_name for it in catalogue.items[1:]}
    assert shown == {"1": "Sabrina [#1]", "2": "Sabrina [#2]", "3": "sabrina [#3]",
                     "4": "Heat", "5": "untitled [#5]", "6": "Unknown [#6]",
                     "7": "unkonwn [#7]"}
    assert [it.index for it in catalogue.items] == list(range(8))
    assert catalogue[4].title == "Heat" and catalogue[3].title == " sabrina "


def test_catalogue_requires_padding_item():
    with pytest.raises(ValueError):
        Catalogue(items=[Item(index=1, item_id="1", title="A")])
    with pytest.raises(ValueError):
        Catalogue(items=[])


def test_describe_format():
    assert Item(1, "1", "Heat", 1995, ("Action", "Crime")).describe() == \
        "Heat (1995) [Action, Crime]"
    assert Item(1, "1", "Heat (1995)", 1995, ()).describe() == "Heat (1995)"
    assert Item(1, "1", "Heat", None, ("Drama",)).describe() == "Heat [Drama]"
    assert Item(1, "1", "Heat").describe() == "Heat"


def test_by_id_and_search():
    catalogue = Catalogue.build([("10", "Toy Story", 1995, ()), ("20", "Heat", 1995, ()),
                                 ("30", "Toy Soldiers", 1991, ()), ("40", "Heat", 1972, ())])
    assert catalogue.by_id("20").index == 2
    assert catalogue.by_id(30).title == "Toy Soldiers"            # ints are accepted
    assert catalogue.has_id("40") and not catalogue.has_id("50")
    with pytest.raises(KeyError) as info:
        catalogue.by_id("999")
    assert "'999'" in str(info.value)
    with pytest.raises(KeyError):
        catalogue.by_id("")                    # the padding item has no id
    assert [it.item_id for it in catalogue.search("toy")] == ["10", "30"]
    assert [it.item_id for it in catalogue.search("  TOY s")] == ["10", "30"]
    assert [it.item_id for it in catalogue.search("toy", limit=1)] == ["10"]
    assert [it.item_id for it in catalogue.search("#40")] == ["40"]    # display name has id
    assert catalogue.search("") == [] and catalogue.search("   ") == []
    assert catalogue.search("zzz") == []


def test_real_search(ml100k):
    hits = ml100k.catalogue.search("star wars")
    assert [it.item_id for it in hits] == ["50"]
    assert [it.item_id for it in ml100k.catalogue.search("#267")] == ["267"]


# ----------------------------------------------------------------- real ml-100k counts

def test_real_ml100k_counts(ml100k):
    assert ml100k.name == "ml-100k"
    assert ml100k.n_users == 943
    assert ml100k.n_items == 1682
    assert ml100k.n_interactions == 100000
    assert min(len(h) for h in ml100k.histories) == 20
    assert all(len(h) == len(t) for h, t in zip(ml100k.histories, ml100k.timestamps))
    assert all(np.all(np.diff(t) >= 0) for t in ml100k.timestamps)
    flat = np.concatenate(ml100k.histories)
    assert flat.min() == 1 and flat.max() == 1682          # 0 is padding, never an item


# ----------------------------------------------------------------- GroupLens layout

GL_DATA = [("196", "242", "3", "881250949"), ("186", "302", "3", "891717742"),
           ("196", "51", "2", "881250949"), ("22", "377", "1", "878887116"),
           ("196", "302", "5", "881250000"), ("186", "242", "4", "891717742"),
           ("22", "51", "2", "878887000"), ("186", "51", "4", "891717742")]
GL_ITEMS = [("242", "Café Society", "24-Jan-1997", (8,)),
            ("302", "L.A. Confidential (1997)", "01-Jan-1997", (6, 10, 13, 16)),
            ("51", "Légendes d'automne (1994)", "01-Jan-1994", (8, 14, 17, 18)),
            ("377", "Heavyweights (1994)", "01-Jan-1994", (4, 5))]


def _write_grouplens(directory: Path) -> None:
    directory.mkdir(parents=True)
    (directory / "u.data").write_bytes("".join("\t".join(r) + "\n" for r in GL_DATA)
                                       .encode("latin-1"))
    (directory / "u.item").write_bytes("".join(grouplens_item(i, t, d, g) for i, t, d, g
                                               in GL_ITEMS).encode("latin-1"))
    (directory / "u.user").write_bytes(b"196|49|M|writer|55105\n186|39|F|executive|00000\n"
                                       b"22|25|M|writer|40206\n")


def test_grouplens_matches_atomic(tmp_path, write_atomic):
    gl_dir = tmp_path / "ml-gl"
    _write_grouplens(gl_dir)
    raw_item = (gl_dir / "u.item").read_bytes()
    assert b"Caf\xe9 Society" in raw_item and "é".encode() not in raw_item    # latin-1 bytes
    inter = HEADER + "".join("\t".join(r) + "\n" for r in GL_DATA)
    item = ("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
            "242\tCafé Society\t1997\tDrama\n"
            "302\tL.A. Confidential\t1997\tCrime Film-Noir Mystery Thriller\n"
            "51\tLégendes d'automne\t1994\tDrama Romance War Western\n"
            "377\tHeavyweights\t1994\tChildren's Comedy\n")
    for (_, _, _, flags), line in zip(GL_ITEMS, item.splitlines()[1:]):
        assert line.split("\t")[3] == " ".join(GROUPLENS_GENRES[g] for g in flags)
    atomic_dir = write_atomic(inter, item, name="ml-gl")
    gl = load_dataset(gl_dir)
    at = load_dataset(atomic_dir)
    assert gl.name == at.name == "ml-gl"
    assert gl.user_ids == at.user_ids == ["196", "186", "22"]
    for g_hist, a_hist in zip(gl.histories, at.histories):
        assert g_hist.tolist() == a_hist.tolist()
    for g_t, a_t in zip(gl.timestamps, at.timestamps):
        assert g_t.tolist() == a_t.tolist()
    # 196: 881250000 (302), then tie at 881250949 in file order: 242, 51
    assert [gl.catalogue[i].item_id for i in gl.history("196")] == ["302", "242", "51"]
    assert [gl.catalogue[i].item_id for i in gl.history("186")] == ["302", "242", "51"]
    for g_item, a_item in zip(gl.catalogue.items, at.catalogue.items):
        assert (g_item.item_id, g_item.title, g_item.year, g_item.genres, g_item.display_name) \
            == (a_item.item_id, a_item.title, a_item.year, a_item.genres, a_item.display_name)
    assert gl.catalogue.by_id("242").title == "Café Society"
    assert gl.catalogue.by_id("242").year == 1997          # from the release date
    assert gl.catalogue.by_id("302").title == "L.A. Confidential"
    assert gl.user_attributes["186"] == {"age": "39", "gender": "F", "occupation": "executive",
                                         "zip_code": "00000"}


def test_load_dataset_detects_layout(tmp_path, write_atomic, monkeypatch):
    from models.data import readers
    gl_dir = tmp_path / "ml-gl"
    _write_grouplens(gl_dir)
    atomic_dir = write_atomic(HEADER + GOOD)
    calls = []
    real_gl, real_at = readers.load_grouplens, readers.load_atomic
    monkeypatch.setattr(readers, "load_grouplens",
                        lambda p, e: calls.append(("grouplens", e)) or real_gl(p, e))
    monkeypatch.setattr(readers, "load_atomic",
                        lambda p, e: calls.append(("atomic", e)) or real_at(p, e))
    assert readers.load_dataset(gl_dir).n_interactions == len(GL_DATA)
    assert readers.load_dataset(atomic_dir).n_interactions == 2
    assert calls == [("grouplens", "latin-1"), ("atomic", "utf-8")]


def test_grouplens_without_item_file(tmp_path):
    directory = tmp_path / "bare"
    directory.mkdir()
    (directory / "u.data").write_text("1\t5\t3\t10\n1\t7\t3\t5\n")
    dataset = load_dataset(directory)
    assert [dataset.catalogue[i].item_id for i in dataset.history("1")] == ["7", "5"]
    assert dataset.catalogue.by_id("5").title == "5"
    assert dataset.user_attributes == {}


# ----------------------------------------------------------------- fetch

MEMBER_INTER = "recbole/dataset_example/ml-100k/ml-100k.inter"
MEMBER_ITEM = "recbole/dataset_example/ml-100k/ml-100k.item"
FAKE_CONTENT = {MEMBER_INTER: HEADER.encode() + GOOD.encode(),
                MEMBER_ITEM: b"item_id:token\tmovie_title:token_seq\n10\tA\n11\tB\n"}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def fake_wheel(tmp_path, monkeypatch) -> Path:
    """A small zip standing in for the recbole wheel, with the published checksums patched."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("recbole/__init__.py", "")
        for member, data in FAKE_CONTENT.items():
            archive.writestr(member, data)
    wheel = tmp_path / "wheels" / "recbole-1.2.1-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(buffer.getvalue())
    monkeypatch.setattr(fetch, "RECBOLE_WHEEL_SHA256", _sha(buffer.getvalue()))
    monkeypatch.setattr(fetch, "ML100K_MEMBERS",
                        {m: _sha(d) for m, d in FAKE_CONTENT.items()})
    return wheel


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def _good_copy(target: Path) -> dict[str, bytes]:
    target.mkdir(parents=True)
    files = {Path(m).name: d for m, d in FAKE_CONTENT.items()}
    for name, data in files.items():
        (target / name).write_bytes(data)
    return files


def test_extract_success(tmp_path, fake_wheel):
    target = tmp_path / "cache" / "ml-100k"
    assert fetch.extract_ml100k(fake_wheel, target) == target
    assert sorted(p.name for p in target.iterdir()) == ["ml-100k.inter", "ml-100k.item"]
    assert (target / "ml-100k.inter").read_bytes() == FAKE_CONTENT[MEMBER_INTER]
    assert fetch.is_complete(target)
    assert _leftovers(target.parent) == []
    assert load_dataset(target).n_interactions == 2


def test_extract_replaces_damaged_copy(tmp_path, fake_wheel):
    target = tmp_path / "cache" / "ml-100k"
    target.mkdir(parents=True)
    (target / "ml-100k.inter").write_bytes(b"truncated")
    (target / "stray.txt").write_bytes(b"x")
    assert not fetch.is_complete(target)
    fetch.extract_ml100k(fake_wheel, target)
    assert fetch.is_complete(target)
    assert sorted(p.name for p in target.iterdir()) == ["ml-100k.inter", "ml-100k.item"]
    assert _leftovers(target.parent) == []


def test_wheel_checksum_failure_creates_nothing(tmp_path, fake_wheel, monkeypatch):
    monkeypatch.setattr(fetch, "RECBOLE_WHEEL_SHA256", "0" * 64)
    target = tmp_path / "cache" / "ml-100k"
    with pytest.raises(ChecksumError) as info:
        fetch.extract_ml100k(fake_wheel, target)
    assert str(fake_wheel) in str(info.value) and "0" * 64 in str(info.value)
    assert not target.exists() and not target.parent.exists()


def test_wheel_with_wrong_bytes(tmp_path, fake_wheel):
    tampered = fake_wheel.with_name("tampered.whl")
    data = bytearray(fake_wheel.read_bytes())
    data[-1] ^= 0xFF
    tampered.write_bytes(bytes(data))
    target = tmp_path / "cache" / "ml-100k"
    with pytest.raises(ChecksumError):
        fetch.extract_ml100k(tampered, target)
    assert not target.exists()


def test_checksum_failure_leaves_good_copy_intact(tmp_path, fake_wheel, monkeypatch):
    target = tmp_path / "cache" / "ml-100k"
    files = _good_copy(target)
    before = snapshot(target.parent)
    # The wheel itself passes, but one member's bytes do not match.
    monkeypatch.setattr(fetch, "ML100K_MEMBERS", {MEMBER_INTER: _sha(FAKE_CONTENT[MEMBER_INTER]),
                                                  MEMBER_ITEM: "f" * 64})
    with pytest.raises(ChecksumError) as info:
        fetch.extract_ml100k(fake_wheel, target)
    assert MEMBER_ITEM in str(info.value)
    assert snapshot(target.parent) == before
    assert {p.name: p.read_bytes() for p in target.iterdir()} == files
    # And a wheel that fails its own checksum also leaves the copy alone.
    monkeypatch.setattr(fetch, "RECBOLE_WHEEL_SHA256", "0" * 64)
    with pytest.raises(ChecksumError):
        fetch.extract_ml100k(fake_wheel, target)
    assert snapshot(target.parent) == before


def test_member_checksum_failure_creates_nothing(tmp_path, fake_wheel, monkeypatch):
    monkeypatch.setattr(fetch, "ML100K_MEMBERS", {MEMBER_INTER: "e" * 64,
                                                  MEMBER_ITEM: _sha(FAKE_CONTENT[MEMBER_ITEM])})
    target = tmp_path / "cache" / "ml-100k"
    with pytest.raises(ChecksumError):
        fetch.extract_ml100k(fake_wheel, target)
    assert not target.exists()
    assert _leftovers(target.parent) == []


def test_missing_member(tmp_path, fake_wheel, monkeypatch):
    members = dict(fetch.ML100K_MEMBERS)
    members["recbole/dataset_example/ml-100k/ml-100k.user"] = "a" * 64
    monkeypatch.setattr(fetch, "ML100K_MEMBERS", members)
    target = tmp_path / "cache" / "ml-100k"
    with pytest.raises(DataError, match="ml-100k.user is missing"):
        fetch.extract_ml100k(fake_wheel, target)
    assert not target.exists() and _leftovers(target.parent) == []


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "over-good-copy"])
def test_interrupted_after_first_member(tmp_path, fake_wheel, monkeypatch, existing):
    target = tmp_path / "cache" / "ml-100k"
    files = _good_copy(target) if existing else None
    real = fetch.sha256_of
    calls = []

    def interrupted(path):
        calls.append(Path(path))
        if len(calls) == 3:                   # wheel, first member, then Ctrl-C
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(fetch, "sha256_of", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch.extract_ml100k(fake_wheel, target)
    assert len(calls) == 3
    # The staging directory did hold the first extracted file before the interrupt ...
    assert calls[1].parent.name.startswith(".ml-100k.partial-")
    # ... and it is gone now; no target appeared (or the old copy is untouched).
    assert _leftovers(target.parent) == []
    if existing:
        assert {p.name: p.read_bytes() for p in target.iterdir()} == files
    else:
        assert not target.exists()
    monkeypatch.setattr(fetch, "sha256_of", real)
    assert fetch.is_complete(target) == existing


def test_interrupted_mid_copy(tmp_path, fake_wheel, monkeypatch):
    target = tmp_path / "cache" / "ml-100k"
    real_copy = shutil.copyfileobj

    def disk_full(src, dst, *args, **kwargs):
        dst.write(src.read(5))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", disk_full)
    with pytest.raises(OSError, match="No space"):
        fetch.extract_ml100k(fake_wheel, target)
    monkeypatch.setattr(shutil, "copyfileobj", real_copy)
    assert not target.exists()
    assert _leftovers(target.parent) == []


def test_is_complete(tmp_path, fake_wheel):
    target = tmp_path / "ml-100k"
    assert not fetch.is_complete(target)               # missing directory
    _good_copy(target)
    assert fetch.is_complete(target)
    (target / "ml-100k.item").unlink()
    assert not fetch.is_complete(target)               # missing file
    (target / "ml-100k.item").write_bytes(FAKE_CONTENT[MEMBER_ITEM] + b"\n")
    assert not fetch.is_complete(target)               # wrong bytes


def test_is_complete_on_real_copy(ml100k_dir):
    # Uses the real published member checksums (nothing patched here).
    assert fetch.ML100K_MEMBERS[MEMBER_INTER].startswith("4edb74e2")
    assert fetch.is_complete(ml100k_dir)
    assert ml100k_dir.name == "ml-100k"


def test_ensure_ml100k_uses_existing_copy(tmp_path, fake_wheel, monkeypatch):
    _good_copy(tmp_path / "data" / "ml-100k")
    monkeypatch.setattr(fetch, "download_wheel",
                        lambda dest: pytest.fail("must not download a complete copy"))
    assert fetch.ensure_ml100k(tmp_path / "data") == tmp_path / "data" / "ml-100k"
    monkeypatch.setenv("REASONREC_DATA_DIR", str(tmp_path / "data"))
    assert fetch.default_data_dir() == tmp_path / "data"
    assert fetch.ensure_ml100k() == tmp_path / "data" / "ml-100k"
    monkeypatch.setenv("REASONREC_DATA_DIR", "")  # empty is unset, not the working directory
    assert fetch.default_data_dir() == Path("~/.cache/reasonrec").expanduser()


def test_ensure_ml100k_fetches_when_incomplete(tmp_path, fake_wheel, monkeypatch):
    downloads = []

    def download(dest: Path) -> Path:
        downloads.append(dest)
        return Path(shutil.copy(fake_wheel, dest / fake_wheel.name))

    monkeypatch.setattr(fetch, "download_wheel", download)
    target = tmp_path / "data" / "ml-100k"
    target.mkdir(parents=True)
    (target / "ml-100k.inter").write_bytes(b"half a file")
    assert fetch.ensure_ml100k(tmp_path / "data") == target
    assert len(downloads) == 1 and not downloads[0].exists()   # wheel dir cleaned up
    assert fetch.is_complete(target)
    assert _leftovers(target.parent) == []
