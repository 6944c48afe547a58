"""Asking the LLM one structured question: KB first, then the model, checked, retried.

Every stage goes through :meth:`Asker.ask`:

1. look for a reusable answer in the knowledge base (a hit costs no LLM call);
2. ask the backend with the JSON schema;
3. reject a truncated answer (``finish_reason == "length"``), malformed JSON,
   or an answer pydantic refuses (e.g. a value outside the enum);
4. retry (``config.retries`` times) at a warmer temperature, so the retry can
   differ from a greedy answer that failed; a truncated answer also gets half
   as many tokens again (a 135M model that runs out of tokens is usually
   repeating itself, so more tokens alone rarely help);
5. give up: return ``None`` and record the piece and every reason on the
   build log. Nothing here raises for a bad answer.

A failing *backend* is not a bad answer: :class:`reasoning.backend.BackendFailure`
(unreachable server, 5xx, timeout, crash, no scoring) is booked as a call and
re-raised, so the whole session's build fails and nothing is stored for it
(a fallback would stand in for data the LLM never gave).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from reasoning.backend import (BackendFailure, ContinuationScores, LLMBackend, LLMError, LLMRequest,
                               LLMResponse)
from reasoning.config import ReasoningConfig
from reasoning.graph import BuildLog, DroppedPiece
from reasoning.kb import KnowledgeBase
from reasoning.prompts import Prompt
from reasoning.schemas import answer_prefix

RETRY_TEMPERATURE = 0.7
StageTokenCallback = Callable[[str, str], None]   # (stage, text piece)


@dataclass
class Question:
    """One structured question.

    Attributes:
        stage: the build-log stage it belongs to (chain, verify, diverge).
        kind: the KB kind (see :mod:`reasoning.kb`).
        prompt: the stage prompt (its version tags the KB entry).
        messages: chat messages from ``prompt.messages``.
        schema: JSON schema of the answer.
        answer_model: pydantic model that validates the parsed answer.
        context: validation context (allowed enum values, limits).
        key_fields: everything the prompt shows that varies; the KB key.
        piece: readable name of what is asked, for the build log.
        watch: option labels whose log-probabilities the answer needs.
        finish: turns the validated answer and the response into the stored value.
        fallback: what the caller does when the question fails (for the build log).
    """

    stage: str
    kind: str
    prompt: Prompt
    messages: list[dict[str, str]]
    schema: dict[str, Any]
    answer_model: type[BaseModel]
    context: dict[str, Any]
    key_fields: dict[str, Any]
    piece: str
    watch: tuple[str, ...] = ()
    finish: Callable[[dict[str, Any], LLMResponse], dict[str, Any]] | None = None
    fallback: str = ""


class Asker:
    """Runs questions for one graph build and books them on its :class:`BuildLog`."""

    def __init__(self, backend: LLMBackend, kb: KnowledgeBase | None, config: ReasoningConfig,
                 log: BuildLog, on_token: StageTokenCallback | None = None) -> None:
        self.backend = backend
        self.kb = kb
        self.config = config
        self.log = log
        self.on_token = on_token
        self._lock = threading.Lock()   # the log is shared when stages ask in parallel
        self._model = backend.model_identity

    def kb_get(self, stage: str, kind: str, version: str, fields: dict[str, Any]) -> Any | None:
        """A stored value (counted as a KB hit or miss on the log)."""
        if self.kb is None:
            return None
        value = self.kb.get(kind, self._model, version, fields)
        with self._lock:
            if value is not None:
                self.log.kb_hits += 1
                self.log.stage(stage).kb_hits += 1
            else:
                self.log.kb_misses += 1
                self.log.stage(stage).kb_misses += 1
        return value

    def model_key(self, version: str) -> str:
        """The model and prompt version, for caches that outlive one build."""
        return f"{self._model}|{version}"

    def kb_put(self, kind: str, version: str, fields: dict[str, Any], value: Any) -> None:
        if self.kb is not None:
            self.kb.put(kind, self._model, version, fields, value)

    def drop(self, stage: str, piece: str, reason: str, fallback: str = "") -> None:
        with self._lock:
            self.log.dropped.append(DroppedPiece(stage=stage, piece=piece, reason=reason,
                                                 fallback=fallback))

    def ask(self, question: Question) -> dict[str, Any] | None:
        """The validated answer (as a dict), from the KB or the LLM; ``None`` when it failed.

        Raises:
            BackendFailure: the backend failed (not the answer): the build fails.
        """
        stored = self.kb_get(question.stage, question.kind, question.prompt.version,
                             question.key_fields)
        if stored is not None:
            return stored
        failures: list[str] = []
        max_tokens = question.prompt.max_tokens
        temperature = self.config.temperature
        for attempt in range(1 + self.config.retries):
            if attempt:
                with self._lock:
                    self.log.retries += 1
            response, failure = self._call(question, max_tokens, temperature, attempt)
            if failure is None:
                value, failure = self._validate(question, response)
                if failure is None:
                    self.kb_put(question.kind, question.prompt.version, question.key_fields, value)
                    return value
            failures.append(failure)
            if failure.startswith("truncated"):
                max_tokens += max_tokens // 2
            temperature = max(temperature, RETRY_TEMPERATURE)
        self.drop(question.stage, question.piece,
                  "; ".join(f"attempt {i + 1}: {f}" for i, f in enumerate(failures)),
                  question.fallback)
        return None

    def score(self, stage: str, piece: str, prefix: str, continuations: list[str],
              fallback: str = "") -> ContinuationScores | None:
        """Log-probabilities of ``continuations`` after ``prefix`` (multiple-choice scoring).

        Booked on the log as one LLM call; ``None`` when the backend refused this
        request (the piece is dropped with the reason). Scores are not validated
        answers, so there is nothing to retry.

        Raises:
            BackendFailure: the backend failed or cannot score (fails the build).
        """
        if self.on_token is not None:
            # Scoring streams no text; an empty piece still tells listeners the stage began.
            self.on_token(stage, "")
        try:
            scored = self.backend.score_continuations(prefix, continuations)
        except BackendFailure:
            self._book(stage, None)
            raise
        except LLMError as exc:
            self._book(stage, None)
            self.drop(stage, piece, f"scoring failed: {exc}", fallback)
            return None
        with self._lock:
            self.log.llm_calls += 1
            entry = self.log.stage(stage)
            entry.llm_calls += 1
            self.log.tokens_in += scored.tokens_read
            self.log.llm_seconds += scored.seconds
            entry.tokens_in += scored.tokens_read
        return scored

    def choose(self, stage: str, kind: str, version: str, fields: dict[str, Any], piece: str,
               prefix: str, options: list[str], fallback: str) -> str:
        """The option the LLM finds likeliest after ``prefix`` (mean log-probability per token,
        ties to the earlier option), stored in the KB as ``{kind: option}`` under ``fields``.

        The first option when scoring fails (the piece is dropped with ``fallback``).
        """
        stored = self.kb_get(stage, kind, version, fields)
        if stored is not None:
            return str(stored[kind])
        scored = self.score(stage, piece, prefix, [" " + option for option in options],
                            fallback=fallback)
        if scored is None:
            return options[0]
        per_token = [lp / max(1, n) for lp, n in zip(scored.logprobs, scored.lengths)]
        choice = options[max(range(len(options)), key=lambda i: (per_token[i], -i))]
        self.kb_put(kind, version, fields, {kind: choice})
        return choice

    def _call(self, question: Question, max_tokens: int, temperature: float,
              attempt: int) -> tuple[LLMResponse | None, str | None]:
        request = LLMRequest(messages=question.messages, schema=question.schema, max_tokens=max_tokens,
                             temperature=temperature, seed=self.config.seed + attempt,
                             logprobs=bool(question.watch), watch=question.watch,
                             prefill=answer_prefix(question.schema))
        callback = None
        if self.on_token is not None:
            stage, sink = question.stage, self.on_token
            callback = lambda piece: sink(stage, piece)  # noqa: E731
        try:
            response = self.backend.complete(request, on_token=callback)
        except BackendFailure:
            self._book(question.stage, None)
            raise
        except LLMError as exc:
            self._book(question.stage, None)
            return None, f"backend error: {exc}"
        self._book(question.stage, response)
        if response.finish_reason == "length":
            return None, f"truncated at {max_tokens} tokens"
        return response, None

    def _book(self, stage: str, response: LLMResponse | None) -> None:
        with self._lock:
            self.log.llm_calls += 1
            entry = self.log.stage(stage)
            entry.llm_calls += 1
            if response is not None:
                self.log.tokens_in += response.tokens_in
                self.log.tokens_out += response.tokens_out
                self.log.llm_seconds += response.seconds
                entry.tokens_in += response.tokens_in
                entry.tokens_out += response.tokens_out

    @staticmethod
    def _validate(question: Question, response: LLMResponse) -> tuple[dict[str, Any], str | None]:
        try:
            data = json.loads(response.text)
        except ValueError:
            return {}, f"malformed JSON: {response.text[:60]!r}"
        try:
            answer = question.answer_model.model_validate(data, context=question.context)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "answer"
            return {}, f"invalid answer: {where}: {error['msg']}"
        value = answer.model_dump()
        if question.finish is not None:
            value = question.finish(value, response)
        return value, None
