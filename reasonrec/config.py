"""Layered configuration: packaged defaults, then a TOML file, then flags.

Every layer is validated by pydantic; a bad value raises :class:`ConfigError`
naming the file and the dotted field, never a traceback.
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.data.fetch import default_data_dir
from models.fusion.settings import FusionSettings
from models.recommenders import MODEL_NAMES, model_class
from models.recommenders.base import TrainConfig
from reasoning.config import ReasoningConfig


class ConfigError(Exception):
    """A configuration value or file the user must fix."""


class DataSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field("", description="dataset directory; empty = packaged ml-100k")
    data_dir: str = Field("", description="cache for data, runs, KB; empty = default")
    encoding: str = ""
    session_gap_minutes: float = Field(30.0, gt=0)
    max_len: int = Field(50, ge=1, le=512)

    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()


class RecommendSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_model: str = "sasrec"
    k: int = Field(10, ge=1, le=1000)
    exclude_seen: bool = True

    @field_validator("default_model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODEL_NAMES:
            raise ValueError(f"unknown model {value!r}; choose one of {', '.join(MODEL_NAMES)}")
        return value


class StudioConfig(BaseModel):
    """The whole studio configuration."""

    model_config = ConfigDict(extra="forbid")

    data: DataSettings = DataSettings()
    recommend: RecommendSettings = RecommendSettings()
    train: TrainConfig = TrainConfig()
    # Per-model hyper-parameter overrides, e.g. [models.sasrec] hidden_size = 64; each
    # model's own Params validate them in load_config (see _owned_section_errors).
    models: dict[str, dict[str, Any]] = {}
    # Kept as the raw section: reasoning_settings() fills in data_dir and the flags
    # before building the ReasoningConfig; load_config validates it already.
    reasoning: dict[str, Any] = {}
    fusion: FusionSettings = FusionSettings()

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name in value:
            if name not in MODEL_NAMES:
                raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
        return value

    @property
    def data_dir(self) -> Path:
        return self.data.resolved_data_dir()

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def bench_dir(self) -> Path:
        return self.data_dir / "bench"

    def reasoning_settings(self, **overrides: Any) -> Any:
        """``[reasoning]`` validated by ``reasoning.config``, then ``overrides`` (``None`` ignored).

        The KB, item vectors and graphs live in the studio's data dir unless the
        section names its own ``data_dir``.

        Raises:
            reasoning.config.ReasoningConfigError: a bad value, naming the field.
        """
        from reasoning.config import load_reasoning_config  # the owner of [reasoning] validation

        section = dict(self.reasoning)
        if not section.get("data_dir"):
            section["data_dir"] = str(self.data_dir)
        return load_reasoning_config(section, **overrides)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def default_layer() -> dict[str, Any]:
    text = resources.files("assets").joinpath("default_config.toml").read_text()
    return tomllib.loads(text)


def load_config(path: Path | str | None = None, overrides: dict[str, Any] | None = None) -> StudioConfig:
    """Build the config from defaults, then ``path`` (or $REASONREC_CONFIG), then ``overrides``.

    Args:
        path: optional TOML file.
        overrides: nested dict of flag values; ``None`` values are ignored.
    """
    layers: list[tuple[str, dict[str, Any]]] = [("defaults", default_layer())]
    path = path or os.environ.get("REASONREC_CONFIG") or None
    if path:
        layers.append((str(path), _read_toml(Path(path).expanduser())))
    if overrides:
        layers.append(("command-line flags", _drop_none(overrides)))
    merged: dict[str, Any] = {}
    config = StudioConfig()
    for source, layer in layers:
        merged = _merge(merged, layer)
        try:
            config = StudioConfig.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(f"{source}: {'; '.join(_field_errors(exc))}") from None
        problems = _owned_section_errors(config)
        if problems:
            raise ConfigError(f"{source}: {'; '.join(problems)}")
    return config


def _owned_section_errors(config: StudioConfig) -> list[str]:
    """Check the sections whose schema lives with their owner, so a bad value names
    its layer now rather than surfacing, without the file, when a command uses it.

    ``[reasoning]`` is checked by ``reasoning.config.ReasoningConfig`` (an empty
    ``data_dir`` is valid; the studio's data dir is filled in later), and each
    ``[models.NAME]`` by that model's ``params_type``.
    """
    problems: list[str] = []
    try:
        ReasoningConfig.model_validate(config.reasoning)
    except ValidationError as exc:
        problems += _field_errors(exc, "reasoning")
    for name, params in config.models.items():
        try:
            model_class(name).params_type.model_validate(params)
        except ValidationError as exc:
            problems += _field_errors(exc, "models", name)
    return problems


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _drop_none(value)
            if value:
                out[key] = value
        elif value is not None:
            out[key] = value
    return out


def _field_errors(exc: ValidationError, *prefix: str) -> list[str]:
    """``field 'a.b': what is wrong`` per error, the dotted field under ``prefix``."""
    parts = []
    for error in exc.errors():
        field = ".".join([*prefix, *(str(p) for p in error["loc"])])
        # Our own validators raise ValueError; pydantic would prefix "Value error, ".
        cause = error.get("ctx", {}).get("error")
        message = str(cause) if error["type"] == "value_error" and cause else error["msg"]
        parts.append(f"field '{field}': {message}")
    return parts
