"""One validated configuration: a domain pack (``buildbench.domain_pack``) plus CLI overrides, composed into
a BuildConfig; loading packs from YAML with bounded depth.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

import yaml
from pydantic import ValidationError, field_validator

from .domain_pack import DomainPack, EngineConfig, GeneratorConfig, Strict, at_least
from .errors import ConfigError
from .redact import redact_text

DOMAINS_DIR = Path(__file__).parent / "domains"

# A domain pack is a handful of levels deep; bounds checked on the YAML events, before anything is built from
# them (PyYAML's composer recurses once per level, and aliases can expand a small file without end).
MAX_YAML_DEPTH = 50
MAX_YAML_VALUES = 1_000_000


class BuildConfig(Strict):
    """Everything a run depends on. Its hash names what a run directory was built from."""

    domain: DomainPack
    docs: list[str] = []
    out: str
    max_docs: Optional[int] = None
    queries_per_chunk: int = 2
    max_queries: Optional[int] = None  # query budget: only a seeded sample of chunks gets queries
    seed: int = 0
    # Where the map stages run (the pack's ``engine`` with CLI overrides, see make_config). Left out of every
    # hash: a run built locally and one built on Ray are the same run.
    engine: EngineConfig = EngineConfig()

    _positive = field_validator("queries_per_chunk", "max_docs", "max_queries")(at_least(1))

    def stage_hash(self, keys: list[str]) -> str:
        """Hash of the config keys one stage reads, so changing an unrelated knob keeps its output."""
        data = self.model_dump(mode="json", by_alias=True)
        picked = {k: _dig(data, k) for k in sorted(keys)}
        return hashlib.sha256(json.dumps(picked, sort_keys=True).encode()).hexdigest()[:16]

    def config_hash(self) -> str:
        data = self.model_dump(mode="json", by_alias=True)
        data.pop("out")
        data.pop("engine")
        data["domain"].pop("engine", None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _dig(data: dict, dotted: str):
    cur = data
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


# The CLI options behind config keys, so an error names what the user typed.
CLI_OPTIONS = {
    "max_docs": "--max-docs", "max_queries": "--max-queries", "queries_per_chunk": "--queries-per-chunk",
    "seed": "--seed", "downsample.corpus_size": "--corpus-size", "generator.base_url": "--base-url",
    "generator.model": "--model", "generator.backend": "--generator",
    "engine.kind": "--engine", "engine.address": "--ray-address", "engine.workers": "--workers",
}


def _format_validation(err: ValidationError, where: str, prefix: str = "") -> str:
    first = err.errors()[0]
    loc = prefix + (".".join(str(p) for p in first["loc"]) or "(root)")
    if first["type"] == "extra_forbidden":
        return f"{where}: unknown key '{loc}'"
    msg = first["msg"].removeprefix("Value error, ")
    if where == "options" and loc in CLI_OPTIONS:
        loc = f"{CLI_OPTIONS[loc]} ({loc})"
    # Echo the offending value only through redaction: it may be a URL with credentials.
    return redact_text(f"{where}: {loc}: {msg}")


def load_domain_pack(name_or_path: str) -> DomainPack:
    """A bundled pack by name (``finance``) or a user's pack by path (``my.yaml``)."""
    path = Path(name_or_path)
    if not (path.suffix in {".yaml", ".yml"} or path.exists()):
        path = DOMAINS_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            known = sorted(p.stem for p in DOMAINS_DIR.glob("*.yaml"))
            raise ConfigError(f"unknown domain '{name_or_path}' (bundled: {', '.join(known)}; or pass a .yaml path)")
    try:
        text = path.read_text(encoding="utf-8")
        _check_yaml_shape(text, path)
        raw = yaml.safe_load(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: domain pack not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:  # the shape check should have caught it; never a traceback
        raise ConfigError(f"{path}: nested too deeply to read") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a domain pack must be a mapping")
    try:
        return DomainPack.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, str(path))) from None


def _check_yaml_shape(text: str, path: Path) -> None:
    """Refuse YAML nested deeper than MAX_YAML_DEPTH or expanding (through aliases) to more than
    MAX_YAML_VALUES values, from its event stream: PyYAML's parser keeps its own stack, so this pass does not
    recurse, while building the document would, once per level."""
    depth = 0
    frames: list[list] = []  # per open collection: [anchor, values inside]
    sizes: dict[str, int] = {}  # anchor -> values of its node, once closed
    total = 0

    def add(n: int) -> None:
        nonlocal total
        if frames:
            frames[-1][1] += n
        else:
            total += n
        if total + sum(f[1] for f in frames) > MAX_YAML_VALUES:
            raise ConfigError(f"{path}: expands to more than {MAX_YAML_VALUES} values through aliases")

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ConfigError(f"{path}: nested deeper than {MAX_YAML_DEPTH} levels (a domain pack needs a few)")
            frames.append([event.anchor, 1])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            anchor, n = frames.pop()
            if anchor:
                sizes[anchor] = n
            add(n)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                sizes[event.anchor] = 1
            add(1)
        elif isinstance(event, yaml.AliasEvent):
            add(sizes.get(event.anchor, 1))


def sample_dir(pack: DomainPack) -> Optional[Path]:
    if not pack.sources.sample:
        return None
    return DOMAINS_DIR / pack.sources.sample


def make_config(domain: str, out: Optional[str] = None, generator: Optional[dict] = None,
                pack_overrides: Optional[dict] = None, engine: Optional[dict] = None, **overrides) -> BuildConfig:
    """The pack, then CLI overrides: build options, ``generator`` keys (backend, model, base_url, ...),
    ``pack_overrides`` as dotted pack keys (``{"downsample.corpus_size": 500}``) and ``engine`` keys (kind,
    address, workers) over the pack's ``engine``. None values are ignored."""
    pack = load_domain_pack(domain)
    values = {k: v for k, v in overrides.items() if v is not None}
    gen = {k: v for k, v in (generator or {}).items() if v is not None}
    dotted = {k: v for k, v in (pack_overrides or {}).items() if v is not None}
    try:
        if dotted:
            data = pack.model_dump(by_alias=True, exclude_unset=True)
            for key, value in dotted.items():
                *parents, leaf = key.split(".")
                node = data
                for part in parents:
                    node = node.setdefault(part, {})
                node[leaf] = value
            pack = DomainPack.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, "options")) from None
    try:
        if gen:
            merged = pack.generator.model_dump(exclude_unset=True) | gen
            pack = pack.model_copy(update={"generator": GeneratorConfig.model_validate(merged)})
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, "options", prefix="generator.")) from None
    try:
        chosen = {k: v for k, v in (engine or {}).items() if v is not None}
        base = pack.engine.model_dump(exclude_unset=True) if pack.engine else {}
        values["engine"] = EngineConfig.model_validate(base | chosen)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, "options", prefix="engine.")) from None
    try:
        return BuildConfig(domain=pack, out=out or pack.name, **values)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, "options")) from None
