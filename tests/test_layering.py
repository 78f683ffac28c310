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


# proxy_trainer's subpackages (proxy_trainer/__init__.py): training uses the others; data and detector are apart.
SUBPACKAGE_RULES = {
    "data": set(),
    "detector": set(),
    "evaluation": {"data"},
    "training": {"data", "detector", "evaluation"},
}


def _project_imports(path: pathlib.Path) -> list[tuple[str, list[str]]]:
    """``(module, imported names)`` of every absolute import of a project module, anywhere in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name.split(".")[0] in PROJECT]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in PROJECT:
                found.append((node.module, [alias.name for alias in node.names]))
    return found


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _all_project_modules():
    return [p for package in sorted(PROJECT) for p in _modules(package)]


def test_proxy_trainer_subpackages_import_one_way():
    problems = []
    for path in _modules("proxy_trainer"):
        parts = path.relative_to(ROOT / "proxy_trainer").parts
        if len(parts) < 2:
            continue
        own = parts[0]
        for module, _ in _project_imports(path):
            bits = module.split(".")
            if bits[0] == "proxy_trainer" and len(bits) > 1 and bits[1] != own and bits[1] not in SUBPACKAGE_RULES[own]:
                problems.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not problems, "\n".join(problems)


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    """Every cycle a depth-first walk of ``graph`` closes, as ``a -> b -> a``."""
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_no_import_cycles_between_project_modules():
    # Function-level imports count too: a cycle hidden in a function is still a cycle of the design.
    names = {_module_name(p): p for p in _all_project_modules()}
    graph = {}
    for name, path in names.items():
        targets = set()
        for module, imported in _project_imports(path):
            for candidate in [f"{module}.{n}" for n in imported] + [module]:
                if candidate in names and candidate != name:
                    targets.add(candidate)
                    break
        graph[name] = targets
    cycles = _cycles(graph)
    assert not cycles, "\n".join(cycles)


def test_no_private_name_is_imported_from_another_module():
    problems = [
        f"{path.relative_to(ROOT)} imports {module}.{name}"
        for path in _all_project_modules()
        for module, imported in _project_imports(path)
        for name in imported
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not problems, "\n".join(problems)


def test_the_checks_see_cycles_and_function_level_imports(tmp_path):
    # SpineNet -> model config -> (inside build_model) RetinaNet -> SpineNet was such a cycle.
    (tmp_path / "b.py").write_text("def f():\n    from nas.a import g, _h\n")
    assert _project_imports(tmp_path / "b.py") == [("nas.a", ["g", "_h"])]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a -> b -> c -> a"]
    assert _cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
