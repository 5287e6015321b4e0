"""Regenerate the generated parts of docs/architecture.md, so they cannot go stale:

- ``stages``: the build's stages in order, with what each reads, writes and is configured by, and whether it
  calls an LLM, from the registry (``buildbench.pipeline.STAGES``), and a flow chart of the datasets between them;
- ``package-map``: one line per module of ``buildbench/``, the first sentence of its docstring.

Each part sits between ``<!-- BEGIN generated:NAME -->`` and ``<!-- END generated:NAME -->``; the text around
them is hand-written and kept.

    python scripts/gen_architecture.py           # rewrite docs/architecture.md
    python scripts/gen_architecture.py --check   # exit 1 when the file is stale (tests/test_architecture.py)
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "buildbench"
DOC = REPO / "docs" / "architecture.md"
SCRIPT = "scripts/gen_architecture.py"


def _cell(text: str) -> str:
    """Text in one markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code_list(items: Iterable[str]) -> str:
    return ", ".join(f"`{i}`" for i in items) or "–"


def _source_path(fn) -> str:
    module = getattr(fn, "__module__", "") or ""
    path = PACKAGE.parent.joinpath(*module.split(".")).with_suffix(".py")
    if not path.exists():
        path = path.with_suffix("") / "__init__.py"
    return path.relative_to(REPO).as_posix()


def stages_section(stages) -> str:
    """The stage table and a flow chart of the datasets passed between stages."""
    producer = {out: st.name for st in stages for out in st.outputs}
    lines = ["| # | stage | what it does | reads | writes | LLM | config keys | code |",
             "|---|---|---|---|---|---|---|---|"]
    for i, st in enumerate(stages, 1):
        path = _source_path(st.fn)
        code = f"[`{path}`](../{path})" + (" (per shard)" if st.kind == "map" else "")
        lines.append(f"| {i} | `{st.name}` | {_cell(st.description)} | {_code_list(st.inputs)} | "
                     f"{_code_list(st.outputs)} | {'yes' if st.needs_llm else 'no'} | "
                     f"{_code_list(st.config_keys)} | {code} |")
    edges: dict[tuple[str, str], list[str]] = {}
    for st in stages:
        for name in st.inputs:
            if name in producer:
                edges.setdefault((producer[name], st.name), []).append(name)
    chart = ["```mermaid", "flowchart TD"]
    chart += [f"    {st.name}[\"{st.name}\"]" for st in stages]
    chart += [f"    {a} -->|{', '.join(names)}| {b}" for (a, b), names in edges.items()]
    llm = [st.name for st in stages if st.needs_llm]
    if llm:
        chart += ["    classDef llm fill:#fde6c8,stroke:#b86b00", f"    class {','.join(llm)} llm"]
    chart.append("```")
    legend = ("Stages that call an LLM are orange in the chart. An arrow carries the datasets (Parquet, under "
              "`<out>/data/`) the later stage declares as inputs; a stage reads nothing else.")
    return "\n".join(lines) + "\n\n" + "\n".join(chart) + "\n\n" + legend


def summary(path: Path) -> str:
    """The first sentence of a module's docstring (its first paragraph when that has no sentence end)."""
    source = path.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source))
    if not doc:
        return "(empty package marker)" if not source.strip() else "(no docstring)"
    para = " ".join(doc.split("\n\n")[0].split())
    end = re.search(r"(?<=[.!?])\s", para)
    return para[: end.start()] if end else para


def package_map_section(package: Path = PACKAGE) -> str:
    lines = ["| module | what it is |", "|---|---|"]
    files = sorted(package.rglob("*.py"), key=lambda p: (p.parent.relative_to(package).parts, p.name != "__init__.py",
                                                         p.name))
    for path in files:
        rel = path.relative_to(package.parent).as_posix()
        lines.append(f"| [`{rel}`](../{rel}) | {_cell(summary(path))} |")
    return "\n".join(lines)


def sections() -> dict[str, str]:
    from buildbench.pipeline import STAGES

    return {"stages": stages_section(STAGES), "package-map": package_map_section()}


def render(text: str, parts: dict[str, str] | None = None) -> str:
    """``text`` with every generated part replaced by its current content; a missing marker is an error."""
    parts = sections() if parts is None else parts
    for name, body in parts.items():
        begin, end = f"<!-- BEGIN generated:{name} -->", f"<!-- END generated:{name} -->"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise SystemExit(f"{DOC}: no '{begin}' ... '{end}' markers; add them where the {name} part goes")
        note = f"<!-- made by {SCRIPT} from the code: edit the code, then run the script -->"
        text = pattern.sub(lambda _: f"{begin}\n{note}\n\n{body}\n\n{end}", text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/architecture.md is stale")
    args = parser.parse_args(argv)
    text = DOC.read_text(encoding="utf-8")
    fresh = render(text)
    if args.check:
        if fresh != text:
            print(f"{DOC.relative_to(REPO)} is stale: run python {SCRIPT}", file=sys.stderr)
            return 1
        return 0
    if fresh != text:
        from buildbench.engine.rundir import atomic_write_text

        atomic_write_text(DOC, fresh)
    print(f"{DOC.relative_to(REPO)} {'updated' if fresh != text else 'already current'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
