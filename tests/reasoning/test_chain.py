"""Stage 1 helpers: viewer text for prompts and the chain question's options."""

from __future__ import annotations

from reasoning.chain import Chain, chain_options, viewer_text
from reasoning.schemas import NEW_CHAIN


def test_viewer_text_is_coarse_so_questions_recur() -> None:
    assert viewer_text({}) == "unknown"
    assert viewer_text({"age:token": "24", "gender": "M", "occupation": "technician",
                        "zip_code": "85711"}) == "age 20s, gender M, occupation technician"
    assert viewer_text({"age": "n/a", "zip_code": "1"}) == "unknown"


def test_chain_options_put_the_plausible_answer_first_and_ignore_recency() -> None:
    chains = [Chain("c1", "serious drama", [0]), Chain("c2", "a good laugh", [1]),
              Chain("c3", "serious drama", [2])]
    assert chain_options(chains, "a good laugh") == ["a good laugh", "serious drama", NEW_CHAIN]
    assert chain_options(chains, "romance") == [NEW_CHAIN, "a good laugh", "serious drama"]
    # Same intents in another order: the same question (so the KB can reuse it).
    assert chain_options(list(reversed(chains)), "romance") == chain_options(chains, "romance")
