"""The shape of the buildbench package: no import cycle, no module over 500 lines, no private name imported
from another module, and docs/architecture.md in step with the code.

The import graph is read from the source with ``ast`` (every import statement, those inside functions too, so
a cycle that only closes at call time counts), relative imports resolved. Importing ``a.b.c`` from outside
``a.b`` also runs ``a/b/__init__.py``, so it depends on that package too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import buildbench

REPO = Path(__file__).resolve().parent.parent
PACKAGE = Path(buildbench.__file__).resolve().parent
MAX_LINES = 500


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under ``package`` (a package is named by its __init__)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str | None]]:
    """(module, name or None) for every import of a module of ``modules`` in ``path``; ``from package import
    module`` gives (package.module, None), ``from module import thing`` gives (module, "thing")."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    out.append((f"{base}.{alias.name}", None))
                else:
                    out.append((base, alias.name))
    return [(module, imported) for module, imported in out if module in modules]


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph = {}
    for name, path in modules.items():
        deps = {module for module, _ in imports_of(name, path, modules)}
        for dep in list(deps):  # the packages an import runs on the way, unless they hold the importer
            parts = dep.split(".")
            deps |= {p for p in (".".join(parts[:i]) for i in range(2, len(parts)))
                     if p in modules and not (name == p or name.startswith(p + "."))}
        graph[name] = deps - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One import cycle per strongly connected component of more than one module, as a path that returns to its
    start (``[a, b, a]``): Tarjan for the components, then a shortest path back to the first module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    found = []
    for component in components:
        start, members = component[0], set(component)
        paths = {w: [start, w] for w in sorted(graph[start] & members)}
        frontier = list(paths)
        while start not in paths:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & members):
                    if w not in paths:
                        paths[w] = paths[v] + [w]
                        nxt.append(w)
            frontier = nxt
        found.append(paths[start])
    return found


def private_imports(modules: dict[str, Path]) -> list[str]:
    """Every ``from module import _name`` across modules (a dunder such as __version__ is public)."""
    out = []
    for name, path in modules.items():
        for module, imported in imports_of(name, path, modules):
            if imported and imported.startswith("_") and not imported.startswith("__") and module != name:
                out.append(f"{name} imports {module}.{imported}")
    return out


MODULES = module_files(PACKAGE)
GRAPH = import_graph(MODULES)


def test_the_graph_reads_relative_function_level_and_package_imports(tmp_path: Path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .b import thing\n")
    (pkg / "a.py").write_text("def f():\n    from .sub import c\n    return c\n")
    (pkg / "sub" / "b.py").write_text("from .. import a\nthing = 1\n")
    (pkg / "sub" / "c.py").write_text("from ._hidden import _secret\nimport pkg.sub.b\n")
    (pkg / "sub" / "_hidden.py").write_text("_secret = 1\n")
    modules = module_files(pkg)
    graph = import_graph(modules)
    assert graph["pkg.a"] == {"pkg.sub.c", "pkg.sub"}  # the function-level import, and the package it runs
    assert graph["pkg.sub.b"] == {"pkg.a"} and graph["pkg.sub"] == {"pkg.sub.b"}
    assert graph["pkg.sub.c"] == {"pkg.sub._hidden", "pkg.sub.b"}  # its own package is already running
    assert cycles(graph) == [["pkg.a", "pkg.sub", "pkg.sub.b", "pkg.a"]]
    assert private_imports(modules) == ["pkg.sub.c imports pkg.sub._hidden._secret"]


def test_the_graph_sees_the_layering():
    assert "buildbench.tasks.layout" in GRAPH["buildbench.evaluation.evaluate"]
    assert "buildbench.tasks.metadata" in GRAPH["buildbench.tasks.mteb_task"]
    assert "buildbench.report.html" in GRAPH["buildbench.report.run"]
    # layout is the bottom of tasks/: it imports no other task module
    assert not {m for m in GRAPH["buildbench.tasks.layout"] if m.startswith("buildbench.tasks")}
    # task writing and compilation never reach up into evaluation or the report
    assert not {m for name in GRAPH if name.startswith("buildbench.tasks") for m in GRAPH[name]
                if m.startswith(("buildbench.evaluation", "buildbench.report"))}


def test_no_import_cycle():
    found = [" -> ".join(c) for c in cycles(GRAPH)]
    assert not found, "import cycles in buildbench/:\n  " + "\n  ".join(found)


def test_no_module_over_500_lines():
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()}
    big = [f"{name}: {n} lines" for name, n in sorted(sizes.items(), key=lambda kv: -kv[1]) if n > MAX_LINES]
    assert not big, f"modules over {MAX_LINES} lines (split them by concern):\n  " + "\n  ".join(big)


def test_no_private_name_imported_across_modules():
    found = private_imports(MODULES)
    assert not found, "private names imported from another module (make them public or move them):\n  " + \
        "\n  ".join(found)


def _generator():
    """scripts/gen_architecture.py, loaded as a module (scripts/ is not a package)."""
    import importlib.util

    path = REPO / "scripts" / "gen_architecture.py"
    spec = importlib.util.spec_from_file_location("gen_architecture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_architecture_page_is_current():
    gen = _generator()
    text = gen.DOC.read_text(encoding="utf-8")
    assert gen.render(text) == text, "docs/architecture.md is stale: run python scripts/gen_architecture.py"


def test_architecture_page_shows_the_registry_and_every_module():
    from buildbench.pipeline import STAGES

    gen = _generator()
    table = gen.stages_section(STAGES)
    rows = [line for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split(" | ")[1].strip("`") for row in rows] == [st.name for st in STAGES]  # registry order
    for row, st in zip(rows, STAGES):
        cells = row.split(" | ")
        assert cells[3] == (", ".join(f"`{i}`" for i in st.inputs) or "–")
        assert cells[4] == ", ".join(f"`{o}`" for o in st.outputs)
        assert cells[5] == ("yes" if st.needs_llm else "no")
    producers = {o: st.name for st in STAGES for o in st.outputs}
    for st in STAGES:  # every declared input arrives by an arrow from the stage that writes it
        for name in st.inputs:
            assert any(line.startswith(f"    {producers[name]} -->|") and name in line and line.endswith(f" {st.name}")
                       for line in table.splitlines()), (name, st.name)
    pages = gen.package_map_section()
    for name, path in MODULES.items():
        assert f"[`{path.relative_to(REPO).as_posix()}`]" in pages, name

    # A changed stage makes the page stale: render replaces what is between the markers.
    text = gen.DOC.read_text(encoding="utf-8")
    fresh = gen.render(text)
    edited = fresh.replace(STAGES[0].description, "something else")
    assert edited != fresh and gen.render(edited) == fresh


# Strings that equal a stage name but mean something else: the judge model role is named by its config field
# (domain.judge), as every role is; a published card's provenance key for the judge model.
NOT_STAGE_NAMES = {("buildbench.stages.common", "judge"), ("buildbench.hub.card", "judge")}


def stage_name_literals(modules: dict[str, Path], names: set[str]) -> list[str]:
    """Every string constant equal to a stage name, outside the registry (``buildbench.pipeline``); the names in
    ``__all__`` are identifiers (a function may be named after the stage that calls it)."""
    out = []
    for name, path in modules.items():
        if name == "buildbench.pipeline":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        exported = {id(elt) for node in ast.walk(tree) if isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
                    for elt in ast.walk(node.value)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in exported \
                    and (name, node.value) not in NOT_STAGE_NAMES:
                out.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    return out


def test_no_stage_name_literal_outside_the_registry():
    from buildbench.pipeline import STAGES

    found = stage_name_literals(MODULES, {st.name for st in STAGES})
    assert not found, ("stage names spelled as strings outside buildbench/pipeline.py (use ctx.stage, the "
                       "registry's constants, or pass the name in):\n  " + "\n  ".join(found))
