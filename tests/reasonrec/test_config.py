"""Layered configuration: every section is checked when the config loads (issue #22).

A bad value is one ``ConfigError`` reading ``SOURCE: field 'section.name': ...``,
where SOURCE is the file (or "command-line flags") that brought the value in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reasonrec.config import ConfigError, load_config

# section, TOML body, dotted fields the message must name
BAD_SECTIONS = [
    ("data", "[data]\nmax_len = 0\n", ["data.max_len"]),
    ("data-unknown-key", "[data]\npaht = 'x'\n", ["data.paht"]),
    ("recommend", "[recommend]\nk = 0\n", ["recommend.k"]),
    ("train", "[train]\nlearning_rate = -1\n", ["train.learning_rate"]),
    ("models", "[models.sasrec]\nhidden_size = 0\n", ["models.sasrec.hidden_size"]),
    ("models-unknown-key", "[models.gru4rec]\nhiden_size = 64\n", ["models.gru4rec.hiden_size"]),
    ("models-unknown-model", "[models.bert4rec]\nhidden_size = 64\n", ["models"]),
    ("reasoning", "[reasoning]\ntemperature = -0.5\ntau = 2.0\nl_tru = 0\n",
     ["reasoning.temperature", "reasoning.tau", "reasoning.l_tru"]),
    ("reasoning-unknown-key", "[reasoning]\nthreshold = 0.5\n", ["reasoning.threshold"]),
    ("reasoning-wrong-type", "[reasoning]\nbackend = 'ollama'\n", ["reasoning.backend"]),
    ("fusion", "[fusion]\nusers = 0\n", ["fusion.users"]),
    ("fusion-unknown-variant", "[fusion]\nvariant = 'nope'\n", ["fusion.variant"]),
]


@pytest.mark.parametrize("body, fields", [c[1:] for c in BAD_SECTIONS],
                         ids=[c[0] for c in BAD_SECTIONS])
def test_bad_section_names_file_and_field(tmp_path: Path, body: str, fields: list[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    message = str(info.value)
    assert message.startswith(f"{bad}: field '{fields[0]}': "), message
    for field in fields:
        assert f"field '{field}': " in message, message
    assert "\n" not in message and "Value error" not in message, message


def test_reasoning_flags_layer_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^command-line flags: field 'reasoning\.tau': "):
        load_config(overrides={"reasoning": {"tau": 1.5}})
    # A good file value is kept; a later bad layer is blamed, not the file.
    good = tmp_path / "good.toml"
    good.write_text("[reasoning]\ntau = 0.7\n")
    with pytest.raises(ConfigError, match=r"^command-line flags: field 'reasoning\.k_intents'"):
        load_config(good, {"reasoning": {"k_intents": 0}})


def test_valid_reasoning_section_still_gets_the_studio_data_dir(tmp_path: Path) -> None:
    """Validating at load must not fill in data_dir: reasoning_settings() does, later."""
    layer = tmp_path / "c.toml"
    layer.write_text(f"[data]\ndata_dir = '{tmp_path / 'cache'}'\n[reasoning]\ntau = 0.7\n")
    config = load_config(layer)
    assert config.reasoning == {"tau": 0.7}
    settings = config.reasoning_settings(l_tru=12, k_intents=None)
    assert (settings.tau, settings.l_tru, settings.k_intents) == (0.7, 12, 3)
    assert settings.kb_path == tmp_path / "cache" / "reasoning" / "kb.sqlite"


def test_valid_model_section_is_kept(tmp_path: Path) -> None:
    layer = tmp_path / "c.toml"
    layer.write_text("[models.sasrec]\nhidden_size = 32\n[models.pop]\n")
    assert load_config(layer).models == {"sasrec": {"hidden_size": 32}, "pop": {}}


def test_cli_rejects_bad_reasoning_config_before_any_work(tmp_path: Path, ml100k_dir: Path) -> None:
    """``reasonrec --config BAD data --json``: exit 2, one line naming the file and field."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[reasoning]\ntau = 2.0\n")
    env = {**os.environ, "REASONREC_DATA_DIR": str(ml100k_dir.parent)}
    env.pop("REASONREC_CONFIG", None)
    result = subprocess.run([sys.executable, "-m", "reasonrec.cli", "--config", str(bad),
                             "data", "--json"], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {bad}: field 'reasoning.tau': "), lines[0]
