"""OpenAI-compatible HTTP backend: llama.cpp's servers, vLLM, Ollama.

The same interface as the in-process backend. The client is thread-safe, so
batch jobs may run ``config.concurrency`` requests at once; the server does
the batching.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from reasoning.backend import (LLMBackend, LLMError, LLMRequest, LLMResponse, LLMTimeout,
                               TokenCallback, TokenLogprob)
from reasoning.config import ReasoningConfig


class HttpBackend(LLMBackend):
    """Chat completions over ``POST {http_url}/chat/completions``.

    Args:
        config: ``http_url``, ``http_model``, ``http_api_key``, ``http_timeout_s``,
            ``http_schema_style``, ``http_logprobs``, ``concurrency``.
        transport: an ``httpx`` transport, for tests of failure paths only.
    """

    def __init__(self, config: ReasoningConfig, transport: Any = None) -> None:
        import httpx

        self.config = config
        self._httpx = httpx
        self.base_url = config.http_url.rstrip("/")
        headers = {"Authorization": f"Bearer {config.http_api_key}"} if config.http_api_key else {}
        limits = httpx.Limits(max_connections=config.concurrency,
                              max_keepalive_connections=config.concurrency)
        self._client = httpx.Client(base_url=self.base_url, headers=headers, limits=limits,
                                    timeout=config.http_timeout_s, transport=transport)
        self._model_name: str | None = config.http_model or None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ identity
    def _served_model(self) -> str:
        """The model name: from config, else the first one ``GET /models`` lists."""
        with self._lock:
            if self._model_name is None:
                payload = self._get_json("/models")
                models = payload.get("data") or []
                if not models or "id" not in models[0]:
                    raise LLMError(f"{self.base_url}/models lists no model; set reasoning.http_model")
                self._model_name = str(models[0]["id"])
            return self._model_name

    @property
    def model_identity(self) -> str:
        return f"http:{self._served_model()}"

    def info(self) -> dict[str, Any]:
        return {"backend": "http", "url": self.base_url, "model": self._served_model(),
                "model_identity": self.model_identity, "concurrency": self.config.concurrency,
                "schema_style": self.config.http_schema_style,
                "n_gpu_layers_offloaded": "decided by the server"}

    # ------------------------------------------------------------------- calls
    def _get_json(self, path: str) -> dict[str, Any]:
        try:
            response = self._client.get(path)
        except self._httpx.TimeoutException:
            raise LLMTimeout(f"{self.base_url}{path}: no answer in {self.config.http_timeout_s} s") from None
        except self._httpx.HTTPError as exc:
            raise LLMError(f"{self.base_url}{path}: {exc}") from None
        if response.status_code != 200:
            raise LLMError(f"{self.base_url}{path}: HTTP {response.status_code}: {response.text[:200]}")
        try:
            return response.json()
        except ValueError:
            raise LLMError(f"{self.base_url}{path}: the reply is not JSON") from None

    def _body(self, request: LLMRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self._served_model(), "messages": request.messages,
                                "max_tokens": request.max_tokens, "temperature": request.temperature,
                                "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}   # token counts in the last chunk
        if request.seed is not None:
            body["seed"] = request.seed
        if request.schema is not None:
            schema = without_max_length(request.schema)
            if self.config.http_schema_style == "json_object":
                body["response_format"] = {"type": "json_object", "schema": schema}
            else:
                body["response_format"] = {"type": "json_schema",
                                           "json_schema": {"name": "answer", "schema": schema,
                                                           "strict": True}}
        if request.logprobs and self.config.http_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = 10
        return body

    def complete(self, request: LLMRequest, on_token: TokenCallback | None = None) -> LLMResponse:
        started = time.perf_counter()
        body = self._body(request, stream=on_token is not None)
        try:
            if on_token is None:
                response = self._client.post("/chat/completions", json=body)
                result = self._parse(response)
            else:
                result = self._stream(body, on_token)
        except self._httpx.TimeoutException:
            raise LLMTimeout(f"{self.base_url}/chat/completions: no answer in "
                             f"{self.config.http_timeout_s} s") from None
        except self._httpx.HTTPError as exc:
            raise LLMError(f"{self.base_url}/chat/completions: {exc}") from None
        result.seconds = time.perf_counter() - started
        return result

    def _parse(self, response: Any) -> LLMResponse:
        if response.status_code != 200:
            raise LLMError(f"{self.base_url}/chat/completions: HTTP {response.status_code}: "
                           f"{response.text[:200]}")
        try:
            payload = response.json()
            choice = payload["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError(f"{self.base_url}/chat/completions: not a chat completion: "
                           f"{response.text[:200]}") from None
        usage = payload.get("usage") or {}
        return LLMResponse(text=text, finish_reason=choice.get("finish_reason") or "stop",
                           tokens_in=int(usage.get("prompt_tokens") or 0),
                           tokens_out=int(usage.get("completion_tokens") or 0),
                           logprobs=_logprobs(choice.get("logprobs")))

    def _stream(self, body: dict[str, Any], on_token: TokenCallback) -> LLMResponse:
        pieces: list[str] = []
        finish = "stop"
        usage: dict[str, Any] = {}
        with self._client.stream("POST", "/chat/completions", json=body) as response:
            if response.status_code != 200:
                response.read()
                raise LLMError(f"{self.base_url}/chat/completions: HTTP {response.status_code}: "
                               f"{response.text[:200]}")
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[len("data:"):].strip()
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise LLMError(f"{self.base_url}: bad stream chunk {data[:80]!r}") from None
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        pieces.append(piece)
                        on_token(piece)
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
        return LLMResponse(text="".join(pieces), finish_reason=finish,
                           tokens_in=int(usage.get("prompt_tokens") or 0),
                           tokens_out=int(usage.get("completion_tokens") or len(pieces)))

    def close(self) -> None:
        self._client.close()


def without_max_length(schema: Any) -> Any:
    """The schema minus every ``maxLength``: a server's stock grammar sampler crawls with
    one (see :mod:`reasoning.schemas`); answers are clipped after parsing anyway."""
    if isinstance(schema, dict):
        return {k: without_max_length(v) for k, v in schema.items() if k != "maxLength"}
    if isinstance(schema, list):
        return [without_max_length(v) for v in schema]
    return schema


def _logprobs(block: Any) -> list[TokenLogprob] | None:
    """OpenAI chat ``logprobs.content`` to our per-token records."""
    if not isinstance(block, dict) or not isinstance(block.get("content"), list):
        return None
    steps = []
    for entry in block["content"]:
        try:
            top = {alt["token"]: float(alt["logprob"]) for alt in entry.get("top_logprobs") or []}
            steps.append(TokenLogprob(token=entry["token"], logprob=float(entry["logprob"]), top=top))
        except (KeyError, TypeError, ValueError):
            return None
    return steps
