"""Shared by the report's unit and browser tests: what a report must never show, and the
``reasonrec`` CLI run in-process on the real data with the shipped graphs and runs."""

from __future__ import annotations

import html
import io
import re
import sys
from pathlib import Path

from models.data import default_data_dir

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


def report_cli_args(ml100k_dir: Path, folder: Path) -> list[str]:
    """Global options for default settings (shipped graphs and runs) on the real data, caches
    in ``folder``/data; the shared converted encoder is linked, as test_cli_fusion does."""
    embeddings = folder / "data" / "reasoning" / "embeddings"
    embeddings.mkdir(parents=True)
    for converted in (default_data_dir() / "reasoning" / "embeddings").glob("encoder-*"):
        (embeddings / converted.name).symlink_to(converted, target_is_directory=True)
    (folder / "config.toml").write_text('[train]\nprogress = false\ndevice = "cpu"\n')
    return ["--config", str(folder / "config.toml"), "--data", str(ml100k_dir),
            "--data-dir", str(folder / "data")]


def invoke(*args: str) -> tuple[int, str, str]:
    """The console entry point ``main()`` with ``args``: (exit code, stdout, stderr)."""
    from reasonrec.cli import main

    argv, stdout, stderr = sys.argv, sys.stdout, sys.stderr
    sys.argv, sys.stdout, sys.stderr = ["reasonrec", *args], io.StringIO(), io.StringIO()
    out, err = sys.stdout, sys.stderr
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv, sys.stdout, sys.stderr = argv, stdout, stderr
    return code, out.getvalue(), err.getvalue()
