"""Stage prompts: LLMRG shape, examples that satisfy their own schemas, the intent vocabulary."""

from __future__ import annotations

import json

import pytest

from reasoning.prompts import (SCORED_PROMPTS, STAGE_PROMPTS, PromptError, load_intents, load_prompt,
                               prompt_versions)
from reasoning.schemas import DivergeAnswer, answer_prefix, diverge_schema

CHAT_PROMPTS = [name for name in STAGE_PROMPTS if name not in SCORED_PROMPTS]


@pytest.mark.parametrize("name", CHAT_PROMPTS)
def test_prompt_has_llmrg_shape(name: str) -> None:
    prompt = load_prompt(name)
    messages = prompt.messages(task_fields={"k": 3}, item="X (1999) [Drama]", options="a, b",
                               viewer="unknown", chains="a", intent="a", chain="[MASK]")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[:3] == prompt.head({"k": 3})
    assert 0 < prompt.max_tokens <= 64   # short answers by design
    assert prompt.version.startswith(f"{name}-v")


def test_examples_are_valid_answers() -> None:
    """A worked example the validators would refuse teaches the model a wrong format."""
    cases = [("diverge", DivergeAnswer, diverge_schema(3), {"k": 3})]
    for name, model, schema, context in cases:
        example = load_prompt(name).example_output
        model.model_validate(json.loads(example), context=context)
        assert example.startswith(answer_prefix(schema)), name


@pytest.mark.parametrize("name", SCORED_PROMPTS)
def test_scored_prompts_end_where_the_option_begins(name: str) -> None:
    """Options are scored as the text after the prompt: each starts with a space, as the
    example answer does, and the prompt ends right before it."""
    prompt = load_prompt(name)
    text = prompt.scored_text(intent="romance", movies="Emma (1996) [Drama, Romance]",
                              item="Emma (1996) [Drama, Romance]", options="romance, serious drama",
                              new="Emma (1996) [Drama, Romance]", previous="Persuasion (1995) [Romance]")
    assert prompt.example_output.startswith(" ") and not prompt.example_output.endswith(" ")
    assert text.endswith(":") and text.startswith(prompt.task)
    assert prompt.example_input + prompt.example_output in text
    assert prompt.max_tokens == 0 and prompt.version.startswith(name.replace("_", "-") + "-v")


def test_missing_prompt_file_is_named() -> None:
    with pytest.raises(PromptError, match="assets/prompts/nope.toml"):
        load_prompt("nope")


def test_prompt_versions_cover_every_stage_and_the_vocabulary() -> None:
    assert set(prompt_versions()) == {*STAGE_PROMPTS, "intents"}


def test_intent_options_put_the_specific_genre_match_first() -> None:
    vocabulary = load_intents()
    assert vocabulary.options_for(("Comedy",))[0] == "a good laugh"
    # "family fun" is for children's and animated films, never for a comedy alone.
    assert "family fun" not in vocabulary.options_for(("Comedy",))
    assert "family fun" not in vocabulary.options_for(("Comedy", "Romance"))
    assert vocabulary.options_for(("Children's", "Comedy"))[0] == "family fun"
    assert vocabulary.options_for(("Animation", "Children's", "Comedy"))[0] == "family fun"
    assert vocabulary.options_for(("Drama", "Sci-Fi", "Thriller"))[0] == "sci-fi wonder"
    assert vocabulary.options_for(("Documentary",)) == ["true stories"]
    # Unknown genres: every intent is possible.
    assert vocabulary.options_for(("Unknown-genre",)) == vocabulary.labels
    assert vocabulary.options_for(("Unknown-genre",), limit=4) == vocabulary.labels[:4]
    drama = vocabulary.options_for(("Drama", "War"))
    assert vocabulary.options_for(("Drama", "War"), limit=2) == drama[:2] and len(drama) > 2
