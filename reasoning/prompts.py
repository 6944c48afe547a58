"""Stage prompts, loaded from ``assets/prompts/<stage>.toml``.

Each file follows LLMRG's prompt shape: a task description, one example input
and one example output, plus the input template and a version string. The
version, with a digest of the file appended, tags every KB entry made with the
prompt, so an edited prompt never reuses answers given to the old wording.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

STAGE_PROMPTS = ("intent", "verify", "diverge", "reason_join", "reason_new")
# Prompts whose options are scored by log-probability (raw text, no chat turns).
SCORED_PROMPTS = ("intent", "verify", "reason_join", "reason_new")


class PromptError(ValueError):
    """A prompt file is missing a field or does not parse."""


@dataclass(frozen=True)
class Prompt:
    """One stage prompt.

    Attributes:
        name: stage name, also the file stem.
        version: tag stored with every KB entry made from this prompt: the file's
            ``version`` plus a digest of the file.
        task: the task description (system message); may hold ``{k}``-style fields.
        example_input, example_output: the one worked example, sent as a prior turn;
            the example input may hold the same fields as the task.
        input: template of the real input; fields are filled with untrusted text,
            which ``str.format`` inserts verbatim (it never re-parses values).
        max_tokens: generation cap; answers are short by design.
    """

    name: str
    version: str
    task: str
    example_input: str
    example_output: str
    input: str
    max_tokens: int

    def head(self, task_fields: dict[str, object] | None = None) -> list[dict[str, str]]:
        """The turns every question of this stage starts with: task and example."""
        task, example = self.task, self.example_input
        if task_fields:
            task, example = task.format(**task_fields), example.format(**task_fields)
        return [{"role": "system", "content": task}, {"role": "user", "content": example},
                {"role": "assistant", "content": self.example_output}]

    def scored_text(self, **input_fields: object) -> str:
        """Raw text for multiple-choice scoring: task, the worked example, then the input.

        The example's answer and every scored option start with a space; the
        text ends where the option begins.
        """
        return f"{self.scored_head()}\n\n{self.input.format(**input_fields)}"

    def scored_head(self) -> str:
        """What every :meth:`scored_text` of this prompt starts with: the task and the worked
        example (up to the example's last word, so its tokens start every scored text's)."""
        return f"{self.task}\n\n{self.example_input}{self.example_output}"

    def messages(self, task_fields: dict[str, object] | None = None,
                 **input_fields: object) -> list[dict[str, str]]:
        """Chat messages: task, example turn, then the filled-in input.

        The example is a real user/assistant exchange: small models copy the
        answer format far more reliably from a prior turn than from prose.
        """
        return [*self.head(task_fields), {"role": "user", "content": self.input.format(**input_fields)}]


def _tagged(version: object, text: str) -> str:
    """The file's version plus a digest of its text: an edit that forgets to bump the
    version still never reuses KB answers given to the old wording."""
    return f"{version}+{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


@lru_cache(maxsize=None)
def load_prompt(name: str) -> Prompt:
    """Read and check ``assets/prompts/<name>.toml``."""
    try:
        text = resources.files("assets").joinpath("prompts", f"{name}.toml").read_text("utf-8")
    except FileNotFoundError:
        raise PromptError(f"prompt file assets/prompts/{name}.toml is missing") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PromptError(f"assets/prompts/{name}.toml: {exc}") from None
    fields = ("version", "task", "example_input", "example_output", "input", "max_tokens")
    missing = [f for f in fields if f not in data]
    if missing:
        raise PromptError(f"assets/prompts/{name}.toml lacks {', '.join(missing)}")
    return Prompt(name=name, version=_tagged(data["version"], text), task=data["task"],
                  example_input=data["example_input"], example_output=data["example_output"],
                  input=data["input"], max_tokens=int(data["max_tokens"]))


def prompt_versions() -> dict[str, str]:
    """Version of every stage prompt and of the intent list, recorded on each graph's build log."""
    versions = {name: load_prompt(name).version for name in STAGE_PROMPTS}
    versions["intents"] = load_intents().version
    return versions


@dataclass(frozen=True)
class Intent:
    label: str
    genres: tuple[str, ...]
    description: str
    dominant: bool = False   # an item with any of its genres is offered it first


@dataclass(frozen=True)
class IntentVocabulary:
    """The closed list of intents in ``assets/prompts/intents.toml``."""

    version: str
    intents: tuple[Intent, ...]

    @property
    def labels(self) -> list[str]:
        return [intent.label for intent in self.intents]

    def by_label(self, label: str) -> Intent:
        for intent in self.intents:
            if intent.label == label:
                return intent
        raise KeyError(f"unknown intent {label!r}")

    def options_for(self, genres: tuple[str, ...] | list[str], limit: int | None = None) -> list[str]:
        """The intents an item's genres support, best fit first (at most ``limit``).

        Fit is the share of the intent's genres the item has plus the share of
        the item's genres the intent covers, so a specific match ("Comedy" ->
        "a good laugh") beats a broad one; ties keep file order. A ``dominant``
        intent comes first whenever it matches: a children's comedy is "family
        fun" before it is "a good laugh". Small models
        favour the first option, so this order is the prior the LLM starts from.
        An item whose genres match no intent is offered every intent (the first ``limit``).
        """
        wanted = {g.lower() for g in genres}
        scored = []
        for position, intent in enumerate(self.intents):
            own = {g.lower() for g in intent.genres}
            shared = len(wanted & own)
            if shared:
                fit = shared / len(own) + shared / len(wanted)
                scored.append((not intent.dominant, -fit, position, intent.label))
        if not scored:
            return self.labels[:limit]
        return [entry[-1] for entry in sorted(scored)][:limit]


@lru_cache(maxsize=None)
def load_intents() -> IntentVocabulary:
    """Read and check ``assets/prompts/intents.toml``."""
    try:
        text = resources.files("assets").joinpath("prompts", "intents.toml").read_text("utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise PromptError("assets/prompts/intents.toml is missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise PromptError(f"assets/prompts/intents.toml: {exc}") from None
    try:
        intents = tuple(Intent(label=str(e["label"]), genres=tuple(e.get("genres", ())),
                               description=str(e.get("description", "")),
                               dominant=bool(e.get("dominant", False)))
                        for e in data["intent"])
        version = _tagged(data["version"], text)
    except (KeyError, TypeError) as exc:
        raise PromptError(f"assets/prompts/intents.toml: missing {exc}") from None
    if len({i.label for i in intents}) != len(intents) or not intents:
        raise PromptError("assets/prompts/intents.toml: labels must be unique and non-empty")
    return IntentVocabulary(version=version, intents=intents)
