"""JSON schemas of the stage answers, and the pydantic models that validate them.

Rules that keep a 135M model fast and on track: choices are ``enum``s,
arrays carry ``maxItems``, and texts are cut after parsing.

``maxLength`` makes llama.cpp's stock grammar sampler crawl (it checks every
vocabulary token against a much larger grammar), so only one place uses it:
the free-text intents of the divergent stage, where the 135M model otherwise
repeats a phrase until it runs out of tokens ("family fun family fun ...").
Our in-process backend checks at most a few tokens per step against the
grammar, so a bounded string costs nothing there (10 divergent questions: 7.8 s
bounded, 8.9 s unbounded); the HTTP backend removes ``maxLength`` before
sending a schema to a server. The schema constrains decoding; pydantic checks
the answer again, because an HTTP server may ignore the schema.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

NEW_CHAIN = "new"


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


def intent_schema(options: list[str]) -> dict[str, Any]:
    return _object({"intent": {"type": "string", "enum": list(options)}}, ["intent"])


DIVERGE_MAX_CHARS = 32   # an intent is "a few words"; see the module docstring


def diverge_schema(k: int) -> dict[str, Any]:
    """Up to ``k`` free-text intents of at most :data:`DIVERGE_MAX_CHARS` characters."""
    return _object({"intents": {"type": "array",
                                "items": {"type": "string", "maxLength": DIVERGE_MAX_CHARS},
                                "minItems": 1, "maxItems": k}}, ["intents"])


def answer_prefix(schema: dict[str, Any]) -> str:
    """The answer start every valid answer may begin with, e.g. ``{"intent": "``.

    Our schemas are objects whose first property is a string or an array of
    strings; the JSON grammar allows optional spaces, and this prefix uses the
    spacing of the prompts' examples.
    """
    properties = schema.get("properties") or {}
    if schema.get("type") != "object" or not properties:
        return ""
    name, spec = next(iter(properties.items()))
    if spec.get("type") == "string":
        return '{"' + name + '": "'
    if spec.get("type") == "array" and (spec.get("items") or {}).get("type") == "string":
        return '{"' + name + '": ["'
    return '{"' + name + '": '


def _one_of(value: str, info: ValidationInfo, context_key: str, refusal: str) -> str:
    """``value`` when the validation context's ``context_key`` list holds it.

    The enum is re-checked because an HTTP server may ignore the schema.
    """
    if value not in (info.context or {}).get(context_key, []):
        raise ValueError(f"{value[:40]!r} {refusal}")
    return value


class IntentAnswer(BaseModel):
    """Stage 1a. Context: ``options``."""

    model_config = ConfigDict(extra="forbid")
    intent: str

    @field_validator("intent")
    @classmethod
    def _in_options(cls, value: str, info: ValidationInfo) -> str:
        return _one_of(value, info, "options", "is not one of the options")


class DivergeAnswer(BaseModel):
    """Stage 2. Context: ``k``, ``text_limit``.

    Texts are clipped; empty ones and repeats (ignoring case) are dropped, order kept.
    """

    model_config = ConfigDict(extra="forbid")
    intents: list[str]

    @field_validator("intents")
    @classmethod
    def _short_distinct(cls, value: list[str], info: ValidationInfo) -> list[str]:
        context = info.context or {}
        k = int(context.get("k", 3))
        limit = int(context.get("text_limit", 48))
        if len(value) > k:
            raise ValueError(f"{len(value)} intents proposed, at most {k} allowed")
        kept: dict[str, str] = {}
        for text in value:
            clipped = clip_text(collapse_repeats(text), limit)
            if any(ch.isalnum() for ch in clipped):
                kept.setdefault(clipped.casefold(), clipped)
        if not kept:
            raise ValueError("no intent proposed")
        return list(kept.values())


def collapse_repeats(text: str) -> str:
    """One copy of a phrase the model repeated: ``"family fun family fun family fu"`` ->
    ``"family fun"`` (a cut-off last word counts as a repeat)."""
    tokens = text.split()
    for period in range(1, len(tokens) // 2 + 1):
        head = tokens[:period]
        if all(tokens[i] == head[i % period] or (i == len(tokens) - 1
                                                 and head[i % period].startswith(tokens[i]))
               for i in range(period, len(tokens))):
            return " ".join(head)
    return text


def clip_text(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters, cut at a word boundary when possible.

    LLM text is untrusted: it is kept raw (no escaping here; renderers escape),
    only shortened and stripped of control characters.
    """
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if len(cleaned) <= limit:
        return cleaned
    cut = cleaned[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:-")


def example_schemas() -> dict[str, dict[str, Any]]:
    """One schema of each stage with realistic enums, for the grammar-compilation test."""
    from reasoning.prompts import load_intents

    labels = load_intents().labels
    return {"intent": intent_schema(labels[:3]),
            "diverge": diverge_schema(3)}
