"""A short, stable digest of JSON-ready values: store keys and run fingerprints."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def json_digest(values: Any) -> str:
    """The first 16 hex digits of the sha256 of ``values`` as sorted-key JSON."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode("utf-8")).hexdigest()[:16]
