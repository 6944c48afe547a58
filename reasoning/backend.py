"""The typed LLM interface the stages call; backends live in their own modules.

A backend turns chat messages (plus an optional JSON schema that constrains
the answer) into text. Stages never see llama.cpp or HTTP details: they get an
:class:`LLMResponse` or one of the exceptions below.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

from reasoning.backend_info import BackendInfo, BackendKind  # noqa: F401  (re-exported)

TokenCallback = Callable[[str], None]


class LLMError(Exception):
    """The backend could not produce an answer to this request (a refused request, a bad reply).

    A plain ``LLMError`` is about one request: the stage drops that piece and
    uses its fallback. :class:`BackendFailure` and its subclasses are about the
    backend itself and fail the whole build instead.
    """


class BackendFailure(LLMError):
    """The backend itself failed (unreachable, a server error, a crash, a timeout).

    Not an answer: no piece may be replaced by a fallback because of it, so the
    build of the session fails as a whole and nothing is stored for it.
    """


class LLMTimeout(BackendFailure):
    """The backend did not answer in time."""


class BackendUnavailable(BackendFailure):
    """No server of the pool could be reached within the configured outage time."""


class ScoringNotSupported(BackendFailure):
    """The backend cannot return log-probabilities of given text (see ``score_continuations``).

    A failure, not a dropped piece: every stage but diverge scores, so a graph
    built without scores would be all fallbacks.
    """


class ModelFileError(LLMError):
    """The GGUF model file is missing or unreadable; the message names the path and a fix."""


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token with its log-probability and the best alternatives.

    ``top`` maps token text to log-probability at that step (the chosen token
    included), as OpenAI's ``top_logprobs`` does.
    """

    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LLMRequest:
    """One chat completion.

    Attributes:
        messages: OpenAI-style chat messages.
        schema: JSON schema the answer must follow (``None`` = free text).
        max_tokens: generation cap.
        temperature: 0 = greedy (reproducible, so KB entries are stable).
        seed: sampling seed for temperature > 0.
        logprobs: return per-token log-probabilities when the backend can.
        watch: texts (e.g. option letters) whose log-probabilities to include in
            each step's ``top`` even when they are not among the best tokens.
        prefill: the start of the answer the schema allows anyway (e.g.
            ``{"intent": "``). A backend that can append it to the prompt reads it
            in one batch instead of generating it token by token, and returns it
            as the start of the text; others ignore it.
    """

    messages: list[dict[str, str]]
    schema: dict[str, Any] | None = None
    max_tokens: int = 64
    temperature: float = 0.0
    seed: int | None = None
    logprobs: bool = False
    watch: tuple[str, ...] = ()
    prefill: str = ""


@dataclass
class LLMResponse:
    """What a backend returns.

    Attributes:
        text: the generated text (JSON when a schema was given).
        finish_reason: ``"stop"`` or ``"length"`` (cut at max_tokens), as OpenAI.
        tokens_in, tokens_out: prompt and completion token counts.
        seconds: wall time of the call.
        logprobs: per-token log-probabilities, or ``None`` when unavailable.
    """

    text: str
    finish_reason: str
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    logprobs: list[TokenLogprob] | None = None


@dataclass(frozen=True)
class ContinuationScores:
    """What :meth:`LLMBackend.score_continuations` returns.

    Attributes:
        logprobs: total log-probability of each continuation, in the order asked.
        lengths: tokens of each continuation (for per-token normalization).
        tokens_read: tokens the model read (prefix not already cached plus continuations).
        seconds: wall time of the call.
    """

    logprobs: list[float]
    lengths: list[int]
    tokens_read: int
    seconds: float


class LLMBackend(ABC):
    """A chat model behind one method. Implementations must be thread-safe."""

    @property
    @abstractmethod
    def model_identity(self) -> str:
        """A stable name of the model weights (e.g. ``sha256:...``); the KB tags entries with it."""

    @abstractmethod
    def complete(self, request: LLMRequest, on_token: TokenCallback | None = None) -> LLMResponse:
        """Run one completion; ``on_token`` receives text pieces as they are generated.

        Raises:
            LLMTimeout: no answer in time.
            BackendFailure: the backend failed (not this request's answer).
            LLMError: this request failed (its piece is dropped).
        """

    @abstractmethod
    def info(self) -> BackendInfo:
        """What the backend runs on: model, offloaded layers, threads, URL..."""

    def score_continuations(self, prefix: str, continuations: list[str]) -> ContinuationScores:
        """Total log-probability of each continuation right after the raw text ``prefix``.

        Multiple-choice scoring as lm-evaluation-harness does it: no generation,
        no chat template; the prefix is read once and each continuation is
        scored as the text that follows it. Callers normalize (e.g. by length).

        Raises:
            ScoringNotSupported: the backend cannot score text (e.g. a server
                without prompt log-probabilities).
            LLMError: any other failure.
        """
        raise ScoringNotSupported(f"{type(self).__name__} cannot score continuations")

    def prime(self, messages: list[list[dict[str, str]]]) -> None:
        """Prepare for requests that start with these chat turns (e.g. read their prompt).

        Optional: backends without a prompt cache do nothing.
        """

    def prime_scored(self, heads: list[str]) -> None:
        """Prepare for scored prefixes (:meth:`score_continuations`) that start with these raw texts.

        Optional: backends without a prompt cache do nothing.
        """

    def close(self) -> None:
        """Release the model or connections."""


def choice_probabilities(logprobs: list[TokenLogprob] | None, answer: str,
                         options: list[str]) -> dict[str, float] | None:
    """Probability of each option at the token where ``answer`` was generated.

    The answer is one of ``options`` (short labels such as ``"A"``). We find the
    first generated token whose text holds the answer label and renormalize the
    log-probabilities of the option labels at that step. Returns ``None`` when
    the step or any option's log-probability is unknown: callers then count the
    answer as right or wrong only.
    """
    if not logprobs:
        return None
    for step in logprobs:
        stripped = step.token.strip().strip('"').strip()
        if stripped != answer:
            continue
        # The same token text with the label swapped, e.g. ' "B' -> ' "A'.
        prefix, _, suffix = step.token.partition(answer)
        scores = {}
        for option in options:
            variant = prefix + option + suffix
            if variant in step.top:
                scores[option] = step.top[variant]
            elif option in step.top:
                scores[option] = step.top[option]
            else:
                return None
        peak = max(scores.values())
        weights = {o: math.exp(v - peak) for o, v in scores.items()}
        total = sum(weights.values())
        return {o: w / total for o, w in weights.items()}
    return None


def open_backend(config: Any) -> LLMBackend:
    """The backend ``config.backend`` names (a :class:`reasoning.config.ReasoningConfig`).

    The in-process model is shared per process (see
    :func:`reasoning.llama_backend.shared_llama_backend`).

    Raises:
        ModelFileError: the GGUF file is missing (the message names it and how to get one).
        LLMError: the backend cannot start.
    """
    if config.backend == "http":
        from reasoning.http_backend import HttpBackend

        return HttpBackend(config)
    from reasoning.llama_backend import shared_llama_backend

    return shared_llama_backend(config)
