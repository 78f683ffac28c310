"""Every project import in the benchmarks resolves, including those inside functions.

The benchmarks run rarely (some only on a GPU) and import the project lazily, inside the
functions that measure; a module moved or renamed breaks them without failing any other test
(bench_training.py imported ``proxy_trainer.trainer`` for a while after the trainer moved to
``proxy_trainer.training``). This reads each script's syntax tree and resolves every
``from PROJECT... import NAME`` and ``import PROJECT...`` without running the script.
"""

import ast
import importlib
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("nas", "search_space", "controller", "proxy_trainer", "experiments", "bench")
SCRIPTS = sorted(f for f in os.listdir(os.path.join(ROOT, "bench")) if f.endswith(".py"))


def _project_imports(path: str) -> list[tuple[int, str, str | None]]:
    """(line, module, name or None) of every import of a project package in the file."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in PACKAGES:
                out += [(node.lineno, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, None) for a in node.names if a.name.split(".")[0] in PACKAGES]
    return out


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_project_import_of_a_benchmark_resolves(script):
    path = os.path.join(ROOT, "bench", script)
    broken = []
    for line, module, name in _project_imports(path):
        try:
            imported = importlib.import_module(module)
        except ImportError as e:
            broken.append(f"{script}:{line}: import {module}: {e}")
            continue
        if name and name != "*" and not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                broken.append(f"{script}:{line}: {module} has no {name}")
    assert not broken, "\n".join(broken)


def test_the_check_sees_imports_inside_functions(tmp_path):
    """The check itself: a lazy import of a moved module is reported."""
    script = tmp_path / "bench_x.py"
    script.write_text("def f():\n    from proxy_trainer import trainer\n    from nas.workdir import Workdir\n")
    found = _project_imports(str(script))
    assert found == [(2, "proxy_trainer", "trainer"), (3, "nas.workdir", "Workdir")]
    assert not hasattr(importlib.import_module("proxy_trainer"), "trainer")
