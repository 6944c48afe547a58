"""The private-API part of the in-process backend: a ctypes sampler put first in llama.cpp's chain.

What it does (measured on SmolLM2-135M, two CPU cores; the backend's tests
check that greedy answers equal stock grammar decoding):

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
  output layer for every prompt token; the sampler reads the raw logits of each
  generated step instead (:class:`StepRecorder`).
* **Prefilled answer start.** The grammar is walked past answer text the
  backend put in the prompt.

None of this is public llama-cpp-python API: a ``Llama`` subclass overrides
``_init_sampler``, builds ``llama_cpp._internals.LlamaSampler`` chains and fills
``llama_sampler_i`` structs by hand, and the backend reaches ``Llama._ctx`` and
``Llama._batch``. :func:`check_llama_cpp` refuses a llama-cpp-python this was not
written for, or one that lacks a name it uses, before a model loads.
"""

from __future__ import annotations

import ctypes
import inspect
import math
from typing import Any

import numpy as np

from reasoning.backend import LLMError, TokenLogprob

SUPPORTED_LLAMA_CPP_VERSIONS = ("0.3.36",)   # the versions this patch was written and tested for
PREFILTER_CANDIDATES = 16   # tokens tried one by one before masking the whole vocabulary
TOP_LOGPROBS = 10

# Every private (or struct-layout) name the in-process backend relies on, as "module.attr" paths
# under llama_cpp; a missing one means llama-cpp-python changed under us.
PRIVATE_NAMES = (
    "Llama._init_sampler", "Llama.longest_token_prefix", "_internals.LlamaSampler",
    "_internals.LlamaSampler.add_grammar", "_internals.LlamaSampler.add_greedy",
    "_internals.LlamaContext.kv_cache_seq_rm", "_internals.LlamaContext.decode",
    "_internals.LlamaBatch.set_batch", "_internals.LlamaModel.token_get_text",
    "_logger.llama_log_callback", "llama_log_callback", "llama_log_set",
    "llama_sampler", "llama_sampler_i", "llama_sampler_i_name", "llama_sampler_i_accept",
    "llama_sampler_i_apply", "llama_sampler_i_reset", "llama_sampler_i_clone", "llama_sampler_i_free",
    "llama_sampler_chain_add", "llama_sampler_chain_get", "llama_sampler_accept", "llama_sampler_apply",
    "llama_token_data", "llama_token_data_array", "llama_get_logits_ith",
    "llama_state_seq_get_size", "llama_state_seq_get_data", "llama_state_seq_set_data",
)
_STRUCT_FIELDS = {   # ctypes struct fields we read or write by name
    "llama_sampler_i": ("name", "accept", "apply", "reset", "clone", "free"),
    "llama_sampler": ("iface", "ctx"),
    "llama_token_data_array": ("data", "size", "selected", "sorted"),
    "llama_token_data": ("id", "logit", "p"),
}


_LLAMA_INSTANCE_ATTRIBUTES = ("_model", "_ctx", "_batch")


class UnsupportedLlamaCpp(LLMError):
    """The installed llama-cpp-python is not one the sampler patch was written for."""


def missing_private_names(llama_cpp: Any) -> list[str]:
    """The names in :data:`PRIVATE_NAMES` (and struct fields, and ``_init_sampler(grammar=)``) absent here."""
    missing = []
    for dotted in PRIVATE_NAMES:
        target: Any = llama_cpp
        for part in dotted.split("."):
            if part == "_internals" or part == "_logger":
                target = getattr(target, part, None) or _submodule(llama_cpp, part)
            else:
                target = getattr(target, part, None)
            if target is None:
                missing.append(dotted)
                break
    for struct, fields in _STRUCT_FIELDS.items():
        have = {name for name, *_ in getattr(getattr(llama_cpp, struct, None), "_fields_", ())}
        missing += [f"{struct}.{name}" for name in fields if name not in have]
    llama_class = getattr(llama_cpp, "Llama", None)
    init_sampler = getattr(llama_class, "_init_sampler", None)
    if init_sampler is not None and "grammar" not in inspect.signature(init_sampler).parameters:
        missing.append("Llama._init_sampler(grammar=...)")
    if llama_class is not None:   # instance attributes: only the constructor's source names them
        init_source = inspect.getsource(llama_class.__init__)
        missing += [f"Llama.{name}" for name in _LLAMA_INSTANCE_ATTRIBUTES
                    if f"self.{name} =" not in init_source]
    internals = _submodule(llama_cpp, "_internals")
    if internals is not None and hasattr(internals, "LlamaSampler"):
        chain = internals.LlamaSampler()
        if not isinstance(getattr(chain, "custom_samplers", None), list):
            missing.append("_internals.LlamaSampler().custom_samplers")
        chain.close()
    return missing


def _submodule(llama_cpp: Any, name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(f"{llama_cpp.__name__}.{name}")
    except (ImportError, AttributeError):
        return None


def check_llama_cpp(llama_cpp: Any) -> None:
    """Raise :class:`UnsupportedLlamaCpp` unless ``llama_cpp`` is a version and shape this patch knows."""
    version = getattr(llama_cpp, "__version__", "unknown")
    fix = (f"install llama-cpp-python=={SUPPORTED_LLAMA_CPP_VERSIONS[-1]} (`make setup`), "
           "or use an HTTP server (--backend http --url URL)")
    if version not in SUPPORTED_LLAMA_CPP_VERSIONS:
        raise UnsupportedLlamaCpp(
            f"llama-cpp-python {version} is installed, but the in-process backend's sampler was "
            f"written for {', '.join(SUPPORTED_LLAMA_CPP_VERSIONS)}; {fix}")
    missing = missing_private_names(llama_cpp)
    if missing:
        raise UnsupportedLlamaCpp(f"llama-cpp-python {version} lacks what the in-process backend's "
                                  f"sampler uses ({', '.join(missing)}); {fix}")


class StepRecorder:
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


class Prefilter:
    """First sampler of the chain: see the module docstring."""

    def __init__(self, temperature: float, seed: int | None,
                 recorder: StepRecorder | None) -> None:
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


def prefiltered_llama_class() -> type:
    """A ``Llama`` subclass whose sampler chain is prefilter -> grammar -> greedy.

    Raises:
        UnsupportedLlamaCpp: the installed llama-cpp-python is not one this was written for.
    """
    import llama_cpp
    from llama_cpp import _internals as internals

    check_llama_cpp(llama_cpp)

    class PrefilteredLlama(llama_cpp.Llama):
        prefilter: Prefilter | None = None   # set per call, under the backend lock

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
