"""The one JSON digest helper keeps the keys already stored under it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from models.data.digest import json_digest

BUNDLE = Path(__file__).resolve().parents[2] / "assets" / "graphs" / "ml-100k.jsonl.gz"


def test_compact_digest_reproduces_the_shipped_graphs_settings_keys() -> None:
    # The builder keys its settings with the compact form; a different key would make
    # the graph store rebuild every stored graph.
    with gzip.open(BUNDLE, "rt", encoding="utf-8") as lines:
        next(lines)   # the bundle header
        settings = [json.loads(line)["build_log"]["settings"] for line, _ in zip(lines, range(5))]
    for values in settings:
        key = values.pop("key")
        assert json_digest(values, compact=True) == key
        assert json_digest(values) != key   # the spaced form is another key
