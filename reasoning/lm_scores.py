"""Zero-shot LM ranking's offline input: the LLM's likelihood of each candidate title.

For one point of a user's history (the titles watched so far) and the best
base model's top-N there, the local LLM reads the prompt (``assets/prompts/
lm_rank.toml``: the papers' best, a plain comma-separated list of the recent
titles) once and scores each candidate's title as the text that follows it
(:meth:`reasoning.backend.LLMBackend.score_continuations`: the llama backend
cuts the KV cache back to the prefix for each candidate, so N candidates cost
one prefix plus N short continuations).

Scores are normalized **per token** (the mean log-probability of the title's
tokens, as lm-evaluation-harness's ``acc_norm`` family does by length): a
total log-probability would rank short titles first whatever the history.

The :class:`LMScoreStore` (SQLite in the data directory) keeps one row per
scored point under a :class:`LMScoreKey`, the digest of everything the scores
depend on (dataset, base run, N, model weights, prompt version, history
length), so a different base run, N, model or prompt is never silently
reused. Each point is one transaction: a killed run loses at most the point
in flight, and a rerun skips finished points. A shipped bundle
(``assets/lm_scores/<dataset>.jsonl.gz``) carries the sample's scores with
their key, so nothing needs LLM hours on first use.
"""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from models.data.digest import json_digest
from reasoning.prompts import load_prompt
from reasoning.store import write_atomic

if TYPE_CHECKING:
    from models.data.catalogue import Item
    from reasoning.backend import LLMBackend

PROMPT = "lm_rank"
# Trailing articles ml-100k (and MovieLens generally) moves behind the title.
_YEAR = re.compile(r"\s*\((?:19|20)\d\d\)\s*$")
_ARTICLES = ("The", "A", "An", "Les", "La", "Le", "Il", "Das", "Die", "El")


class Normalization(str, Enum):
    """How a candidate's total log-probability becomes its score."""

    PER_TOKEN = "per-token"   # mean over the title's tokens (the default; length-fair)
    TOTAL = "total"           # the plain sum (favours short titles)


def normalize(logprobs: Sequence[float], lengths: Sequence[int],
              how: Normalization = Normalization.PER_TOKEN) -> list[float]:
    """Scores of the continuations: total log-probability, or divided by its token count."""
    if len(logprobs) != len(lengths):
        raise ValueError(f"{len(logprobs)} log-probabilities for {len(lengths)} lengths")
    if how is Normalization.TOTAL:
        return [float(v) for v in logprobs]
    if any(n < 1 for n in lengths):
        raise ValueError("every continuation has at least one token")
    return [float(v) / int(n) for v, n in zip(logprobs, lengths)]


def natural_title(item: Item) -> str:
    """``Fifth Element, The`` -> ``The Fifth Element``: titles as people write them.

    Without the year: SmolLM2's tokenizer spells a year as six tokens
    (`` (``, four digits, ``)``), which would double each candidate's
    continuation (the cost of LM ranking) and dilute its per-token score with
    digits the history says little about.
    """
    title = _YEAR.sub("", item.title).strip()
    for article in _ARTICLES:
        suffix = f", {article}"
        if title.endswith(suffix):
            title = f"{article} {title[: -len(suffix)]}"
            break
    return title


def prompt_version() -> str:
    """The LM-ranking prompt's version (with its file digest)."""
    return load_prompt(PROMPT).version


def prompt_text(history: Sequence[Item]) -> str:
    """The prefix every candidate of a point is scored after (recent titles, oldest first)."""
    return load_prompt(PROMPT).input.format(titles=", ".join(natural_title(i) for i in history))


def continuation(item: Item) -> str:
    """A candidate as the text that follows the prefix."""
    return " " + natural_title(item)


@dataclass(frozen=True)
class LMScoreKey:
    """Everything a point's scores depend on; its :attr:`digest` keys the store.

    Attributes:
        dataset: the dataset's name.
        base_run: the base run whose top-N is scored (``model/run-id``).
        top_n: candidates per point.
        model: the LLM's weights (``sha256:...``).
        prompt: the prompt's version (with its file digest).
        history: recent titles in the prompt.
    """

    dataset: str
    base_run: str
    top_n: int
    model: str
    prompt: str
    history: int

    @property
    def digest(self) -> str:
        return json_digest(asdict(self))


@dataclass(frozen=True)
class PointScores:
    """One scored point.

    Attributes:
        user: the user's token.
        step: the window step (``UserGraph.points``).
        candidates: the base model's top-N item indices, best first.
        logprobs: each candidate's total log-probability after the prompt.
        lengths: each candidate's token count.
        tokens: tokens the LLM read (prefix plus continuations).
        calls: LLM calls (one scoring call per point here).
        seconds: wall time of the LLM work.
    """

    user: str
    step: int
    candidates: tuple[int, ...]
    logprobs: tuple[float, ...]
    lengths: tuple[int, ...]
    tokens: int
    calls: int
    seconds: float

    def scores(self, how: Normalization = Normalization.PER_TOKEN) -> list[float]:
        return normalize(self.logprobs, self.lengths, how)

    def to_json(self) -> dict:
        return {"user": self.user, "step": self.step, "candidates": list(self.candidates),
                "logprobs": list(self.logprobs), "lengths": list(self.lengths),
                "tokens": self.tokens, "calls": self.calls, "seconds": self.seconds}

    @classmethod
    def from_json(cls, row: dict) -> PointScores:
        return cls(str(row["user"]), int(row["step"]), tuple(int(i) for i in row["candidates"]),
                   tuple(float(v) for v in row["logprobs"]),
                   tuple(int(n) for n in row["lengths"]), int(row["tokens"]),
                   int(row["calls"]), float(row["seconds"]))


def score_point(backend: LLMBackend, user: str, step: int, history: Sequence[Item],
                candidates: Sequence[Item]) -> PointScores:
    """Score ``candidates`` after the prompt of ``history`` (one prefix, N continuations).

    Raises:
        reasoning.backend.LLMError: the backend failed (nothing is returned to store).
    """
    result = backend.score_continuations(prompt_text(history),
                                         [continuation(c) for c in candidates])
    return PointScores(user, step, tuple(c.index for c in candidates), tuple(result.logprobs),
                       tuple(result.lengths), result.tokens_read, 1, result.seconds)


class LMScoreStore:
    """Scored points in SQLite, by key digest, user and step (see the module docstring).

    Args:
        path: the database file (created with its folder).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS keys (digest TEXT PRIMARY KEY, "
                             "key TEXT NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS points (digest TEXT NOT NULL, "
                             "user TEXT NOT NULL, step INTEGER NOT NULL, row TEXT NOT NULL, "
                             "PRIMARY KEY (digest, user, step))")

    def claim(self, key: LMScoreKey) -> None:
        """Record ``key`` (so ``stats`` can say what a digest stands for)."""
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO keys VALUES (?, ?)",
                             (key.digest, json.dumps(asdict(key), sort_keys=True)))

    def done(self, key: LMScoreKey, user: str) -> set[int]:
        """The steps of ``user`` already scored under ``key``."""
        rows = self._db.execute("SELECT step FROM points WHERE digest = ? AND user = ?",
                                (key.digest, str(user)))
        return {int(step) for (step,) in rows}

    def put(self, key: LMScoreKey, point: PointScores) -> None:
        """Store one point in its own transaction (a crash keeps every earlier point)."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?)",
                             (key.digest, point.user, point.step, json.dumps(point.to_json())))

    def points(self, key: LMScoreKey, users: Iterable[str] | None = None) -> list[PointScores]:
        """Every point under ``key`` (of ``users`` only, when given), by user and step."""
        rows = self._db.execute("SELECT row FROM points WHERE digest = ? ORDER BY user, step",
                                (key.digest,))
        wanted = None if users is None else {str(u) for u in users}
        out = [PointScores.from_json(json.loads(r)) for (r,) in rows]
        return [p for p in out if wanted is None or p.user in wanted]

    def close(self) -> None:
        self._db.close()


def write_bundle(path: Path, key: LMScoreKey, points: Sequence[PointScores]) -> Path:
    """Write ``points`` as a gzipped JSON-lines bundle: the key first, then one point a line.

    Log-probabilities are rounded to 1e-4 nats (per token, 1e-5 or finer): full
    float precision would triple the shipped file for differences no ranking sees.
    """
    rows = [{**p.to_json(), "logprobs": [round(v, 4) for v in p.logprobs],
             "seconds": round(p.seconds, 3)} for p in points]
    lines = [json.dumps({"key": asdict(key)})] + [json.dumps(r) for r in rows]
    write_atomic(Path(path), gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0))
    return Path(path)


def read_bundle(path: Path) -> tuple[LMScoreKey, list[PointScores]]:
    """A bundle's key and points.

    Raises:
        ValueError: the file is not such a bundle (naming the file and line).
    """
    path = Path(path)
    try:
        lines = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a gzipped LM-score bundle ({exc})") from None
    try:
        key = LMScoreKey(**json.loads(lines[0])["key"])
    except (IndexError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}, line 1: no LM-score key ({exc})") from None
    points = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            points.append(PointScores.from_json(json.loads(line)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}, line {number}: not a scored point ({exc})") from None
    return key, points

