"""OpenAI-compatible HTTP backend: llama.cpp's servers, vLLM, Ollama; one server or a pool.

The same interface as the in-process backend. Every request goes through a
:class:`reasoning.server_pool.ServerPool` over ``config.server_urls``: the
least busy healthy server answers it, and a server that fails (connection
refused or reset, a 5xx, a timeout) is marked down, the request is retried on
another one, and the down server is re-probed with backoff. Failures of the
servers raise :class:`reasoning.backend.BackendFailure` (never a dropped
piece); a refused *request* (a 4xx other than authentication, a reply that is
not a completion) raises a plain :class:`reasoning.backend.LLMError`.

Scoring (:meth:`HttpBackend.score_continuations`) uses ``POST /completions``
with ``echo: true, logprobs: 1, max_tokens: 1``: the server returns the
log-probability of every prompt token, and we add up the continuation's.
vLLM and llama-cpp-python's server both accept that request. llama-cpp-python
(0.3.x) pairs each echoed token with the wrong row when the model adds no BOS
token (SmolLM2 adds none); that is detected and reported, and
``http_score_prefix`` (the model's BOS text, ``<|im_start|>`` for SmolLM2)
fixes it. It also sorts the whole vocabulary in Python for every prompt token,
so scoring through it costs seconds per request on a CPU: vLLM, which computes
prompt log-probabilities on the GPU, is the server to scale out with.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from reasoning.backend import (BackendFailure, ContinuationScores, LLMBackend, LLMError, LLMRequest,
                               LLMResponse, ScoringNotSupported, TokenCallback,
                               TokenLogprob)
from reasoning.backend_info import BackendInfo, BackendKind, HttpDetails
from reasoning.config import ReasoningConfig
from reasoning.server_pool import ServerDown, ServerPool, ServerTimeout

PROBE_TIMEOUT_S = 5.0
# Statuses that say the server (or the key) is wrong, not the request: every
# request would fail the same way, so the build fails instead of dropping pieces.
_FATAL_STATUSES = {401: "the API key was refused", 403: "the API key was refused",
                   404: "no such endpoint (is the URL the /v1 base?)"}


class HttpBackend(LLMBackend):
    """Chat completions and scoring over a pool of OpenAI-compatible servers.

    Args:
        config: ``server_urls`` (``http_urls`` or ``http_url``), ``http_model``,
            ``http_api_key``, ``http_timeout_s``, ``http_schema_style``,
            ``http_logprobs``, ``http_score_prefix``, ``concurrency`` (total in
            flight), ``http_server_concurrency``, ``http_outage_s``,
            ``http_backoff_s``, ``http_backoff_max_s``.
        transport: an ``httpx`` transport, for tests of failure paths only.
    """

    def __init__(self, config: ReasoningConfig, transport: Any = None) -> None:
        import httpx

        self.config = config
        self._httpx = httpx
        urls = config.server_urls
        self.base_url = urls[0]
        headers = {"Authorization": f"Bearer {config.http_api_key}"} if config.http_api_key else {}
        per_server = config.http_server_concurrency or config.concurrency
        limits = httpx.Limits(max_connections=per_server, max_keepalive_connections=per_server)
        self._clients = {url: httpx.Client(base_url=url, headers=headers, limits=limits,
                                           timeout=config.http_timeout_s, transport=transport)
                         for url in urls}
        self.pool = ServerPool(urls, self._probe, total_limit=config.concurrency,
                               per_server_limit=config.http_server_concurrency,
                               outage_s=config.http_outage_s, backoff_s=config.http_backoff_s,
                               backoff_max_s=config.http_backoff_max_s)
        self._model_name: str | None = config.http_model or None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ identity
    def _served_model(self) -> str:
        """The model name: from config, else the first one ``GET /models`` lists."""
        with self._lock:
            if self._model_name is None:
                self._model_name = self.pool.run(self._first_model)
            return self._model_name

    def _first_model(self, url: str) -> str:
        models = self._models(url, self._clients[url], self.config.http_timeout_s)
        if not models:
            raise BackendFailure(f"{url}/models lists no model; set reasoning.http_model")
        return models[0]

    def _models(self, url: str, client: Any, timeout: float) -> list[str]:
        payload = self._get_json(url, client, "/models", timeout)
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise ServerDown(f"{url}/models: not a model list")
        return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]

    def _probe(self, url: str) -> None:
        """Usable again: ``/models`` answers and lists the model the pool serves."""
        models = self._models(url, self._clients[url], min(PROBE_TIMEOUT_S, self.config.http_timeout_s))
        wanted = self._model_name
        # A server naming another model would mix two models' answers in one KB and graph set.
        if wanted is not None and not self.config.http_model and wanted not in models:
            raise ServerDown(f"{url} serves {', '.join(models) or 'no model'}, not {wanted}")

    @property
    def model_identity(self) -> str:
        return f"http:{self._served_model()}"

    def info(self) -> BackendInfo:
        details = HttpDetails(url=self.base_url, urls=tuple(self.pool.urls),
                              concurrency=self.config.concurrency,
                              server_concurrency=self.config.http_server_concurrency,
                              schema_style=self.config.http_schema_style)
        return BackendInfo(kind=BackendKind.HTTP, model=self._served_model(),
                           model_identity=self.model_identity, http=details)

    def server_stats(self) -> list[Any]:
        """Per server: requests answered, failures, busy seconds (:class:`ServerStats`)."""
        return self.pool.stats()

    # ------------------------------------------------------------------- calls
    def _get_json(self, url: str, client: Any, path: str, timeout: float) -> Any:
        try:
            response = client.get(path, timeout=timeout)
        except self._httpx.TimeoutException:
            raise ServerTimeout(f"{url}{path}: no answer in {timeout:g} s") from None
        except self._httpx.HTTPError as exc:
            raise ServerDown(f"{url}{path}: {exc}") from None
        self._check_status(url, path, response)
        try:
            return response.json()
        except ValueError:
            raise ServerDown(f"{url}{path}: the reply is not JSON") from None

    def _check_status(self, url: str, path: str, response: Any) -> None:
        status = response.status_code
        if status == 200:
            return
        if status >= 500:
            raise ServerDown(f"{url}{path}: HTTP {status}: {response.text[:200]}")
        if status in _FATAL_STATUSES:
            raise BackendFailure(f"{url}{path}: HTTP {status}: {_FATAL_STATUSES[status]}")
        raise LLMError(f"{url}{path}: HTTP {status}: {response.text[:200]}")

    def _run(self, call: Any) -> Any:
        """``call(url, client)`` on the pool's choice of server."""
        return self.pool.run(lambda url: call(url, self._clients[url]))

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
            style = self.config.http_schema_style
            if style == "json_object":
                body["response_format"] = {"type": "json_object", "schema": schema}
            elif style == "guided_json":
                body["guided_json"] = schema   # vLLM's extra parameter (before structured_outputs)
            else:
                body["response_format"] = {"type": "json_schema",
                                           "json_schema": {"name": "answer", "schema": schema,
                                                           "strict": True}}
        if request.logprobs and self.config.http_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = 10
        return body

    def complete(self, request: LLMRequest, on_token: TokenCallback | None = None) -> LLMResponse:
        """One chat completion on the pool.

        A stream cut by a failing server is asked again on another one, so
        ``on_token`` may then see the start of the answer twice.
        """
        started = time.perf_counter()
        body = self._body(request, stream=on_token is not None)

        def call(url: str, client: Any) -> LLMResponse:
            try:
                if on_token is None:
                    return self._parse(url, client.post("/chat/completions", json=body))
                return self._stream(url, client, body, on_token)
            except self._httpx.TimeoutException:
                raise ServerTimeout(f"{url}/chat/completions: no answer in "
                               f"{self.config.http_timeout_s:g} s") from None
            except self._httpx.HTTPError as exc:
                raise ServerDown(f"{url}/chat/completions: {exc}") from None

        result = self._run(call)
        result.seconds = time.perf_counter() - started
        return result

    def _parse(self, url: str, response: Any) -> LLMResponse:
        self._check_status(url, "/chat/completions", response)
        try:
            payload = response.json()
            choice = payload["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError(f"{url}/chat/completions: not a chat completion: "
                           f"{response.text[:200]}") from None
        usage = payload.get("usage") or {}
        return LLMResponse(text=text, finish_reason=choice.get("finish_reason") or "stop",
                           tokens_in=int(usage.get("prompt_tokens") or 0),
                           tokens_out=int(usage.get("completion_tokens") or 0),
                           logprobs=_logprobs(choice.get("logprobs")))

    def _stream(self, url: str, client: Any, body: dict[str, Any],
                on_token: TokenCallback) -> LLMResponse:
        pieces: list[str] = []
        finish = "stop"
        usage: dict[str, Any] = {}
        with client.stream("POST", "/chat/completions", json=body) as response:
            if response.status_code != 200:
                response.read()
                self._check_status(url, "/chat/completions", response)
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[len("data:"):].strip()
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise LLMError(f"{url}: bad stream chunk {data[:80]!r}") from None
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

    # ----------------------------------------------------------------- scoring
    def score_continuations(self, prefix: str, continuations: list[str]) -> ContinuationScores:
        """Log-probability of each continuation after ``prefix``, one echo request each.

        Raises:
            ScoringNotSupported: the server returns no prompt log-probabilities,
                or returns them shifted (see the module docstring).
            BackendFailure: no server could answer.
        """
        started = time.perf_counter()
        scores, lengths, read = [], [], 0
        for text in continuations:
            if not text:
                raise LLMError("an empty continuation cannot be scored")
            prompt = self.config.http_score_prefix + prefix + text
            body = {"model": self._served_model(), "prompt": prompt, "max_tokens": 1,
                    "temperature": 0.0, "echo": True, "logprobs": 1}

            def call(url: str, client: Any, body: dict[str, Any] = body) -> Any:
                try:
                    response = client.post("/completions", json=body)
                except self._httpx.TimeoutException:
                    raise ServerTimeout(f"{url}/completions: no answer in "
                                   f"{self.config.http_timeout_s:g} s") from None
                except self._httpx.HTTPError as exc:
                    raise ServerDown(f"{url}/completions: {exc}") from None
                if response.status_code in (400, 422) and "logprob" in response.text.lower():
                    raise ScoringNotSupported(f"{url}/completions refuses prompt log-probabilities: "
                                              f"{response.text[:200]}")
                self._check_status(url, "/completions", response)
                try:
                    return url, response.json()
                except ValueError:
                    raise ServerDown(f"{url}/completions: the reply is not JSON") from None

            url, payload = self._run(call)
            logprob, n_tokens = continuation_logprob(payload, prompt, text, url)
            scores.append(logprob)
            lengths.append(n_tokens)
            read += int((payload.get("usage") or {}).get("prompt_tokens") or 0)
        return ContinuationScores(logprobs=scores, lengths=lengths, tokens_read=read,
                                  seconds=time.perf_counter() - started)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def continuation_logprob(payload: Any, prompt: str, text: str, url: str = "") -> tuple[float, int]:
    """Sum and count of the echoed log-probabilities of the tokens that spell ``text``,
    the end of ``prompt``, in a ``/completions`` reply with ``echo`` and ``logprobs``.

    Offsets are anchored at the end of the prompt (the generated token's offset)
    rather than its start: a server may leave special tokens out of its offsets.

    Raises:
        ScoringNotSupported: no per-token log-probabilities, or the echoed
            tokens are paired with the wrong rows (the last echoed token is a
            prompt token instead of the generated one).
    """
    try:
        choice = payload["choices"][0]
        block = choice["logprobs"]
        tokens = [str(t) for t in block["tokens"]]
        values = block["token_logprobs"]
        offsets = [int(o) for o in block["text_offset"]]
        echoed = str(choice.get("text") or "")
    except (KeyError, IndexError, TypeError, ValueError):
        raise ScoringNotSupported(f"{url}/completions returned no prompt log-probabilities "
                                  "(echo with logprobs)") from None
    if not tokens or len(tokens) != len(values) or len(tokens) != len(offsets):
        raise ScoringNotSupported(f"{url}/completions returned no prompt log-probabilities")
    generated = echoed[len(prompt):] if echoed.startswith(prompt) else None
    if generated and tokens[-1] == generated:
        end = offsets[-1]                                  # the generated token starts there
        tokens, values, offsets = tokens[:-1], values[:-1], offsets[:-1]
    elif generated:
        raise ScoringNotSupported(
            f"{url}/completions pairs echoed tokens with the wrong log-probabilities "
            "(llama-cpp-python does so for a model that adds no BOS token); set "
            "reasoning.http_score_prefix to the model's BOS text (SmolLM2: <|im_start|>)")
    else:
        end = offsets[-1] + len(tokens[-1])                # the model stopped: no generated token
    start = end - len(text)
    total, count = 0.0, 0
    for token, value, offset in zip(tokens, values, offsets):
        if offset + len(token) <= start or offset >= end:
            continue
        if value is None:
            raise ScoringNotSupported(f"{url}/completions gave no log-probability for {token!r}")
        total += float(value)
        count += 1
    if count == 0:
        raise ScoringNotSupported(f"{url}/completions echoed no token of {text[:40]!r}")
    return total, count


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
