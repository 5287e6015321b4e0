"""The ``engine`` block: from a domain pack or the CLI, in no hash, and the one-line error without ray."""

from __future__ import annotations

import sys

import pytest
import yaml

from buildbench.cli import main
from buildbench.config import DOMAINS_DIR, make_config
from buildbench.errors import ConfigError


def test_the_pack_s_engine_is_taken_and_the_cli_overrides_it(tmp_path):
    pack = yaml.safe_load((DOMAINS_DIR / "finance.yaml").read_text(encoding="utf-8"))
    pack["engine"] = {"kind": "ray", "workers": 3, "address": "auto"}
    path = tmp_path / "pack.yaml"
    path.write_text(yaml.safe_dump(pack), encoding="utf-8")
    cfg = make_config(str(path), out=str(tmp_path / "run"))
    assert (cfg.engine.kind, cfg.engine.workers, cfg.engine.address, cfg.engine.retries) == ("ray", 3, "auto", 1)
    cfg = make_config(str(path), out=str(tmp_path / "run"), engine={"kind": "local", "workers": 4, "address": None})
    assert (cfg.engine.kind, cfg.engine.workers, cfg.engine.address) == ("local", 4, "auto")
    assert make_config("finance", out=str(tmp_path / "run")).engine.kind == "local"


def test_the_engine_changes_no_hash(tmp_path):
    local = make_config("finance", out=str(tmp_path / "a"))
    on_ray = make_config("finance", out=str(tmp_path / "a"),
                         engine={"kind": "ray", "workers": 3, "address": "ray://head:10001"})
    assert on_ray.engine.kind == "ray" and on_ray.engine.workers == 3
    assert local.config_hash() == on_ray.config_hash()
    keys = ["seed", "domain.generator", "domain.chunking", "domain.filters"]
    assert local.stage_hash(keys) == on_ray.stage_hash(keys)


def test_a_bad_worker_count_names_the_option(tmp_path):
    with pytest.raises(ConfigError, match=r"^options: --workers \(engine.workers\): must be at least 1 \(got 0\)$"):
        make_config("finance", out=str(tmp_path / "run"), engine={"workers": 0})


def test_engine_ray_without_ray_fails_in_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # what import gives in an environment without the extra
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The committee kept the federal funds rate at 5 percent in June 2024.")
    code = main(["--domain", "finance", "--docs", str(docs), "--out", str(tmp_path / "run"), "--engine", "ray",
                 "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 7
    assert err.splitlines() == [err] and err.endswith("--engine ray needs the 'ray' package: "
                                                      "pip install 'buildbench[ray]'")
    assert not (tmp_path / "run" / "data").exists()  # refused before any stage ran
