"""Domain packs and the build config: strict validation with one-line errors naming the key."""

import subprocess
import sys

import pytest
import yaml

from buildbench.config import DOMAINS_DIR, load_domain_pack, make_config
from buildbench.errors import ConfigError


def test_finance_pack_is_complete():
    pack = load_domain_pack("finance")
    assert len(pack.personas) >= 12
    assert {s.id for s in pack.query_styles} == {"keyword", "question", "long_form"}
    assert len(pack.few_shot) >= 12 and pack.tasks and pack.sources.sample


def write_pack(tmp_path, **changes):
    raw = yaml.safe_load((DOMAINS_DIR / "finance.yaml").read_text())
    raw.update(changes)
    path = tmp_path / "pack.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_unknown_top_level_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'shiny_new_option'"):
        load_domain_pack(str(write_pack(tmp_path, shiny_new_option=True)))


def test_unknown_nested_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'generator.temprature'"):
        load_domain_pack(str(write_pack(tmp_path, generator={"temprature": 0.2})))


def test_few_shot_must_name_known_personas(tmp_path):
    raw = yaml.safe_load((DOMAINS_DIR / "finance.yaml").read_text())
    raw["few_shot"][0]["persona"] = "astronaut"
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="'astronaut' is not a persona id"):
        load_domain_pack(str(path))


def test_unknown_domain_lists_bundled_ones():
    with pytest.raises(ConfigError, match="unknown domain 'space'.*finance"):
        load_domain_pack("space")


def test_cli_overrides_and_stage_hash():
    a = make_config("finance", out="o", seed=1)
    b = make_config("finance", out="elsewhere", seed=1)
    c = make_config("finance", out="o", seed=2)
    assert a.config_hash() == b.config_hash() != c.config_hash()  # out is not part of what is built
    assert a.stage_hash(["domain.chunking"]) == c.stage_hash(["domain.chunking"])
    assert a.stage_hash(["seed"]) != c.stage_hash(["seed"])
    with pytest.raises(ConfigError, match="queries_per_chunk"):
        make_config("finance", out="o", queries_per_chunk=0)


def test_cli_bad_pack_is_one_line_and_non_zero(tmp_path):
    path = write_pack(tmp_path, shiny_new_option=True)
    proc = subprocess.run([sys.executable, "-m", "buildbench.cli", "--domain", str(path), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"build-bench: error: {path}: unknown key 'shiny_new_option'"]


def test_help_documents_every_option():
    proc = subprocess.run([sys.executable, "-m", "buildbench.cli", "--help"], capture_output=True, text=True)
    for opt in ("--domain", "--docs", "--out", "--max-docs", "--queries-per-chunk", "--seed", "--model", "--until"):
        assert opt in proc.stdout
