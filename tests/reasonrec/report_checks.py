"""What a stakeholder report must never show, shared by the report's unit and browser tests."""

from __future__ import annotations

import html
import re

# Internal words: graph node ids (s3, c994, dc4.2, c4>dc4.2>c994), variable names, hashes,
# run folders, file paths, raw JSON, internal model and variant names.
JARGON = {
    "node id": re.compile(r"\b(?:dc\d+\.\d+|[sc]\d+)\b"),
    "path id": re.compile(r"\w+>\w+"),
    "variable name": re.compile(r"\b(?:l_tru|E_ori|E_div|E_base|k_intents|r_items)\b"),
    "hash": re.compile(r"sha256|\b[0-9a-f]{16,}\b"),
    "run folder": re.compile(r"\d{8}-\d{6}-[0-9a-f]{4}|fusion-llmrg|\bruns/"),
    "file path": re.compile(r"(?:^|[\s(])/(?:tmp|root|home|work|usr)/|\.venv|\.gguf|\.json\b"),
    "raw JSON": re.compile(r"[{\[]\s*\""),
    "internal name": re.compile(r"\b(?:srgnn|llmrg|gru4rec|sasrec|nearest_divergent|"
                                r"chain_end|no_effect|rejected_chain)\b"),
}
REMOTE = re.compile(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""",
                    re.IGNORECASE)
HANDLER = re.compile(r"<[^>]+\son\w+\s*=", re.IGNORECASE)


def visible_text(document: str) -> str:
    """The text a reader can see or hover (body text and SVG tooltips), tags and CSS removed."""
    body = document.split("<body>", 1)[1]
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def jargon_found(text: str) -> dict[str, list[str]]:
    """Each jargon kind with the strings that matched it (empty when the text is clean)."""
    found = {name: pattern.findall(text) for name, pattern in JARGON.items()}
    return {name: hits for name, hits in found.items() if hits}
