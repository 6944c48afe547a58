"""A tiny RecBole atomic dataset whose titles and genres try to inject HTML and script.

Used by the AppTest flows and by the browser XSS test: every payload sets
``window.__xss`` if it ever runs.
"""

from __future__ import annotations

from pathlib import Path

SCRIPT_TITLE = "<script>window.__xss=1</script>"
IMG_TITLE = '<img src=x onerror="window.__xss=1">'
CLOSE_SCRIPT_TITLE = "</script><script>window.__xss=1</script>"
LINK_TITLE = '<a href="javascript:window.__xss=1">click me</a>'
HOSTILE_GENRE = "<svg/onload=window.__xss=1>"
HOSTILE_TITLES = (SCRIPT_TITLE, IMG_TITLE, CLOSE_SCRIPT_TITLE, LINK_TITLE)
HOSTILE_USER = "u1"

ITEMS = [
    ("1", SCRIPT_TITLE, "1999", "Drama"),
    ("2", IMG_TITLE, "2000", "Comedy"),
    ("3", "Plain & \"quoted\" 'title'", "2001", "Action"),
    ("4", CLOSE_SCRIPT_TITLE, "2002", "Thriller"),
    ("5", LINK_TITLE, "2003", f"{HOSTILE_GENRE} Horror"),
    ("6", "Ordinary Movie", "2004", "Romance"),
    ("7", "Unwatched <b>bold</b> & co", "2005", "Drama"),
]


def write_hostile_dataset(directory: Path) -> Path:
    """Write ``hostile.inter``/``hostile.item`` into ``directory`` and return it.

    User ``u1`` watched the items in the order 6, 1, 2, 3, 4, 5, 6... so that with
    the default point (the last item) the window holds every hostile title and
    the true next item is hostile too; users u2 and u3 give the popularity model
    something to count, and item 7 is left for u1 to be recommended.
    """
    directory.mkdir(parents=True, exist_ok=True)
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    base = 880_000_000
    for step, item in enumerate(["6", "1", "2", "3", "4", "5"]):
        inter.append(f"{HOSTILE_USER}\t{item}\t4\t{base + 60 * step}")
    inter.append(f"{HOSTILE_USER}\t2\t5\t{base + 7200}")  # a second session; next = hostile
    for user, items in (("u2", ["1", "3", "6", "2", "7"]), ("u3", ["4", "5", "6", "7", "1", "3"])):
        for step, item in enumerate(items):
            inter.append(f"{user}\t{item}\t3\t{base + 100_000 + 60 * step}")
    item_lines = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    item_lines += ["\t".join(row) for row in ITEMS]
    (directory / "hostile.inter").write_text("\n".join(inter) + "\n", encoding="utf-8")
    (directory / "hostile.item").write_text("\n".join(item_lines) + "\n", encoding="utf-8")
    return directory


def write_config(path: Path, data_path: Path, data_dir: Path, extra: str = "") -> Path:
    """A studio TOML pointing at ``data_path`` with caches under ``data_dir``."""
    path.write_text(f'[data]\npath = "{data_path}"\ndata_dir = "{data_dir}"\n{extra}',
                    encoding="utf-8")
    return path
