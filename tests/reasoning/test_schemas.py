"""Answer schemas: each compiles to a real llama.cpp grammar, and pydantic re-checks answers."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from reasoning.schemas import (DivergeAnswer, IntentAnswer, answer_prefix, clip_text,
                               diverge_schema, example_schemas, intent_schema)


@pytest.mark.parametrize("name", sorted(example_schemas()))
def test_each_schema_compiles_to_its_own_grammar(name: str) -> None:
    """A schema llama.cpp cannot convert silently becomes generic JSON: check the rules exist."""
    from llama_cpp.llama_grammar import LlamaGrammar

    schema = example_schemas()[name]
    grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    text = grammar._grammar
    for key in schema["properties"]:
        assert f'\\"{key}\\"' in text, f"{name}: property {key} missing from the grammar"
    for spec in schema["properties"].values():
        for value in spec.get("enum", []):
            assert value in text, f"{name}: enum value {value!r} missing from the grammar"
    # String length bounds make a stock grammar sampler crawl: only the free-text intents have one.
    assert ("maxLength" in json.dumps(schema)) == (name == "diverge")


def test_diverge_schema_caps_the_array() -> None:
    spec = diverge_schema(3)["properties"]["intents"]
    assert spec["maxItems"] == 3 and spec["minItems"] == 1


def test_http_backend_sends_schemas_without_length_bounds() -> None:
    from reasoning.http_backend import without_max_length

    stripped = without_max_length(diverge_schema(3))
    assert "maxLength" not in json.dumps(stripped)
    assert stripped["properties"]["intents"]["maxItems"] == 3


@pytest.mark.parametrize("text, collapsed", [
    ("family fun family fun family fu", "family fun"),
    ("drama drama drama", "drama"),
    ("space battles", "space battles"),
    ("the star wars saga", "the star wars saga"),
])
def test_repeated_phrases_collapse(text: str, collapsed: str) -> None:
    from reasoning.schemas import collapse_repeats

    assert collapse_repeats(text) == collapsed


@pytest.mark.parametrize("schema, prefix", [
    (intent_schema(["a", "b"]), '{"intent": "'),
    (diverge_schema(2), '{"intents": ["'),
])
def test_answer_prefix_is_the_start_of_every_valid_answer(schema: dict, prefix: str) -> None:
    assert answer_prefix(schema) == prefix


def test_enum_answers_outside_the_options_are_refused() -> None:
    with pytest.raises(ValidationError, match="not one of the options"):
        IntentAnswer.model_validate({"intent": "space opera"}, context={"options": ["romance"]})
    with pytest.raises(ValidationError):
        IntentAnswer.model_validate({"intent": "romance", "extra": 1}, context={"options": ["romance"]})


def test_diverge_answers_are_clipped_deduplicated_and_capped() -> None:
    answer = DivergeAnswer.model_validate(
        {"intents": ["Space Battles", "space battles ", "\x1b[31mred\x1b[0m alert " + "x" * 80]},
        context={"k": 3, "text_limit": 20})
    assert answer.intents[0] == "Space Battles"
    assert len(answer.intents) == 2
    assert "\x1b" not in answer.intents[1] and len(answer.intents[1]) <= 20
    with pytest.raises(ValidationError, match="at most 2"):
        DivergeAnswer.model_validate({"intents": ["a", "b", "c"]}, context={"k": 2})
    with pytest.raises(ValidationError, match="no intent"):
        DivergeAnswer.model_validate({"intents": ["  ", "!!"]}, context={"k": 3})


def test_clip_text_keeps_whole_words_and_drops_control_characters() -> None:
    assert clip_text("more space\nadventures\tnow", 100) == "more space adventures now"
    assert clip_text("more space adventures in the far future", 22) == "more space adventures"
    assert clip_text("<script>alert(1)</script>", 100) == "<script>alert(1)</script>"  # raw: renderers escape
