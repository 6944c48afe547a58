"""Readers for the two on-disk layouts: RecBole atomic files and raw GroupLens ml-100k.

Every problem is raised as :class:`DataFormatError` naming file, line and field.
Readers only read: they never write next to the data.
"""

from __future__ import annotations

import codecs
import math
import re
from pathlib import Path

import numpy as np

from models.data.catalogue import Catalogue
from models.data.dataset import Dataset, Interactions, order_histories
from models.data.errors import DataError, DataFormatError

USER_FIELDS = ("user_id",)
ITEM_FIELDS = ("item_id",)
TIME_FIELDS = ("timestamp", "time")
TITLE_FIELDS = ("movie_title", "title", "name", "item_name")
YEAR_FIELDS = ("release_year", "year")
GENRE_FIELDS = ("class", "genre", "genres", "categories", "category")
_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")


def read_lines(path: Path, encoding: str) -> list[str]:
    """Decode a whole text file, naming the line of the first undecodable byte."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataFormatError(path, f"unknown text encoding {encoding!r}") from None
    raw = path.read_bytes()
    if not raw.strip():
        raise DataFormatError(path, "file is empty", line=1)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = len(_LINE_BREAK_BYTES.findall(raw, 0, exc.start)) + 1
        raise DataFormatError(
            path, f"cannot decode byte 0x{raw[exc.start]:02x} as {encoding}; "
            "set the dataset encoding (e.g. latin-1) if the file is not UTF-8",
            line=line) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    # Only \n, \r\n and \r end a line: str.splitlines() also splits at U+0085
    # (byte 0x85, "..." in cp1252 text read as latin-1), U+2028, \f, etc., which
    # would break a valid row in two and shift every later line number.
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _first_occurrence(path: Path, first_lines: dict[str, int], item: str, line: int,
                      field: str) -> None:
    """Record where ``item`` is defined; a second definition is an error naming both lines.

    Silently letting the last row win would rename an item with no word to the user.
    """
    first = first_lines.setdefault(item, line)
    if first != line:
        raise DataFormatError(path, f"duplicate item id {item!r} (first defined on line "
                              f"{first}, again on line {line})", line=line, field=field)


def _parse_float(path: Path, line: int, field: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise DataFormatError(path, f"expected a number, got {value!r}", line=line,
                              field=field) from None
    if not math.isfinite(number):
        raise DataFormatError(path, f"expected a finite number, got {value!r}", line=line,
                              field=field)
    return number


# ---------------------------------------------------------------- RecBole atomic files

def _atomic_table(path: Path, encoding: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Parse a RecBole atomic file: a ``name:type`` header, then tab-separated rows."""
    lines = read_lines(path, encoding)
    header = lines[0].split("\t")
    names = [h.split(":", 1)[0].strip() for h in header]
    if any(not n for n in names):
        raise DataFormatError(path, "header has an empty column name", line=1)
    rows: list[tuple[int, list[str]]] = []
    for number, text in enumerate(lines[1:], start=2):
        if not text.strip():
            continue
        fields = text.split("\t")
        if len(fields) != len(names):
            raise DataFormatError(path, f"expected {len(names)} tab-separated fields "
                                  f"({', '.join(names)}), got {len(fields)}", line=number)
        rows.append((number, fields))
    if not rows:
        raise DataFormatError(path, "file has a header but no rows", line=2)
    return names, rows


def _find_column(path: Path, names: list[str], wanted: tuple[str, ...],
                 required: bool) -> int | None:
    for candidate in wanted:
        if candidate in names:
            return names.index(candidate)
    if required:
        raise DataFormatError(path, f"missing column (header has: {', '.join(names)})",
                              line=1, field=wanted[0])
    return None


def find_atomic_files(directory: Path) -> tuple[Path, Path | None, Path | None]:
    """The ``.inter`` file of an atomic dataset directory, plus ``.item``/``.user`` if any."""
    inters = sorted(directory.glob("*.inter"))
    if not inters:
        raise DataError(f"{directory}: no .inter file (expected a RecBole atomic dataset "
                        "directory or a GroupLens directory with u.data)")
    if len(inters) > 1:
        raise DataError(f"{directory}: several .inter files ({', '.join(p.name for p in inters)});"
                        " point --data at a directory with one dataset")
    stem = inters[0].stem
    item = directory / f"{stem}.item"
    user = directory / f"{stem}.user"
    return inters[0], (item if item.exists() else None), (user if user.exists() else None)


def load_atomic(directory: Path, encoding: str = "utf-8") -> Dataset:
    """Load a RecBole atomic dataset directory (``NAME.inter`` and optional ``NAME.item``).

    Args:
        directory: folder holding ``NAME.inter`` with user, item and timestamp columns.
        encoding: text encoding of the files.
    """
    inter_path, item_path, user_path = find_atomic_files(directory)
    names, rows = _atomic_table(inter_path, encoding)
    u_col = _find_column(inter_path, names, USER_FIELDS, True)
    i_col = _find_column(inter_path, names, ITEM_FIELDS, True)
    t_col = _find_column(inter_path, names, TIME_FIELDS, True)
    users, items, lines = [], [], []
    times = np.empty(len(rows), dtype=np.float64)
    for k, (line, fields) in enumerate(rows):
        user, item = fields[u_col].strip(), fields[i_col].strip()
        if not user:
            raise DataFormatError(inter_path, "empty value", line=line, field=names[u_col])
        if not item:
            raise DataFormatError(inter_path, "empty value", line=line, field=names[i_col])
        times[k] = _parse_float(inter_path, line, names[t_col], fields[t_col].strip())
        users.append(user)
        items.append(item)
        lines.append(line)
    interactions = Interactions(users=users, items=items, timestamps=times, lines=lines)

    metadata: dict[str, tuple[str, int | None, tuple[str, ...]]] = {}
    if item_path is not None:
        metadata = _atomic_items(item_path, encoding)
    catalogue, item_index = _catalogue_for(items, metadata)
    user_ids, histories, timestamps = order_histories(interactions, item_index)
    attributes = _atomic_users(user_path, encoding) if user_path is not None else {}
    return Dataset(name=inter_path.stem, source=directory, catalogue=catalogue,
                   user_ids=user_ids, histories=histories, timestamps=timestamps,
                   user_attributes=attributes)


def _atomic_items(path: Path, encoding: str) -> dict[str, tuple[str, int | None, tuple[str, ...]]]:
    names, rows = _atomic_table(path, encoding)
    i_col = _find_column(path, names, ITEM_FIELDS, True)
    title_col = _find_column(path, names, TITLE_FIELDS, False)
    year_col = _find_column(path, names, YEAR_FIELDS, False)
    genre_col = _find_column(path, names, GENRE_FIELDS, False)
    out: dict[str, tuple[str, int | None, tuple[str, ...]]] = {}
    first_lines: dict[str, int] = {}
    for line, fields in rows:
        item = fields[i_col].strip()
        if not item:
            raise DataFormatError(path, "empty value", line=line, field=names[i_col])
        _first_occurrence(path, first_lines, item, line, names[i_col])
        title = fields[title_col].strip() if title_col is not None else item
        # Release year is optional metadata: ml-100k itself has "unkonwn" for item
        # 267, so a non-numeric year means "unknown", not a broken file.
        year = None
        if year_col is not None and fields[year_col].strip().isdigit():
            year = int(fields[year_col].strip())
        genres: tuple[str, ...] = ()
        if genre_col is not None:
            genres = tuple(g for g in fields[genre_col].split() if g)
        out[item] = (title, year, genres)
    return out


def _atomic_users(path: Path, encoding: str) -> dict[str, dict[str, str]]:
    names, rows = _atomic_table(path, encoding)
    u_col = _find_column(path, names, USER_FIELDS, True)
    return {fields[u_col].strip(): {n: f.strip() for n, f in zip(names, fields)
                                    if n != names[u_col]} for _, fields in rows}


def _catalogue_for(inter_items: list[str],
                   metadata: dict[str, tuple[str, int | None, tuple[str, ...]]]
                   ) -> tuple[Catalogue, dict[str, int]]:
    """Dense indices: items of the item file in file order, then unseen interacted items."""
    order: dict[str, None] = dict.fromkeys(metadata)
    for item in inter_items:
        order.setdefault(item)
    rows = []
    for item in order:
        title, year, genres = metadata.get(item, (item, None, ()))
        rows.append((item, title, year, genres))
    catalogue = Catalogue.build(rows)
    return catalogue, {item: k for k, item in enumerate(order, start=1)}


# ---------------------------------------------------------------- raw GroupLens ml-100k

GROUPLENS_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy",
                    "Crime", "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror",
                    "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")


def load_grouplens(directory: Path, encoding: str = "latin-1") -> Dataset:
    """Load the raw GroupLens ml-100k layout: ``u.data`` (tab) and ``u.item`` (pipe).

    GroupLens ships ``u.item`` in ISO-8859-1, hence the latin-1 default.
    """
    data_path = directory / "u.data"
    lines = read_lines(data_path, encoding)
    users, items, line_numbers, stamps = [], [], [], []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        fields = text.split("\t")
        if len(fields) != 4:
            raise DataFormatError(data_path, "expected 4 tab-separated fields (user id, "
                                  f"item id, rating, timestamp), got {len(fields)}", line=number)
        user, item = fields[0].strip(), fields[1].strip()
        if not user:
            raise DataFormatError(data_path, "empty value", line=number, field="user_id")
        if not item:
            raise DataFormatError(data_path, "empty value", line=number, field="item_id")
        stamps.append(_parse_float(data_path, number, "timestamp", fields[3].strip()))
        users.append(user)
        items.append(item)
        line_numbers.append(number)
    interactions = Interactions(users=users, items=items,
                                timestamps=np.asarray(stamps, dtype=np.float64),
                                lines=line_numbers)
    metadata: dict[str, tuple[str, int | None, tuple[str, ...]]] = {}
    item_path = directory / "u.item"
    if item_path.exists():
        metadata = _grouplens_items(item_path, encoding)
    catalogue, item_index = _catalogue_for(items, metadata)
    user_ids, histories, timestamps = order_histories(interactions, item_index)
    attributes = {}
    if (directory / "u.user").exists():
        attributes = _grouplens_users(directory / "u.user", encoding)
    return Dataset(name=directory.name or "grouplens", source=directory, catalogue=catalogue,
                   user_ids=user_ids, histories=histories, timestamps=timestamps,
                   user_attributes=attributes)


def _grouplens_items(path: Path, encoding: str) -> dict[str, tuple[str, int | None, tuple[str, ...]]]:
    out: dict[str, tuple[str, int | None, tuple[str, ...]]] = {}
    first_lines: dict[str, int] = {}
    expected = 5 + len(GROUPLENS_GENRES)
    for number, text in enumerate(read_lines(path, encoding), start=1):
        if not text.strip():
            continue
        fields = text.split("|")
        if len(fields) != expected:
            raise DataFormatError(path, f"expected {expected} '|'-separated fields, got "
                                  f"{len(fields)}", line=number)
        item, title, release = fields[0].strip(), fields[1].strip(), fields[2].strip()
        if not item:
            raise DataFormatError(path, "empty value", line=number, field="item_id")
        _first_occurrence(path, first_lines, item, number, "item_id")
        flags = fields[5:]
        if any(f.strip() not in ("0", "1") for f in flags):
            raise DataFormatError(path, "genre flags must be 0 or 1", line=number, field="genre")
        year = None
        match = _YEAR_IN_TITLE.search(title) or re.search(r"(\d{4})$", release)
        if match:
            year = int(match.group(1))
        title = _YEAR_IN_TITLE.sub("", title).strip()
        genres = tuple(g for g, f in zip(GROUPLENS_GENRES, flags) if f.strip() == "1")
        out[item] = (title, year, genres)
    return out


def _grouplens_users(path: Path, encoding: str) -> dict[str, dict[str, str]]:
    out = {}
    for number, text in enumerate(read_lines(path, encoding), start=1):
        if not text.strip():
            continue
        fields = text.split("|")
        if len(fields) != 5:
            raise DataFormatError(path, f"expected 5 '|'-separated fields, got {len(fields)}",
                                  line=number)
        out[fields[0].strip()] = {"age": fields[1], "gender": fields[2],
                                  "occupation": fields[3], "zip_code": fields[4]}
    return out


def load_dataset(path: Path, encoding: str | None = None) -> Dataset:
    """Load a dataset directory, detecting its layout (atomic ``.inter`` or GroupLens ``u.data``)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such dataset directory")
    if path.is_file():
        path = path.parent
    if (path / "u.data").exists():
        return load_grouplens(path, encoding or "latin-1")
    return load_atomic(path, encoding or "utf-8")
