"""The import rules of docs/design.md (Layers): who may import whom."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROJECT = {"search_space", "controller", "proxy_trainer", "nas", "experiments"}

# package -> (project packages it may import, third-party roots it must not import)
RULES = {
    "search_space": (set(), {"tensorflow", "keras", "tf_keras", "tensorflow_probability", "ray"}),
    "controller": ({"search_space"}, {"ray"}),
    "proxy_trainer": ({"search_space"}, {"ray"}),
    "experiments": ({"search_space", "controller", "proxy_trainer"}, {"ray"}),
    "nas": (PROJECT, set()),
}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def _modules(package: str):
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_respects_the_import_rules(package):
    allowed, forbidden = RULES[package]
    files = _modules(package)
    assert files, f"{package} has no modules"
    problems = []
    for path in files:
        for root in _imports(path):
            if root in PROJECT and root != package and root not in allowed:
                problems.append(f"{path.relative_to(ROOT)} imports {root}")
            if root in forbidden:
                problems.append(f"{path.relative_to(ROOT)} imports {root}")
    assert not problems, "\n".join(problems)


def test_the_checker_sees_imports(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("import ray\nfrom tensorflow import keras\nfrom . import x\n")
    assert _imports(sample) == {"ray", "tensorflow"}
