"""The library's layout rules (docs/architecture.md): every module imports alone, only the CLI imports the
CLI, only the web imports Dash, and both `python -m` entry points list every command."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "flowviz"


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (`from flowviz import cli` counts as flowviz.cli)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _import_alone(module: str) -> tuple[str, int, str]:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                          cwd=PACKAGE.parent, timeout=120)
    return module, done.returncode, done.stderr.strip().splitlines()[-1:] and done.stderr.strip().splitlines()[-1]


def test_every_module_imports_alone_in_a_fresh_interpreter():
    modules = _modules()
    assert len(modules) > 60 and "flowviz.analyze" in modules and "flowviz.cli.calls" in modules
    with ThreadPoolExecutor(max_workers=3) as pool:
        failed = [(m, err) for m, code, err in pool.map(_import_alone, modules) if code != 0]
    assert failed == []


def test_only_the_cli_imports_the_cli_and_only_the_web_imports_dash():
    wrong_cli, wrong_dash = [], []
    for path in PACKAGE.rglob("*.py"):
        inside = path.relative_to(PACKAGE).parts[0]
        if inside == "__main__.py":  # `python -m flowviz`: the command's entry point
            continue
        imports = _imports(path)
        if inside != "cli" and any(i == "flowviz.cli" or i.startswith("flowviz.cli.") for i in imports):
            wrong_cli.append(str(path))
        if inside != "web" and any(i == "dash" or i.startswith("dash.") for i in imports):
            wrong_dash.append(str(path))
    assert wrong_cli == [] and wrong_dash == []


def test_the_layout_check_sees_a_forbidden_import(tmp_path):
    # the rule above must be able to fail: the same parse on a file that does import the CLI
    sample = tmp_path / "bad.py"
    sample.write_text("def f():\n    from flowviz import cli\n    from flowviz.cli.common import Context\n")
    assert {"flowviz.cli", "flowviz.cli.common"} <= _imports(sample)


@pytest.mark.parametrize("entry", ["flowviz", "flowviz.cli"])
def test_python_dash_m_lists_every_command(entry):
    from flowviz.cli import COMMANDS

    done = subprocess.run([sys.executable, "-m", entry, "--help"], capture_output=True, text=True,
                          cwd=PACKAGE.parent, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == {c.name for c in COMMANDS}
    assert {"info", "calls", "ladder", "export", "streams", "diagnose", "batch", "serve"} <= listed
