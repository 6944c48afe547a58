"""`reasonrec fusion fit`, `explain`, `fusion bundle` and `bench fusion` on real ml-100k.

They call the console entry point ``main()`` in-process (a subprocess would
pay a torch import per command) and check its output and exit code as
``tests/reasonrec/test_cli.py`` does through a subprocess.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from models.data import default_data_dir
from models.explain_schema import Explanation
from models.graph_sources import BundleGraphSource
from reasonrec.cli import main
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)

CONFIG = """
[train]
epochs = 1
progress = false
device = "cpu"
[models.sasrec]
hidden_size = 8
inner_size = 8
n_layers = 1
n_heads = 1
max_len = 10
[fusion]
graphs = "genre"
users = 16
epochs = 1
train_steps = 2
random_orders = 2
"""


@pytest.fixture(scope="module")
def cli_args(ml100k_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("fusion-cli")
    (folder / "config.toml").write_text(CONFIG)
    # These commands use #3's real text encoder for intent nodes; it reads its
    # converted copy from the data dir's embeddings folder. Link the shared copy
    # (the one tests/reasoning and the studio use) so the GGUF is not converted
    # again here (about 40 s); the intent table itself is encoded and cached in
    # this temporary data dir. Without a shared copy it is converted as usual.
    embeddings = folder / "data" / "reasoning" / "embeddings"
    embeddings.mkdir(parents=True)
    for converted in (default_data_dir() / "reasoning" / "embeddings").glob("encoder-*"):
        (embeddings / converted.name).symlink_to(converted, target_is_directory=True)
    return ["--config", str(folder / "config.toml"), "--data", str(ml100k_dir),
            "--data-dir", str(folder / "data")]


@pytest.fixture(scope="module")
def fitted(cli_args: list[str]) -> dict:
    """`reasonrec fusion fit --json` on the shipped base model (seeded into the data dir)."""
    code, out, err = invoke(*cli_args, "fusion", "fit", "--json")
    assert code == 0, err
    # The shipped SR-GNN run (assets/runs) is the best base: nothing is trained before fusion.
    assert "no saved" not in err and "training llmrg" in err
    return json.loads(out)


def invoke(*args: str) -> tuple[int, str, str]:
    """``main()`` with ``args``: (exit code, stdout, stderr), captured here so module
    fixtures can call it too."""
    argv, stdout, stderr = sys.argv, sys.stdout, sys.stderr
    sys.argv, sys.stdout, sys.stderr = ["reasonrec", *args], io.StringIO(), io.StringIO()
    out, err = sys.stdout, sys.stderr
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv, sys.stdout, sys.stderr = argv, stdout, stderr
    return code, out.getvalue(), err.getvalue()


def test_fit_then_explain_reuses_the_run_and_validates(cli_args: list[str], fitted: dict) -> None:
    assert fitted["variant"] == "llmrg" and fitted["metrics"]["n_users"] == 16
    # The default path's intent table is the real sentence encoder's (384-d all-MiniLM-L6-v2).
    run_dir = Path(fitted["run_dir"])
    kwargs = json.loads((run_dir / "fusion.json").read_text())["kwargs"]
    intents = json.loads((run_dir / "intents.json").read_text())["labels"]
    assert kwargs["text_dim"] == 384 and kwargs["num_intents"] == len(intents) + 1
    code, out, err = invoke(*cli_args, "explain", "--user", "196", "--k", "5", "--json")
    assert code == 0, err
    explanation = Explanation.model_validate_json(out)
    assert explanation.provenance.fusion_run == fitted["run_dir"]   # reused, not retrained
    assert explanation.provenance.graph_backend == "genre-heuristic"
    assert len(explanation.top_k.fused) == len(explanation.items) == 5
    code, out, err = invoke(*cli_args, "explain", "--user", "196", "--k", "3",
                            "--step", "4", "--item", "50")
    assert code == 0, err
    assert "user 196 at step 4 of 10" in out and "Star Wars" in out
    # each explained film's plain sentence, as the app shows it
    (line,) = [line for line in out.splitlines() if ". Star Wars: " in line]  # --item 50
    assert any(opening in line for opening in ("Recommended mainly because", "Supported by",
                                               "Reasoning paths reach",
                                               "No reasoning path reaches")), line


def test_bad_input_is_one_line_and_exit_2(cli_args: list[str]) -> None:
    cases = ((("bench", "fusion", "--json"),
              "error: the fusion bench needs at least 300 users; fusion.users is 16"),
             (("explain", "--user", "no-such-user"), "unknown user 'no-such-user'"),
             (("explain", "--user", "196", "--item", "99999"), "unknown item id '99999'"),
             (("explain", "--user", "196", "--graphs", "/nowhere"), "graph source '/nowhere'"),
             (("fusion", "fit", "--variant", "gpt4"), "unknown variant 'gpt4'"),
             # The store is empty: both fail on the graphs, before any base-model work.
             (("explain", "--user", "196", "--graphs", "store"),
              "no reasoning graph for user 196 (store graphs)"),
             (("fusion", "fit", "--graphs", "store"),
              "16 of 16 sampled users have no reasoning graph"))
    for args, message in cases:
        code, _, err = invoke(*cli_args, *args)
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and message in err, err


def test_bundle_writes_the_sampled_users_graphs(cli_args: list[str], tmp_path: Path) -> None:
    code, out, err = invoke(*cli_args, "fusion", "bundle", "--graphs", "genre",
                            "--out", str(tmp_path / "g.jsonl.gz"))
    assert code == 0, err
    bundle = BundleGraphSource(Path(out.strip()))
    assert len(bundle.users()) == 16
    assert bundle.header["meta"]["backends"] == ["genre-heuristic"]
    assert bundle.get(bundle.users()[0]).graph["dataset"] == "ml-100k"
