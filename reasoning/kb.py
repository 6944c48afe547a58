"""The knowledge base: reusable LLM results in SQLite (LLMRG's self-improvement).

Entries are keyed by ``(kind, model, prompt_version, key)``:

* ``kind`` names the question:

  - ``intent``: a movie's intent (item-level: shows only the movie);
  - ``chain``: which chain a movie continues (structural: shows the viewer's
    coarse attributes, the chains' intents and the movie's intent, no title);
  - ``diverge``: free-text next intents after a chain's last movie (item-level);
  - ``verify``: one masked-item question (the mask's nearest chain neighbours
    and its options);
  - ``verified_chain``: a whole chain's verification score;
  - ``localize``: an intent text's ranked catalogue items (no LLM call; its
    "prompt version" is the localizer's identity: encoder, catalogue, weights).

* ``model`` is the backend's model identity (the GGUF's sha256), and
  ``prompt_version`` the version string of the prompt file, so a new model or an
  edited prompt never reuses old answers.
* ``key`` is the sha256 of the canonical JSON of everything the prompt shows.
  Questions were designed to show as little as the decision needs: item-level
  and structural questions recur across sessions far more often than ones
  about item pairs or whole sessions.

Every write is one SQLite transaction in WAL mode: a process killed at any
point leaves the last committed state, never a half-written entry. Several
threads (one connection behind a lock) and several processes may write the same
file: a writer that finds the database locked waits (SQLite's busy handler,
``busy_timeout_s`` per try) and retries the whole transaction with backoff until
``busy_retry_s`` have passed, then raises :class:`KnowledgeBaseBusy`. Hit and
miss counters are batched in memory and written in their own transaction at
the end of each graph (``flush_counters``) and on close; a kill loses at most
the counts of the graph being built.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, TypeVar

_T = TypeVar("_T")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    key TEXT NOT NULL,
    key_json TEXT NOT NULL,
    value_json TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (kind, model, prompt_version, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    kind TEXT PRIMARY KEY,
    hits INTEGER NOT NULL DEFAULT 0,
    misses INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS counter_log (
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    hits INTEGER NOT NULL,
    misses INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


_ENTRY_COLUMNS = "kind, model, prompt_version, key_json, value_json, created"


def _entry(row: tuple[Any, ...]) -> dict[str, Any]:
    """One ``entries`` row (``_ENTRY_COLUMNS``) as the question shown and the answer stored."""
    kind, model, version, question, answer, created = row
    return {"kind": kind, "model": model, "prompt_version": version,
            "question": json.loads(question), "answer": json.loads(answer), "created": created}


class KnowledgeBaseError(Exception):
    """The KB file cannot be opened or has an unknown schema."""


class KnowledgeBaseBusy(KnowledgeBaseError):
    """Another writer held the KB locked for longer than the retry budget."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED as Python's sqlite3 words them."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def canonical_key(fields: dict[str, Any]) -> tuple[str, str]:
    """``(sha256 hex, canonical JSON)`` of the fields a prompt shows."""
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), text


class KnowledgeBase:
    """SQLite-backed store of reusable LLM answers; thread-safe.

    Args:
        path: the SQLite file (created with its folder).
        enabled: when False, lookups always miss and nothing is stored (the
            bench's "no reuse" run); counters still count the misses.
        busy_timeout_s: how long one try waits for another writer's lock.
        busy_retry_s: how long a transaction keeps retrying in all before
            :class:`KnowledgeBaseBusy`.
    """

    def __init__(self, path: Path | str, enabled: bool = True, busy_timeout_s: float = 5.0,
                 busy_retry_s: float = 60.0) -> None:
        self.path = Path(path).expanduser()
        self.enabled = enabled
        self.busy_retry_s = busy_retry_s
        self._lock = threading.Lock()
        self._pending = Counter()   # (kind, "hits"|"misses") not yet written to counters
        self.session_hits = Counter()
        self.session_misses = Counter()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                         check_same_thread=False)
            self._retrying(lambda: self._conn.execute("PRAGMA journal_mode=WAL"))
            # NORMAL in WAL mode: a killed process loses no committed transaction
            # (only a power loss may drop the last few).
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._retrying(lambda: self._conn.executescript(_SCHEMA))
            self._retrying(self._check_schema)
        except sqlite3.DatabaseError as exc:
            raise KnowledgeBaseError(f"knowledge base {self.path}: {exc}") from None

    def _check_schema(self) -> None:
        row = self._conn.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
        if row is None:
            self._conn.execute("INSERT OR IGNORE INTO meta(name, value) VALUES('schema_version', ?)",
                               (str(SCHEMA_VERSION),))
        elif int(row[0]) != SCHEMA_VERSION:
            raise KnowledgeBaseError(f"knowledge base {self.path} has schema {row[0]}, this version "
                                     f"reads {SCHEMA_VERSION}; run `reasonrec kb clear`")

    def _retrying(self, action: Callable[[], _T]) -> _T:
        """Run ``action``, retrying while the database is locked, for ``busy_retry_s`` at most."""
        deadline = time.monotonic() + self.busy_retry_s
        delay = 0.01
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise KnowledgeBaseBusy(
                        f"knowledge base {self.path} stayed locked by another writer for "
                        f"{self.busy_retry_s:g} s ({exc}); is another reasonrec process "
                        "holding it?") from None
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 1.0)

    def _write(self, statements: Callable[[sqlite3.Connection], _T]) -> _T:
        """One short write transaction (BEGIN IMMEDIATE ... COMMIT), retried whole when busy.

        The caller holds ``self._lock``.
        """
        def attempt() -> _T:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = statements(self._conn)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            return result
        return self._retrying(attempt)

    # --------------------------------------------------------------- lookups
    def get(self, kind: str, model: str, prompt_version: str, fields: dict[str, Any]) -> Any | None:
        """The stored value, or ``None``; counts a hit or a miss."""
        value = None
        if self.enabled:
            key, _ = canonical_key(fields)
            with self._lock:
                row = self._retrying(lambda: self._conn.execute(
                    "SELECT value_json FROM entries WHERE kind=? AND model=? AND prompt_version=? "
                    "AND key=?", (kind, model, prompt_version, key)).fetchone())
            value = json.loads(row[0]) if row else None
        with self._lock:
            outcome = "hits" if value is not None else "misses"
            self._pending[(kind, outcome)] += 1
            (self.session_hits if value is not None else self.session_misses)[kind] += 1
        return value

    def put(self, kind: str, model: str, prompt_version: str, fields: dict[str, Any],
            value: Any) -> None:
        """Store (or replace) one entry in its own transaction."""
        if not self.enabled:
            return
        key, key_json = canonical_key(fields)
        payload = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        row = (kind, model, prompt_version, key, key_json, payload, time.time())
        with self._lock:
            self._write(lambda conn: conn.execute(
                "INSERT OR REPLACE INTO entries(kind, model, prompt_version, key, key_json, "
                "value_json, created) VALUES(?,?,?,?,?,?,?)", row))

    def flush_counters(self) -> None:
        """Add the hits and misses counted since the last flush, in one transaction."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
            if not pending:
                return
            now = time.time()

            def add(conn: sqlite3.Connection) -> None:
                for (kind, outcome), count in pending.items():
                    conn.execute("INSERT OR IGNORE INTO counters(kind) VALUES(?)", (kind,))
                    conn.execute(f"UPDATE counters SET {outcome} = {outcome} + ? WHERE kind=?",
                                 (count, kind))
                # One row per kind and flush (about one per graph): hit rates over time.
                for kind in sorted({kind for kind, _ in pending}):
                    conn.execute("INSERT INTO counter_log(time, kind, hits, misses) VALUES(?,?,?,?)",
                                 (now, kind, pending[(kind, "hits")], pending[(kind, "misses")]))
            try:
                self._write(add)
            except BaseException:
                self._pending.update(pending)   # counted again at the next flush, not lost
                raise

    # ------------------------------------------------------------ reporting
    def stats(self) -> dict[str, Any]:
        """Entries, hits and misses per kind; models and prompt versions present; file size."""
        self.flush_counters()
        with self._lock:
            entries = dict(self._conn.execute(
                "SELECT kind, COUNT(*) FROM entries GROUP BY kind").fetchall())
            counters = {k: (h, m) for k, h, m in self._conn.execute(
                "SELECT kind, hits, misses FROM counters").fetchall()}
            models = [m for (m,) in self._conn.execute("SELECT DISTINCT model FROM entries")]
            versions = sorted({v for (v,) in self._conn.execute(
                "SELECT DISTINCT prompt_version FROM entries")})
        kinds = sorted(set(entries) | set(counters))
        per_kind = {}
        for kind in kinds:
            hits, misses = counters.get(kind, (0, 0))
            per_kind[kind] = {"entries": entries.get(kind, 0), "hits": hits, "misses": misses,
                              "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None}
        total_hits = sum(v["hits"] for v in per_kind.values())
        total_lookups = total_hits + sum(v["misses"] for v in per_kind.values())
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return {"path": str(self.path), "schema_version": SCHEMA_VERSION,
                "entries": sum(entries.values()), "hits": total_hits,
                "misses": total_lookups - total_hits,
                "hit_rate": round(total_hits / total_lookups, 4) if total_lookups else None,
                "kinds": per_kind, "models": models, "prompt_versions": versions, "bytes": size}

    def entries(self, kind: str | None = None, search: str = "", limit: int = 100,
                offset: int = 0) -> list[dict[str, Any]]:
        """Stored entries, newest first: what each question showed and what was stored.

        Args:
            kind: only this kind (``intent``, ``chain``, ...); ``None`` for all.
            search: case-insensitive text that the question or the answer contains.
            limit, offset: one page of results.
        """
        sql = (f"SELECT {_ENTRY_COLUMNS} FROM entries "
               "WHERE (? IS NULL OR kind = ?) AND (? = '' OR key_json LIKE ? OR value_json LIKE ?) "
               "ORDER BY created DESC, key LIMIT ? OFFSET ?")
        pattern = f"%{search}%"
        with self._lock:
            rows = self._conn.execute(sql, (kind, kind, search, pattern, pattern,
                                            int(limit), int(offset))).fetchall()
        return [_entry(row) for row in rows]

    def history(self) -> list[dict[str, Any]]:
        """Hits and misses per kind and flush (about one per built graph), oldest first."""
        self.flush_counters()
        with self._lock:
            rows = self._conn.execute(
                "SELECT time, kind, hits, misses FROM counter_log ORDER BY time, kind").fetchall()
        return [{"time": t, "kind": k, "hits": h, "misses": m} for t, k, h, m in rows]

    def export_jsonl(self) -> str:
        """Every entry as JSON lines (one object per line, oldest first)."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY created, kind, key").fetchall()
        return "".join(json.dumps(_entry(row), ensure_ascii=False) + "\n" for row in rows)

    def clear(self) -> int:
        """Delete every entry and counter; returns how many entries were removed."""
        with self._lock:
            self._pending.clear()

            def delete(conn: sqlite3.Connection) -> int:
                removed = conn.execute("DELETE FROM entries").rowcount
                conn.execute("DELETE FROM counters")
                conn.execute("DELETE FROM counter_log")
                return int(removed)
            removed = self._write(delete)
            self._retrying(lambda: self._conn.execute("VACUUM"))
        return int(removed)

    def close(self) -> None:
        try:
            self.flush_counters()
        finally:
            with self._lock:
                self._conn.close()
