"""What a backend runs on, typed: returned by every ``LLMBackend.info()``.

Build logs store it as a plain dict (:meth:`BackendInfo.to_dict`, the same keys
stored graphs have always had); :meth:`BackendInfo.from_dict` reads one back,
older graphs and graphs made without an LLM included.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class BackendKind(str, Enum):
    """Who answered the reasoning prompts."""

    LLAMA = "llama"                       # llama.cpp in this process
    HTTP = "http"                         # OpenAI-compatible servers (one or a pool)
    GENRE_HEURISTIC = "genre-heuristic"   # the no-LLM stand-in graphs (models.genre_graphs)
    SCRIPTED = "scripted"                 # fixed replies (test stand-ins)
    UNKNOWN = "unknown"                   # a stored log that does not say


@dataclass(frozen=True)
class GpuOffload:
    """Where llama.cpp put the layers; ``offloadable`` counts the output layer, as llama.cpp does."""

    supported: bool           # the llama-cpp-python build can offload at all
    requested: int            # n_gpu_layers asked for (-1 = all)
    offloaded: int
    offloadable: int | None
    warning: str | None = None   # set on a silent CPU fallback


@dataclass(frozen=True)
class LlamaDetails:
    model_bytes: int
    n_layers: int
    n_ctx: int
    llama_cpp_version: str
    offload: GpuOffload


@dataclass(frozen=True)
class HttpDetails:
    url: str                  # the first server
    urls: tuple[str, ...]
    concurrency: int          # requests in flight over the pool
    server_concurrency: int | None
    schema_style: str


@dataclass(frozen=True)
class BackendInfo:
    """One backend's model and where it runs; ``llama`` or ``http`` is set for those kinds."""

    kind: BackendKind
    model: str = ""           # the GGUF path, or the model name a server serves
    model_identity: str = ""  # what the knowledge base tags answers with
    n_threads: int | None = None
    load_seconds: float | None = None
    llama: LlamaDetails | None = None
    http: HttpDetails | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stored form (a build log's ``backend``), with the keys graphs have always had."""
        out: dict[str, Any] = {"backend": self.kind.value}
        if self.llama is not None:
            offload = self.llama.offload
            out.update({"model_path": self.model, "model_identity": self.model_identity,
                        "model_bytes": self.llama.model_bytes, "n_layers": self.llama.n_layers,
                        "supports_gpu_offload": offload.supported,
                        "n_gpu_layers_requested": offload.requested,
                        "n_gpu_layers_offloaded": offload.offloaded,
                        "n_gpu_layers_offloadable": offload.offloadable,
                        "offload_warning": offload.warning, "n_ctx": self.llama.n_ctx,
                        "n_threads": self.n_threads, "load_seconds": self.load_seconds,
                        "llama_cpp_version": self.llama.llama_cpp_version})
        elif self.http is not None:
            out.update({"url": self.http.url, "urls": list(self.http.urls), "model": self.model,
                        "model_identity": self.model_identity, "concurrency": self.http.concurrency,
                        "server_concurrency": self.http.server_concurrency,
                        "schema_style": self.http.schema_style,
                        "n_gpu_layers_offloaded": "decided by the server"})
        elif self.kind is BackendKind.GENRE_HEURISTIC:
            out["llm"] = False
        else:
            out.update({k: v for k, v in (("model", self.model), ("model_identity", self.model_identity))
                        if v})
        return out

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> BackendInfo:
        """Read a stored build log's ``backend`` back; missing keys (older graphs) stay empty."""
        try:
            kind = BackendKind(str(stored.get("backend") or "unknown"))
        except ValueError:
            kind = BackendKind.UNKNOWN
        llama = http = None
        if kind is BackendKind.LLAMA:
            offload = GpuOffload(supported=bool(stored.get("supports_gpu_offload")),
                                 requested=int(stored.get("n_gpu_layers_requested") or 0),
                                 offloaded=int(stored.get("n_gpu_layers_offloaded") or 0),
                                 offloadable=stored.get("n_gpu_layers_offloadable"),
                                 warning=stored.get("offload_warning"))
            llama = LlamaDetails(model_bytes=int(stored.get("model_bytes") or 0),
                                 n_layers=int(stored.get("n_layers") or 0),
                                 n_ctx=int(stored.get("n_ctx") or 0),
                                 llama_cpp_version=str(stored.get("llama_cpp_version") or "unknown"),
                                 offload=offload)
        elif kind is BackendKind.HTTP:
            url = str(stored.get("url") or "")
            http = HttpDetails(url=url, urls=tuple(stored.get("urls") or ([url] if url else [])),
                               concurrency=int(stored.get("concurrency") or 1),
                               server_concurrency=stored.get("server_concurrency"),
                               schema_style=str(stored.get("schema_style") or ""))
        return cls(kind=kind, model=str(stored.get("model_path") or stored.get("model") or ""),
                   model_identity=str(stored.get("model_identity") or ""),
                   n_threads=stored.get("n_threads"), load_seconds=stored.get("load_seconds"),
                   llama=llama, http=http)
