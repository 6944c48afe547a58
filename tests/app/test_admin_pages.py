"""AppTest flows for the evaluation, knowledge-base and settings pages (real ml-100k)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import keys
from reasoning.kb import KnowledgeBase
from reasonrec.top_k_outcomes import ORDER, label, top_k_outcome
from tests.app.conftest import APP, UseConfig
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)

# A fused model in seconds: tiny GRU4Rec base, LLM-free genre graphs, a small sample.
SMALL_FUSION = """
[train]
epochs = 1
progress = false
[models.gru4rec]
embedding_size = 16
hidden_size = 16
max_len = 20
[fusion]
graphs = "genre"
base_model = "gru4rec"
users = 20
epochs = 1
train_steps = 2
"""


def open_page(page: str, timeout: int = 180) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_settings_validate_and_apply_per_session(ml100k_dir: Path, use_config: UseConfig) -> None:
    use_config(ml100k_dir)
    at = open_page("views/settings.py")
    at.number_input(key="settings_tau").set_value(1.5)   # outside [0, 1]
    at.button[0].click().run()                 # the form's Apply
    assert not at.exception
    assert "reasoning.tau" in at.error[0].value and "Not applied" in at.error[0].value
    assert keys.REASONING_OVERRIDES not in at.session_state

    at.text_input(key="settings_model").set_value("/no/such/model.gguf")
    at.number_input(key="settings_tau").set_value(0.6)
    at.button[0].click().run()
    assert "reasoning.model_path" in at.error[0].value and "/no/such/model.gguf" in at.error[0].value

    at.text_input(key="settings_model").set_value("")
    at.number_input(key="settings_l_tru").set_value(6)
    at.button[0].click().run()
    assert not at.error and at.success[0].value == "Applied to this session."
    assert at.session_state[keys.REASONING_OVERRIDES] == {"tau": 0.6, "l_tru": 6}
    # Other pages read the session's settings: the explorer's window is now 6 items.
    at.switch_page("views/session_explorer.py").run()
    assert not at.exception
    assert any("(the last 6 before the point)" in c.value for c in at.caption)

    at.switch_page("views/settings.py").run()
    at.button(key="settings_reset").click().run()
    assert keys.REASONING_OVERRIDES not in at.session_state


@pytest.mark.llm
@pytest.mark.slow
def test_settings_load_the_llm_and_say_where_its_layers_run(ml100k_dir: Path, use_config: UseConfig) -> None:
    """The offload check reads the backend's typed info (model, layers, threads, load time)."""
    use_config(ml100k_dir)
    at = open_page("views/settings.py")
    at.button(key=keys.SETTINGS_CHECK).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    said = " ".join(m.value for m in at.markdown)
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in said and "of 31 layers (llama.cpp counts" in said
    assert "CPU threads, loaded in" in said


def test_knowledge_base_browse_search_export_and_clear(ml100k_dir: Path, tmp_path: Path,
                                                     use_config: UseConfig) -> None:
    use_config(ml100k_dir)
    kb = KnowledgeBase(tmp_path / "data" / "reasoning" / "kb.sqlite")
    kb.put("intent", "m", "intent-v3", {"item": "Alien (1979)"}, {"intent": "edge of the seat"})
    kb.put("intent", "m", "intent-v3", {"item": "<script>alert(1)</script>"}, {"intent": "x"})
    kb.get("intent", "m", "intent-v3", {"item": "Alien (1979)"})
    kb.close()

    at = open_page("views/knowledge_base.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Entries"] == "2" and metrics["Lookups"] == "1" and metrics["Hit rate"] == "100%"
    assert len(at.dataframe[1].value) == 2          # the stored answers (after the per-kind table)
    at.text_input(key="kb_search").set_value("alien").run()
    assert list(at.dataframe[1].value["answer"]) == ["intent: edge of the seat"]   # words, not JSON

    assert at.button(key="kb_clear").disabled       # needs the confirmation first
    at.checkbox(key="kb_confirm").check().run()
    at.button(key="kb_clear").click().run()
    assert not at.exception and "Removed 2 entries" in at.success[0].value
    at.run()
    assert {m.label: m.value for m in at.metric}["Entries"] == "0"


def no_shipped_bench(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """The Evaluation page's shipped results come from ``folder`` (``<name>.json``)."""
    import reasonrec.studio
    monkeypatch.setattr(reasonrec.studio, "shipped_bench",
                        lambda _dataset, name: folder / f"{name}.json")


def local_bench_only(ml100k_dir: Path, tmp_path: Path, use_config: UseConfig,
                     monkeypatch: pytest.MonkeyPatch) -> Path:
    """The studio on ml-100k with nothing shipped; returns its (new, empty) bench folder."""
    use_config(ml100k_dir, SMALL_FUSION)
    no_shipped_bench(monkeypatch, tmp_path / "nothing-shipped")
    bench = tmp_path / "data" / "bench"
    bench.mkdir(parents=True)
    return bench


def test_evaluation_tables_and_user_outcomes(ml100k_dir: Path, tmp_path: Path,
                                             use_config: UseConfig,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    bench = local_bench_only(ml100k_dir, tmp_path, use_config, monkeypatch)
    metric = {"mean": 0.06, "low": 0.04, "high": 0.08}
    all_metrics = {f"{m}@{k}": metric for m in ("HR", "NDCG", "MRR") for k in (5, 10, 20)}
    (bench / "fusion.json").write_text(json.dumps({
        "sample": {"users": 300, "seed": 2020, "graph_source": "bundle", "base_model": "sasrec"},
        "verdict": "It does not measurably help.",
        "rows": [{"name": "base", "description": "best base", "metrics": all_metrics,
                  "vs_base": None},
                 {"name": "llmrg", "description": "base + LLMRG", "metrics": all_metrics,
                  "vs_base": {k: {"diff": {"mean": 0.0, "low": -0.01, "high": 0.01}}
                              for k in all_metrics}}]}))
    at = open_page("views/evaluation.py", timeout=300)
    # a finding in words, never the bench's developer verdict
    assert any("the interval includes no change" in m.value for m in at.markdown)
    assert "It does not measurably help." not in [m.value for m in at.markdown]
    fusion = at.dataframe[0].value            # models and reasoning tabs: no bench file
    # rows in words (the registry's description), never the variant names
    assert list(fusion["strategy"])[:2] == ["Base model alone (SASRec self-attention sequence "
                                            "model)", "Base + full LLMRG graph"]
    assert fusion["95% interval"][0] == "[0.0400, 0.0800]"
    # the small sample's trained run, which the bench has no row for, is listed from its run
    assert set(fusion["measured by"][2:]) <= {"its training run (no interval yet)"}
    assert any("reasonrec bench models" in i.value for i in at.info)

    users = at.dataframe[1].value
    outcomes = [label(o, 10) for o in ORDER]
    assert len(users) == 20 and set(users["top-10 outcome"]) <= set(outcomes)
    # entered and left the top 10 first, then moves inside it, then the rest
    groups = [outcomes.index(o) for o in users["top-10 outcome"]]
    assert groups == sorted(groups)
    for _, row in users.iterrows():
        assert row["top-10 outcome"] == label(top_k_outcome(row["base rank"],
                                                            row["rank with reasoning"]), 10)
    at.selectbox(key="eval_outcome").set_value(outcomes[3]).run()
    unchanged = at.dataframe[1].value
    assert len(unchanged) and set(unchanged["top-10 outcome"]) == {outcomes[3]}


def test_evaluation_falls_back_to_shipped_results(ml100k_dir: Path, tmp_path: Path,
                                                  use_config: UseConfig,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """No bench on this machine: the shipped results are shown, and said to be shipped."""
    use_config(ml100k_dir, SMALL_FUSION)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    no_shipped_bench(monkeypatch, shipped)
    test = {f"{m}@{k}": 0.05 for m in ("HR", "NDCG", "MRR") for k in (5, 10, 20)}
    (shipped / "models.json").write_text(json.dumps({"models": [
        {"model": "sasrec", "seconds_per_epoch": 3.5, "epochs": 17, "total_seconds": 61.0,
         "peak_rss_mb": 418.0, "test": test}]}))
    (shipped / "reference.json").write_text(json.dumps({"models": [
        {"model": "sasrec", "ours": {"test": test}, "reference": {"test": {**test, "NDCG@10": 0.04},
                                                                   "epochs": 7},
         "ours_minus_reference_ndcg10": 0.01, "reference_converged": False, "meets_bar": True}]}))
    # the GPU side-by-side (`bench reference --device cuda`) is its own table, said to be a GPU's
    (shipped / "reference-cuda.json").write_text(json.dumps({
        "machine": {"device": "cuda", "gpu": "NVIDIA H200", "cpu_count": 16}, "models": [
            {"model": "sasrec", "ours": {"test": test}, "reference": {"test": {**test, "NDCG@10": 0.06},
                                                                       "epochs": 30},
             "ours_minus_reference_ndcg10": -0.01, "reference_converged": True,
             "meets_bar": False}]}))
    at = open_page("views/evaluation.py", timeout=300)
    assert any("Shipped results" in c.value and "a CPU machine" in c.value for c in at.caption)
    assert any("one GPU (NVIDIA H200)" in c.value
               and "bench reference --device cuda" in c.value for c in at.caption)
    assert any("same comparison on one GPU (NVIDIA H200)" in m.value for m in at.markdown)
    gpu = [t.value for t in at.table if "reference NDCG@10" in t.value.columns][1]
    sasrec = "SASRec self-attention sequence model"   # a model in words, not its name
    assert gpu.loc[sasrec, "reference NDCG@10"] == 0.06
    assert "meets bar" not in gpu.columns   # a developer target, not a finding
    tables = [d.value for d in at.dataframe]
    models = next(t for t in tables if "s/epoch" in t.columns)
    assert list(models["model"]) == [sasrec] and models["NDCG@10"][0] == 0.05
    reference = next(t.value for t in at.table if "reference NDCG@10" in t.value.columns)
    assert reference.loc[sasrec, "reference NDCG@10"] == 0.04
    assert not reference.loc[sasrec, "reference converged"]
    assert reference.loc[sasrec, "reference seeds"] == "2020"  # older rows: RecBole's seed
    assert any("reasonrec bench fusion" in i.value for i in at.info)   # nothing shipped for it


def test_evaluation_shows_the_mean_over_seeds(ml100k_dir: Path, tmp_path: Path,
                                              use_config: UseConfig,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A bench over several seeds is shown as one row per model: the mean and its spread."""
    bench = local_bench_only(ml100k_dir, tmp_path, use_config, monkeypatch)

    def test(ndcg: float) -> dict[str, float]:
        return {f"{m}@{k}": ndcg for m in ("HR", "NDCG", "MRR") for k in (5, 10, 20)}
    rows = [{"model": "gru4rec", "seed": seed, "seconds_per_epoch": 4.0, "epochs": 20,
             "total_seconds": 90.0, "peak_rss_mb": 500.0, "test": test(ndcg)}
            for seed, ndcg in ((1, 0.05), (2, 0.07))]
    (bench / "models.json").write_text(json.dumps({"seeds": [1, 2], "models": rows, "summary": [
        {"model": "gru4rec", "seeds": [1, 2], "seconds_per_epoch": 4.0, "total_seconds": 90.0,
         "seconds_to_best": 70.0, "peak_rss_mb": 500.0, "test_mean": test(0.06),
         "test_std": test(0.0141)}]}))
    reference_runs = [{"seed": seed, "test": test(ndcg), "epochs": 30}
                      for seed, ndcg in ((2020, 0.065), (1, 0.055))]
    (bench / "reference.json").write_text(json.dumps({"models": [
        {"model": "gru4rec", "ours": {"test": test(0.07)}, "reference": reference_runs[0],
         "reference_over_seeds": {"seeds": [2020, 1], "test_ndcg10": [0.065, 0.055],
                                  "test_ndcg10_mean": 0.06, "test_ndcg10_std": 0.0071,
                                  "runs": reference_runs},
         "ours_over_seeds": {"test_ndcg10_mean": 0.06}, "ours_minus_reference_ndcg10": 0.0,
         "bar_judged_on": "mean over seeds vs reference mean over 2 seeds",
         "reference_converged": True, "meets_bar": True}]}))
    at = open_page("views/evaluation.py", timeout=300)
    models = next(d.value for d in at.dataframe if "s/epoch" in d.value.columns)
    gru4rec = "GRU4Rec recurrent sequence model"
    assert list(models["model"]) == [gru4rec] and list(models["seeds"]) == [2]
    assert models["NDCG@10"][0] == 0.06 and models["NDCG@10 std"][0] == 0.0141
    assert any("Means over seeds 1, 2" in c.value for c in at.caption)
    reference = next(t.value for t in at.table if "reference NDCG@10" in t.value.columns)
    assert reference.loc[gru4rec, "reference NDCG@10"] == 0.06  # the mean, not seed 2020's
    assert reference.loc[gru4rec, "reference seeds"] == "2020, 1"
