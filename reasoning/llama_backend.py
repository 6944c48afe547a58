"""llama.cpp in-process backend (llama-cpp-python), the default.

What here is not stock llama-cpp-python (each measured on SmolLM2-135M, two
CPU cores):

* **The sampler patch** (:mod:`reasoning.llama_sampler_patch`): a grammar
  prefilter, log-probabilities without ``logits_all`` and a grammar walked past
  the prefilled answer start. It uses llama-cpp-python's private API and is
  version-guarded.
* **Prefilled answer start.** The JSON an answer must start with
  (``{"intent": "``) is appended to the prompt and read in the same batch
  instead of being generated one forward pass per token (about a third of the
  generated tokens of a short answer).
* **Log-likelihood scoring** (:mod:`reasoning.llama_scoring`) reads a shared prefix once,
  with the first option in the same batch.
* **Stage prompt states** (:mod:`reasoning.llama_prefix_cache`). Each stage's
  task and example turn is evaluated once and its KV state kept, so interleaved
  stages do not re-read it; scored stages' raw heads too (:meth:`prime_scored`).
* **Time limit.** A stopping criterion ends a generation after
  ``call_timeout_s`` and the call raises :class:`LLMTimeout`.

``n_gpu_layers`` defaults to -1 (all) when the build can offload, and the
number of layers actually offloaded is read back from llama.cpp's load log
(:mod:`reasoning.llama_load_log`; ``info()``, with a warning on a silent CPU
fallback). One ``Llama`` object per process and settings
(:func:`shared_llama_backend`); every call holds a lock (a ``Llama`` is not
thread-safe, and the app shares one across browser sessions). A GGUF without a
chat template falls back to llama-cpp-python's own chat handler, without
prefill or time limit. Model discovery lives in :mod:`reasoning.llama_models`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import Any

from reasoning.backend import (BackendFailure, ContinuationScores, LLMBackend, LLMError, LLMRequest,
                               LLMResponse, LLMTimeout, TokenCallback)
from reasoning.backend_info import BackendInfo, BackendKind, GpuOffload, LlamaDetails
from reasoning.config import ReasoningConfig
from reasoning.llama_load_log import captured_load_log, offload_counts_from_log
from reasoning.llama_models import default_model_path, model_identity_of, resolve_model_path
from reasoning.llama_prefix_cache import PrefixStateCache
from reasoning.llama_sampler_patch import Prefilter, StepRecorder, prefiltered_llama_class
from reasoning.llama_scoring import score_continuations

# Re-exported: other modules and tests import these names from here.
__all__ = ["LlamaCppBackend", "default_model_path", "model_identity_of", "offload_counts_from_log",
           "resolve_model_path", "shared_llama_backend"]


class _Deadline:
    """A stopping criterion that ends generation once ``seconds`` have passed.

    llama-cpp-python reports such a stop as ``finish_reason="stop"``, so the
    backend checks :attr:`expired` afterwards and raises :class:`LLMTimeout`.
    """

    def __init__(self, seconds: float, inner: Any = None) -> None:
        self.limit = time.perf_counter() + seconds
        self.inner = inner
        self.expired = False

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        if time.perf_counter() > self.limit:
            self.expired = True
            return True
        return False

    def criteria(self) -> Any:
        from llama_cpp import StoppingCriteriaList

        return StoppingCriteriaList([self, *(self.inner or [])])


class LlamaCppBackend(LLMBackend):
    """SmolLM2 (or any GGUF) in this process.

    Args:
        config: reasoning settings (model path, n_gpu_layers, n_ctx, seed, threads).

    Raises:
        ModelFileError: the model file is missing or not a GGUF.
        LLMError: llama-cpp-python is not installed or the model does not load.
    """

    def __init__(self, config: ReasoningConfig) -> None:
        self.config = config
        self.path = resolve_model_path(config)
        try:
            import llama_cpp
        except ImportError:
            raise LLMError("llama-cpp-python is not installed; run `make setup` or "
                           "`CMAKE_ARGS=-DGGML_NATIVE=OFF pip install llama-cpp-python==0.3.36`") from None
        self._llama_cpp = llama_cpp
        self.supports_gpu_offload = bool(llama_cpp.llama_supports_gpu_offload())
        if config.n_gpu_layers is None:
            self.requested_gpu_layers = -1 if self.supports_gpu_offload else 0
        else:
            self.requested_gpu_layers = config.n_gpu_layers
        self._lock = threading.Lock()
        self._grammars: OrderedDict[str, Any] = OrderedDict()
        self._identity: str | None = None
        self._chat_formatters: tuple | None = None
        self._prefix_cache = PrefixStateCache(llama_cpp)
        started = time.perf_counter()
        self._llm, self._load_log = self._load()
        self.load_seconds = time.perf_counter() - started
        self.n_layers = int(llama_cpp.llama_model_n_layer(self._llm.model))
        # "of how many": llama.cpp's own count (blocks + output layer), so a full offload
        # reads N of N rather than 31 of 30
        self.offloaded_layers, offloadable = offload_counts_from_log(self._load_log)
        self.offloadable_layers = offloadable or self.n_layers + 1

    def _load(self):
        llama_class = prefiltered_llama_class()   # raises on a llama-cpp-python it does not know
        # Both thread counts are set: llama-cpp-python defaults to half the cores for
        # generation and all of them for prompts, and its threads spin while waiting, so
        # a count above the free cores slows every call down several-fold.
        threads = self.config.threads
        kwargs: dict[str, Any] = dict(model_path=str(self.path), n_ctx=self.config.n_ctx,
                                      n_gpu_layers=self.requested_gpu_layers, seed=self.config.seed,
                                      verbose=False, logits_all=False, n_threads=threads,
                                      n_threads_batch=threads)
        with captured_load_log(self._llama_cpp) as captured:
            try:
                llm = llama_class(**kwargs)
            except (ValueError, RuntimeError, OSError) as exc:
                raise LLMError(f"could not load {self.path}: {exc}") from None
        return llm, "".join(captured)

    @property
    def prefix_restores(self) -> int:
        """How many times a saved stage-prompt state was restored instead of re-read."""
        return self._prefix_cache.restores

    @property
    def offload_warning(self) -> str | None:
        """Set when GPU layers were asked for but none landed there (a silent CPU fallback)."""
        if self.requested_gpu_layers != 0 and self.offloaded_layers == 0:
            why = ("this llama-cpp-python build has no GPU support (rebuild with `make setup GPU=1`)"
                   if not self.supports_gpu_offload else "llama.cpp placed every layer on the CPU")
            return f"asked for {self.requested_gpu_layers} GPU layers but 0 were offloaded: {why}"
        return None

    @property
    def model_identity(self) -> str:
        if self._identity is None:
            self._identity = model_identity_of(self.path)
        return self._identity

    def info(self) -> BackendInfo:
        offload = GpuOffload(supported=self.supports_gpu_offload, requested=self.requested_gpu_layers,
                             offloaded=self.offloaded_layers, offloadable=self.offloadable_layers,
                             warning=self.offload_warning)
        details = LlamaDetails(model_bytes=self.path.stat().st_size, n_layers=self.n_layers,
                               n_ctx=self._llm.n_ctx(),
                               llama_cpp_version=getattr(self._llama_cpp, "__version__", "unknown"),
                               offload=offload)
        return BackendInfo(kind=BackendKind.LLAMA, model=str(self.path), model_identity=self.model_identity,
                           n_threads=self._llm.n_threads, load_seconds=round(self.load_seconds, 3),
                           llama=details)

    def _grammar_for(self, schema: dict[str, Any]):
        """Compile a JSON schema to a grammar, raising (not falling back to generic JSON)."""
        key = json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            from llama_cpp.llama_grammar import LlamaGrammar
            grammar = LlamaGrammar.from_json_schema(key, verbose=False)
            self._grammars[key] = grammar
            if len(self._grammars) > 256:
                self._grammars.popitem(last=False)
        return grammar

    def _watch_ids(self, watch: tuple[str, ...]) -> dict[int, str]:
        """Single-token spellings of each watched text, with and without a leading quote/space."""
        ids: dict[int, str] = {}
        for text in watch:
            for variant in (text, " " + text, '"' + text, ' "' + text):
                tokens = self._llm.tokenize(variant.encode("utf-8"), add_bos=False, special=False)
                if len(tokens) == 1:
                    ids[tokens[0]] = variant
        return ids

    def _piece(self, token: int) -> str:
        return self._llm.detokenize([token]).decode("utf-8", "replace")

    def complete(self, request: LLMRequest, on_token: TokenCallback | None = None) -> LLMResponse:
        with self._lock:
            if self._llm is None:
                raise BackendFailure("the model was closed")
            return self._complete_locked(request, on_token)

    def prime(self, messages: list[list[dict[str, str]]]) -> None:
        """Read and keep the KV state of each message list (a stage's task and example turn).

        The first question of each stage would otherwise pay for it (about 200
        tokens, a few seconds on two CPU cores); priming moves that to start-up.
        """
        with self._lock:
            if self._llm is None:
                raise BackendFailure("the model was closed")
            formatters = self._formatters()
            if not formatters:
                return
            try:
                for head in messages:
                    formatted = formatters[1](messages=head)
                    self._reuse_prefix(self._tokens(formatted.prompt, formatted.added_special))
            except (ValueError, RuntimeError) as exc:
                raise BackendFailure(f"llama.cpp failed: {exc}") from None

    def prime_scored(self, heads: list[str]) -> None:
        """Read and keep the KV state of each scored prompt's raw head (task and example).

        Scoring then restores it instead of reading it again whenever another
        stage's prompt was read in between (about 290 tokens per session).
        """
        with self._lock:
            if self._llm is None:
                raise BackendFailure("the model was closed")
            try:
                for head in heads:
                    self._prefix_cache.register(
                        self._llm, self._llm.tokenize(head.encode("utf-8"), add_bos=True,
                                                      special=False))
            except (ValueError, RuntimeError) as exc:
                raise BackendFailure(f"llama.cpp failed: {exc}") from None

    def score_continuations(self, prefix: str, continuations: list[str]) -> ContinuationScores:
        """Total log-probability of each continuation after ``prefix`` (see the base class and
        :func:`reasoning.llama_scoring.score_continuations`)."""
        with self._lock:
            if self._llm is None:
                raise BackendFailure("the model was closed")
            try:
                return score_continuations(self._llama_cpp, self._llm, prefix, continuations,
                                           self._prefix_cache)
            except (ValueError, RuntimeError) as exc:
                raise BackendFailure(f"llama.cpp failed: {exc}") from None

    # ------------------------------------------------------------ prompt reuse
    def _formatters(self):
        """Chat formatters from the GGUF's own template (with and without the assistant cue)."""
        if self._chat_formatters is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            template = self._llm.metadata.get("tokenizer.chat_template")
            if not template:
                self._chat_formatters = ()
            else:
                vocab = self._llm._model
                eos = vocab.token_get_text(self._llm.token_eos()) if self._llm.token_eos() >= 0 else ""
                bos = vocab.token_get_text(self._llm.token_bos()) if self._llm.token_bos() >= 0 else ""
                common = dict(template=template, eos_token=eos, bos_token=bos,
                              stop_token_ids=[self._llm.token_eos()])
                self._chat_formatters = (Jinja2ChatFormatter(**common),
                                         Jinja2ChatFormatter(add_generation_prompt=False, **common))
        return self._chat_formatters

    def _tokens(self, text: str, added_special: bool) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=not added_special, special=True)

    def _reuse_prefix(self, prefix: list[int]) -> None:
        self._prefix_cache.reuse(self._llm, prefix)

    def _complete_locked(self, request: LLMRequest, on_token: TokenCallback | None) -> LLMResponse:
        grammar = self._grammar_for(request.schema) if request.schema is not None else None
        recorder = (StepRecorder(self._watch_ids(request.watch), self._piece)
                    if request.logprobs else None)
        self._llm.prefilter = Prefilter(request.temperature, request.seed, recorder)
        started = time.perf_counter()
        try:
            formatters = self._formatters()
            if not formatters:   # no chat template in the GGUF: llama-cpp-python's own handler
                return self._chat_completion(request, grammar, on_token, recorder, started)
            with_cue, without_cue = formatters
            formatted = with_cue(messages=request.messages)
            tokens = self._tokens(formatted.prompt, formatted.added_special)
            if len(request.messages) > 1:
                head = without_cue(messages=request.messages[:-1])
                head_tokens = self._tokens(head.prompt, head.added_special)
                self._reuse_prefix(tokens[: self._llm.longest_token_prefix(head_tokens, tokens)])
            prefill = request.prefill if grammar is not None else ""
            if prefill:
                # Forced answer text is read with the prompt (one batch) instead of
                # being generated one token per step; the grammar is advanced past it.
                prefill_tokens = self._llm.tokenize(prefill.encode("utf-8"), add_bos=False,
                                                    special=False)
                self._llm.prefilter.prefill_tokens = prefill_tokens
                tokens = tokens + prefill_tokens
                if on_token is not None:
                    on_token(prefill)
            deadline = _Deadline(self.config.call_timeout_s, formatted.stopping_criteria)
            kwargs: dict[str, Any] = dict(prompt=tokens, grammar=grammar, max_tokens=request.max_tokens,
                                          temperature=request.temperature, seed=request.seed,
                                          repeat_penalty=1.0, stop=formatted.stop,
                                          stopping_criteria=deadline.criteria())
            if on_token is None:
                result = self._llm.create_completion(**kwargs)
                choice = result["choices"][0]
                text, finish = choice["text"], choice.get("finish_reason") or "stop"
            else:
                text, finish = self._stream(self._llm.create_completion(stream=True, **kwargs),
                                            on_token, lambda c: c["text"])
            tokens_out = self._llm.prefilter.accepted
        except (ValueError, RuntimeError) as exc:
            raise BackendFailure(f"llama.cpp failed: {exc}") from None
        finally:
            self._llm.prefilter = None
        if deadline.expired:
            raise LLMTimeout(f"no complete answer within {self.config.call_timeout_s:g} s "
                             f"({tokens_out} tokens generated); raise reasoning.call_timeout_s")
        return LLMResponse(text=prefill + text, finish_reason=finish, tokens_in=len(tokens),
                           tokens_out=tokens_out, seconds=time.perf_counter() - started,
                           logprobs=recorder.steps if recorder is not None else None)

    def _chat_completion(self, request: LLMRequest, grammar: Any, on_token: TokenCallback | None,
                         recorder: StepRecorder | None, started: float) -> LLMResponse:
        kwargs = dict(messages=request.messages, grammar=grammar, max_tokens=request.max_tokens,
                      temperature=request.temperature, seed=request.seed, repeat_penalty=1.0)
        if on_token is None:
            result = self._llm.create_chat_completion(**kwargs)
            choice = result["choices"][0]
            text = choice["message"].get("content") or ""
            finish = choice.get("finish_reason") or "stop"
        else:
            text, finish = self._stream(self._llm.create_chat_completion(stream=True, **kwargs),
                                        on_token, lambda c: c["delta"].get("content"))
        tokens_out = self._llm.prefilter.accepted
        # The context holds the prompt followed by the generated tokens.
        return LLMResponse(text=text, finish_reason=finish,
                           tokens_in=max(0, self._llm.n_tokens - tokens_out), tokens_out=tokens_out,
                           seconds=time.perf_counter() - started,
                           logprobs=recorder.steps if recorder is not None else None)

    @staticmethod
    def _stream(chunks: Any, on_token: TokenCallback, piece_of: Any) -> tuple[str, str]:
        pieces: list[str] = []
        finish = "stop"
        for chunk in chunks:
            choice = chunk["choices"][0]
            piece = piece_of(choice)
            if piece:
                pieces.append(piece)
                on_token(piece)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        return "".join(pieces), finish

    @property
    def closed(self) -> bool:
        return self._llm is None

    def close(self) -> None:
        with self._lock:
            llm, self._llm = self._llm, None
            if llm is not None:
                llm.close()


# Every setting the backend reads, so two configs share a backend only when it would act the same.
SharedKey = tuple[str, int, int | None, int | None, int, float]
_shared: dict[SharedKey, LlamaCppBackend] = {}
_shared_lock = threading.Lock()


def shared_backend_key(config: ReasoningConfig) -> SharedKey:
    """What :func:`shared_llama_backend` keys on: model file, context, GPU layers, threads, seed and
    time limit."""
    path = resolve_model_path(config)
    return (str(path.resolve()), config.n_ctx, config.n_gpu_layers, config.n_threads, config.seed,
            config.call_timeout_s)


def shared_llama_backend(config: ReasoningConfig) -> LlamaCppBackend:
    """One backend per model file and settings per process (the app shares it across sessions).

    A backend someone closed is replaced by a fresh one.
    """
    key = shared_backend_key(config)
    with _shared_lock:
        backend = _shared.get(key)
        if backend is None or backend.closed:
            backend = LlamaCppBackend(config)
            _shared[key] = backend
        return backend
