"""A short, stable digest of JSON-ready values: store keys and run fingerprints."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def json_digest(values: Any, *, compact: bool = False) -> str:
    """The first 16 hex digits of the sha256 of ``values`` as sorted-key JSON.

    ``compact`` drops the spaces after separators: the graph builder's settings key
    was always made so, and stored graphs keep their keys only if it still is.
    """
    text = json.dumps(values, sort_keys=True, separators=(",", ":") if compact else None)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
