"""Stage 1 helpers: viewer text for prompts and the chain membership rule."""

from __future__ import annotations

from reasoning.chain import Chain, choose_chain, viewer_text
from reasoning.schemas import NEW_CHAIN


def test_viewer_text_is_coarse_so_questions_recur() -> None:
    assert viewer_text({}) == "unknown"
    assert viewer_text({"age:token": "24", "gender": "M", "occupation": "technician",
                        "zip_code": "85711"}) == "age 20s, gender M, occupation technician"
    assert viewer_text({"age": "n/a", "zip_code": "1"}) == "unknown"


def test_an_item_continues_the_latest_chain_of_its_intent_or_starts_one() -> None:
    chains = [Chain("c1", "serious drama", [0, 3]), Chain("c2", "a good laugh", [1]),
              Chain("c3", "serious drama", [2])]
    assert choose_chain("a good laugh", chains) == "c2"
    assert choose_chain("serious drama", chains) == "c1"   # grew at step 3, after c3
    assert choose_chain("romance", chains) == NEW_CHAIN
    assert choose_chain("romance", []) == NEW_CHAIN
