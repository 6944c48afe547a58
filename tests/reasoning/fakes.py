"""A scripted LLM backend, used ONLY by unit tests of failure paths.

Everything else in tests/reasoning runs the real default model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasoning.backend import LLMBackend, LLMError, LLMRequest, LLMResponse, TokenCallback
from reasoning.backend_info import BackendInfo, BackendKind


@dataclass
class ScriptedBackend(LLMBackend):
    """Replays scripted replies; only for unit tests of failure paths.

    Each script entry is an :class:`LLMResponse` to return or an exception to
    raise. ``requests`` records what was asked.
    """

    script: list[LLMResponse | Exception]
    requests: list[LLMRequest] = field(default_factory=list)

    @property
    def model_identity(self) -> str:
        return "scripted:test"

    def complete(self, request: LLMRequest, on_token: TokenCallback | None = None) -> LLMResponse:
        self.requests.append(request)
        if not self.script:
            raise LLMError("scripted backend: no reply left")
        reply = self.script.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if on_token is not None:
            on_token(reply.text)
        return reply

    def info(self) -> BackendInfo:
        return BackendInfo(kind=BackendKind.SCRIPTED)


def reply(text: str, finish_reason: str = "stop") -> LLMResponse:
    """A scripted backend reply."""
    return LLMResponse(text=text, finish_reason=finish_reason, tokens_in=10, tokens_out=5,
                       seconds=0.01)
