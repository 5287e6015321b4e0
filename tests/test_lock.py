"""requirements.lock, the exact versions README's install command installs, agrees with pyproject.toml.

scripts/lock.sh regenerates it with `uv pip compile`; these tests fail when someone edits the dependencies in
pyproject.toml (or constraints.txt) without rerunning it, or edits the lock by hand.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
LOCKED_EXTRAS = ("local", "eval", "openai", "report", "ray", "dev")  # what `.[all,dev]` installs; not gpu
# The platform the lock is resolved for (scripts/lock.sh: --python-version 3.11 --python-platform x86_64 Linux).
ENVIRONMENT = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
               "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
               "implementation_name": "cpython", "platform_python_implementation": "CPython"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)\s*$")


def declared() -> list[tuple[str, Requirement]]:
    """(where, requirement) for the base dependencies and every locked extra, self-references expanded."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    out = [("dependencies", Requirement(r)) for r in project["dependencies"]]
    todo, seen = list(LOCKED_EXTRAS) + ["all"], set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in extras[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == canonicalize_name(project["name"]):
                todo.extend(req.extras)  # buildbench[local,eval,...]
            else:
                out.append((f"[{extra}]", req))
    return [(where, r) for where, r in out if r.marker is None or r.marker.evaluate({**ENVIRONMENT, "extra": ""})]


def lock() -> tuple[list[str], dict[str, str], dict[str, list[str]]]:
    """(header comment lines, name -> pinned version, name -> what it is there for (uv's "# via" notes))."""
    lines = LOCK.read_text().splitlines()
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    pins: dict[str, str] = {}
    via: dict[str, list[str]] = {}
    current = None
    for line in lines[len(header):]:
        m = PIN.match(line)
        if m:
            current = canonicalize_name(m[1])
            assert current not in pins, f"{m[1]} is pinned twice"
            pins[current] = m[2]
            via[current] = []
        elif line.strip().startswith("#") and current:
            note = line.strip().lstrip("#").strip()
            note = note.removeprefix("via").strip()
            if note:
                via[current].append(note)
        elif line.strip():
            raise AssertionError(f"requirements.lock: a line that is not an exact pin: {line!r}")
    return header, pins, via


def test_every_declared_requirement_has_a_satisfying_pin():
    _, pins, _ = lock()
    problems = []
    for where, req in declared():
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req} ({where}) is not in requirements.lock")
        elif not req.specifier.contains(Version(pins[name]), prereleases=True):
            problems.append(f"{req} ({where}) but the lock pins {name}=={pins[name]}")
    assert not problems, "rerun scripts/lock.sh:\n" + "\n".join(problems)


def test_constraints_are_kept():
    _, pins, _ = lock()
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            assert canonicalize_name(req.name) in pins and req.specifier.contains(pins[canonicalize_name(req.name)]), line


def test_the_header_records_the_command():
    header, _, _ = lock()
    command = next(line for line in header if "uv pip compile" in line)
    script = (REPO / "scripts" / "lock.sh").read_text()
    assert "uv pip compile pyproject.toml" in command and "uv pip compile pyproject.toml" in script
    for extra in LOCKED_EXTRAS:
        assert f"--extra {extra}" in command and f"--extra {extra}" in script
    assert "--extra gpu" not in command
    for option in ("-c constraints.txt", "--python-version 3.11", "--python-platform x86_64-unknown-linux-gnu",
                   "-o requirements.lock"):
        assert option in command and option in script


def test_nothing_stale():
    """Every pin is there for a declared requirement or for another pin: a package dropped from pyproject.toml
    (faiss-cpu, say) cannot linger in the lock."""
    _, pins, via = lock()
    direct = {canonicalize_name(r.name) for _, r in declared()}
    constrained = {canonicalize_name(Requirement(line).name)
                   for line in (REPO / "constraints.txt").read_text().splitlines()
                   if line.strip() and not line.startswith("#")}
    problems = []
    for name, reasons in via.items():
        if not reasons:
            problems.append(f"{name}: no '# via' note")
        for reason in reasons:
            if reason == "buildbench (pyproject.toml)":
                if name not in direct:
                    problems.append(f"{name}: locked for pyproject.toml, which does not declare it")
            elif reason == "-c constraints.txt":
                if name not in constrained:
                    problems.append(f"{name}: locked for constraints.txt, which does not name it")
            elif canonicalize_name(reason.split()[0]) not in pins:
                problems.append(f"{name}: locked for {reason}, which is not in the lock")
    assert "faiss-cpu" not in pins
    assert not problems, "rerun scripts/lock.sh:\n" + "\n".join(problems)


def test_readme_installs_from_the_lock():
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- install -->", 1)[1].split("<!-- /install -->", 1)[0]
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("```")]
    assert commands == ["pip install -e '.[all,dev]' -c requirements.lock"]
    assert "readme_cmd install" in (REPO / ".ci" / "run").read_text()  # CI runs that very command


def test_this_environment_is_the_lock():
    """The install works from the lock: in an environment installed by README's command (CI's), every locked
    package that is installed has the locked version (torch's local build label aside) and nothing is broken.
    Packages of a machine's own, outside the lock, are not judged."""
    _, pins, _ = lock()
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    for _, req in declared():
        assert canonicalize_name(req.name) in installed, f"{req.name} is declared but not installed"
    wrong = {name: (installed[name], pin) for name, pin in pins.items()
             if name in installed and Version(installed[name]).public != Version(pin).public}
    assert not wrong, f"installed versions differ from requirements.lock: {wrong}"
    # The CPU torch wheel asks for none of the CUDA wheels the lock lists for PyPI's torch: they stay out.
    torch_requires = [Requirement(r) for r in metadata.requires("torch") or []]
    if "+cpu" in installed.get("torch", ""):
        assert not any(canonicalize_name(r.name).startswith("nvidia") for r in torch_requires)
        assert not any(name.startswith("nvidia") for name in installed)
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
