"""Where LLM4SBR's stage-1 interests live: plain JSON per user, under the key they depend on.

One folder per :class:`InterestKey` (dataset, LLM weights, prompt version,
localizer, r, short-term length) in the data directory's
``reasoning/interests/``, one ``<user>.json`` per finished user, written
atomically (``reasoning.store.write_atomic``): a killed run loses at most the
user in flight, and a rerun skips finished users. Inputs made under another
model, prompt or encoder sit in another folder and are never read for this
key. A shipped bundle (``assets/interests/<dataset>.jsonl.gz``) holds the
key on its first line and one user per line after it.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models.data.digest import json_digest
from reasoning.store import write_atomic

STORE_VERSION = 1


class InterestStoreError(ValueError):
    """A store or bundle that cannot be read (names the file)."""


@dataclass(frozen=True)
class InterestKey:
    """Everything a stored interest depends on; a change makes a new store folder."""

    dataset: str
    model: str
    prompt: str
    localizer: str
    r: int
    short_items: int
    #: how answers are parsed into titles (``reasoning.interests.PARSER_VERSION``)
    parser: str

    def digest(self) -> str:
        return json_digest(asdict(self))


@dataclass(frozen=True)
class LocalizedInterest:
    """One inferred interest: the LLM's answer and the catalogue items it localizes to.

    Attributes:
        answer: the LLM's text as generated (untrusted).
        interest: the title parsed from it ("" when unusable: the point then reads
            a zero interest vector, and the summary counts it).
        items: ``(item_id, weight)`` of the top-r items, weights summing to 1.
    """

    answer: str
    interest: str
    items: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class PointInterests:
    """The long- and short-term interests at one window step (its prefix ``0..step``)."""

    step: int
    long: LocalizedInterest
    short: LocalizedInterest


@dataclass
class InterestCost:
    """What one user's interests cost: LLM calls, KB hits, tokens and wall seconds."""

    llm_calls: int = 0
    kb_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0


@dataclass
class UserInterests:
    """One user's interests at every built window step.

    Attributes:
        user: the dataset's user token.
        window: the window's item ids (the graph window before the test target).
        points: one per built step, ascending.
        cost: what building them cost.
    """

    user: str
    window: tuple[str, ...]
    points: list[PointInterests]
    cost: InterestCost = field(default_factory=InterestCost)

    def at(self, step: int) -> PointInterests | None:
        return next((p for p in self.points if p.step == step), None)

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "window": list(self.window),
                "points": [{"step": p.step, "long": _interest_json(p.long),
                            "short": _interest_json(p.short)} for p in self.points],
                "cost": asdict(self.cost)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UserInterests:
        return cls(user=str(data["user"]), window=tuple(str(i) for i in data["window"]),
                   points=[PointInterests(int(p["step"]), _interest(p["long"]),
                                          _interest(p["short"])) for p in data["points"]],
                   cost=InterestCost(**data.get("cost", {})))


def _interest_json(value: LocalizedInterest) -> dict[str, Any]:
    return {"answer": value.answer, "interest": value.interest,
            "items": [[item, weight] for item, weight in value.items]}


def _interest(data: dict[str, Any]) -> LocalizedInterest:
    return LocalizedInterest(str(data["answer"]), str(data["interest"]),
                             tuple((str(i), float(w)) for i, w in data["items"]))


class InterestStore:
    """The per-user JSON files of one key under ``root`` (``<data>/reasoning/interests``)."""

    def __init__(self, root: Path | str, key: InterestKey) -> None:
        self.key = key
        self.directory = Path(root) / f"{key.dataset}-{key.digest()}"

    def _path(self, user: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(user))
        return self.directory / f"user-{safe}.json"

    def claim(self) -> None:
        """Write the key next to the users (so a folder says what it holds)."""
        manifest = self.directory / "key.json"
        if not manifest.exists():
            payload = {"version": STORE_VERSION, "key": asdict(self.key)}
            write_atomic(manifest, json.dumps(payload, indent=1).encode("utf-8"))

    def save(self, interests: UserInterests) -> Path:
        self.claim()
        path = self._path(interests.user)
        write_atomic(path, json.dumps(interests.to_json(), ensure_ascii=False).encode("utf-8"))
        return path

    def load(self, user: str) -> UserInterests | None:
        path = self._path(user)
        try:
            return UserInterests.from_json(json.loads(path.read_text("utf-8")))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise InterestStoreError(f"{path}: unreadable interests ({exc}); delete the file "
                                     f"and rerun `reasonrec fusion interests`") from None


def write_bundle(path: Path, key: InterestKey, records: list[UserInterests]) -> Path:
    """The key, then one user per line, gzip-compressed (``assets/interests/``)."""
    lines = [json.dumps({"version": STORE_VERSION, "key": asdict(key)})]
    lines += [json.dumps(r.to_json(), ensure_ascii=False) for r in records]
    # mtime=0: the same interests give the same bytes.
    data = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0)
    write_atomic(Path(path), data)
    return Path(path)


def read_bundle(path: Path) -> tuple[InterestKey, dict[str, UserInterests]]:
    """A bundle's key and its users by token."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            lines = [line for line in handle if line.strip()]
        head = json.loads(lines[0])
        key = InterestKey(**head["key"])
        records = {}
        for number, line in enumerate(lines[1:], start=2):
            record = UserInterests.from_json(json.loads(line))
            records[record.user] = record
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise InterestStoreError(f"{path}: not an interests bundle ({exc})") from None
    return key, records
