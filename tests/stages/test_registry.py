"""The registry is the truth: every stage's config keys exist in BuildConfig and cover what its module reads
(derived from the code with ``ast``, so they cannot drift), a stage reads only the datasets it declares, and
each stage's body lives in the module named after it."""

from __future__ import annotations

import ast
import importlib
import inspect
import typing
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import BaseModel

from buildbench.config import BuildConfig
from buildbench.engine.rundir import RunDir
from buildbench.engine.stage import StageContext
from buildbench.errors import ConfigError
from buildbench.pipeline import STAGES, build, stages_until
from buildbench.stages import common

# Properties of the config models, and the fields they read.
PROPERTIES = {"domain.query_language": ("domain.recipes.query_language", "domain.language")}
# Parameter names that hold a part of the config wherever they appear (a check's ``pack``, ``resolve_sources``'s
# ``config``).
PARAMETERS = {"pack": "domain", "config": ""}


def _model(annotation):
    """The pydantic model a field holds (through Optional), or None for a leaf (str, int, list, ...)."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if inspect.isclass(candidate) and issubclass(candidate, BaseModel):
            return candidate
    return None


def config_path(dotted: str) -> str:
    """``dotted`` cut after its first leaf field (``domain.filters.length.min_words`` stays whole, the items of a
    list are not followed); KeyError for a name that is no field of BuildConfig."""
    if dotted in PROPERTIES:
        return dotted
    model, parts = BuildConfig, dotted.split(".")
    for i, part in enumerate(parts):
        if model is None:
            return ".".join(parts[:i])
        if part not in model.model_fields:
            if f"{'.'.join(parts[:i + 1])}" in PROPERTIES:
                return ".".join(parts[:i + 1])
            raise KeyError(f"{dotted}: {part} is not a field of {model.__name__}")
        model = _model(model.model_fields[part].annotation)
    return dotted


def _chain(node: ast.AST) -> tuple[str | None, list[str]]:
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return (node.id if isinstance(node, ast.Name) else None), attrs[::-1]


def _resolve(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The config path an expression names (``ctx.config.domain`` -> "domain", ``pack.filters`` with pack an
    alias of the domain -> "domain.filters"; "" is the whole config), or None."""
    base, attrs = _chain(node)
    if base == "ctx" and attrs[:1] == ["config"]:
        return ".".join(attrs[1:])
    if base in aliases:
        return ".".join(p for p in [aliases[base], *attrs] if p)
    return None


def config_reads(source: str) -> tuple[set[str], set[str]]:
    """(config paths a module reads, model roles it builds an LLM for)."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    reads: set[str] = set()
    roles: set[str] = set()

    def scope(node: ast.AST, inherited: dict[str, str]) -> None:
        aliases = dict(inherited)
        args = node.args.args + node.args.kwonlyargs if isinstance(node, (ast.FunctionDef, ast.Lambda)) else []
        aliases.update({a.arg: PARAMETERS[a.arg] for a in args if a.arg in PARAMETERS})
        body = [n for n in ast.walk(node) if _owner(n) is node]
        alias_values = set()
        for n in body:  # aliases first: `pack = ctx.config.domain`, `pack, seed = ...`, `cfg = pack.filters`
            if isinstance(n, ast.Assign) and len(n.targets) == 1:
                pairs = ([(n.targets[0], n.value)] if isinstance(n.targets[0], ast.Name) else
                         list(zip(n.targets[0].elts, n.value.elts))
                         if isinstance(n.targets[0], ast.Tuple) and isinstance(n.value, ast.Tuple) else [])
                for target, value in pairs:
                    path = _resolve(value, aliases) if isinstance(target, ast.Name) else None
                    if path is not None and _model_at(path):
                        aliases[target.id] = path
                        alias_values.add(value)
        for n in body:
            if isinstance(n, ast.Attribute) and not isinstance(parents.get(n), ast.Attribute) \
                    and n not in alias_values:
                path = _resolve(n, aliases)
                if path:
                    reads.add(config_path(path))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "make_llm":
                role = n.args[1] if len(n.args) > 1 else None
                roles.add(getattr(common, role.id) if isinstance(role, ast.Name) else
                          role.value if isinstance(role, ast.Constant) else common.QUERY_WRITER)
        for n in body:
            if isinstance(n, (ast.FunctionDef, ast.Lambda)) and n is not node:
                scope(n, aliases)

    def _owner(n: ast.AST) -> ast.AST:
        """The innermost function (or the module) a node belongs to; a function's own node belongs to its parent."""
        p = parents.get(n)
        while p is not None and not isinstance(p, (ast.FunctionDef, ast.Lambda, ast.Module)):
            p = parents.get(p)
        return p if p is not None else n

    scope(tree, {})
    return reads, roles


def _model_at(path: str) -> bool:
    """Whether a config path names a part of the config that has fields (the config, the pack, a section)."""
    model = BuildConfig
    for part in [p for p in path.split(".") if p]:
        field = model.model_fields.get(part)
        model = _model(field.annotation) if field else None
        if model is None:
            return False
    return True


def covered(path: str, keys: tuple[str, ...]) -> bool:
    """A read is covered by a key that holds it; an object passed on whole (the pack to a recipe) by the keys
    declared for what the callee reads, which must at least be inside it."""
    expanded = PROPERTIES.get(path, (path,))
    return all(any(p == k or p.startswith(k + ".") or k.startswith(p + ".") for k in keys) for p in expanded)


def _module(stage):
    return importlib.import_module(stage.fn.__module__)


@pytest.mark.parametrize("stage", STAGES, ids=lambda st: st.name)
def test_every_config_key_is_a_field_of_build_config(stage):
    assert stage.config_keys == _module(stage).CONFIG_KEYS
    for key in stage.config_keys:
        assert config_path(key) == key, f"{stage.name}: {key} goes past a leaf field"  # KeyError: no such field
    with pytest.raises(KeyError, match="minwords is not a field of LengthConfig"):
        config_path("domain.filters.length.minwords")


@pytest.mark.parametrize("stage", STAGES, ids=lambda st: st.name)
def test_config_keys_cover_what_the_stage_module_reads(stage):
    module = _module(stage)
    reads, roles = config_reads(Path(module.__file__).read_text(encoding="utf-8"))
    missing = sorted(p for p in reads if not covered(p, stage.config_keys))
    missing += sorted(k for role in roles for k in common.llm_keys(role) if not covered(k, stage.config_keys))
    assert not missing, f"{stage.name} reads {missing}, which its CONFIG_KEYS do not declare"


def test_each_stage_lives_in_the_module_named_after_it():
    for st in STAGES:
        assert st.fn.__module__ == f"buildbench.stages.{st.name}"
        assert st.fn.__name__ == ("run_shard" if st.kind == "map" else "run")


def test_the_derivation_sees_aliases_parameters_properties_and_roles():
    source = '''
def run(ctx):
    cfg = ctx.config
    pack, seed = cfg.domain, cfg.seed
    f = pack.filters
    if f.length.min_words and pack.query_language:
        make_llm(ctx, JUDGE)
    x = ctx.config.domain.mining.enabled
    def info():
        return pack.name
    check = lambda pack: pack.recipes.judge
    return ctx.config.queries_per_chunk, make_llm(ctx)
'''
    reads, roles = config_reads(source)
    assert reads == {"seed", "domain.filters.length.min_words", "domain.query_language", "domain.mining.enabled",
                     "domain.name", "domain.recipes.judge", "queries_per_chunk"}
    assert roles == {common.JUDGE, common.QUERY_WRITER}
    assert not covered("domain.mining.enabled", ("domain.repair",))
    assert covered("domain.query_language", ("domain.recipes", "domain.language"))
    assert not covered("domain.query_language", ("domain.language",))


def test_the_drift_the_issue_found_is_declared():
    keys = {st.name: st.config_keys for st in STAGES}
    evaluate, assemble = STAGES[-1], STAGES[-2]
    assert "seed" in keys[evaluate.name]
    assert {"domain.mining", "queries_per_chunk", "domain.generator"} <= set(keys[assemble.name])
    # assemble_task reads the documents (clustering labels) and the judge's calibration: both declared inputs
    assert {"documents_clean", "judge_calibration"} <= set(assemble.inputs)
    repair = next(st for st in STAGES if "judge_calibration" in st.outputs)
    assert repair.name == "repair_qrels"


def test_a_stage_cannot_read_an_undeclared_dataset(tmp_path):
    rundir = RunDir(tmp_path / "run")
    rundir.write("documents", pa.table({"id": ["a"], "text": ["x"]}))
    rundir.write("documents_clean", pa.table({"id": ["a"], "text": ["x"]}))
    import logging

    ctx = StageContext(config=None, rundir=rundir, stage="chunk", log=logging.getLogger("t"),
                       inputs=("documents_clean",))
    assert ctx.read("documents_clean")["id"].to_pylist() == ["a"]
    with pytest.raises(ConfigError, match=r"stage 'chunk' reads dataset 'documents', which it does not declare "
                                          r"as an input \(its inputs: documents_clean\)"):
        ctx.read("documents")
    with pytest.raises(ConfigError, match="'documents'"):
        list(ctx.iter_shards("documents"))


def test_until_stops_after_a_stage_and_names_the_stages_for_an_unknown_one(tmp_path):
    names = [st.name for st in STAGES]
    assert [st.name for st in stages_until(names[3])] == names[:4]
    assert stages_until(None) == STAGES
    from buildbench.config import make_config

    cfg = make_config("finance", out=str(tmp_path / "run"), docs=[str(tmp_path)])
    with pytest.raises(ConfigError, match=r"unknown stage 'chunks' \(stages: ingest, filter_documents, chunk, "):
        build(cfg, until="chunks", progress=False)
    assert not (tmp_path / "run").exists()  # refused before the run folder is made
