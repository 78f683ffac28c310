"""The README's promises: two quick-start commands that install with the constraints file, and CI
runs the second one unchanged, then installs and smoke-tests every other supported Python."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
INSTALL = "pip install -c constraints.txt -e . && "
INSTALL_TEST = "pip install -c constraints.txt -e '.[test]' && "


def _quick_start_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def _ci_lines():
    return (ROOT / ".ci" / "run").read_text().splitlines()


def _supported_versions():
    setup = (ROOT / "setup.py").read_text()
    return re.findall(r'"Programming Language :: Python :: (3\.\d+)"', setup)


def test_readme_quick_start_has_exactly_two_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2, commands
    assert commands[0].startswith(INSTALL + "nas-search "), commands[0]
    assert commands[0] == INSTALL + "nas-search search --experiment=synthetic_smoke --workdir=workdirs/quickstart"
    assert commands[1] == INSTALL_TEST + "python -m pytest -q tests", commands[1]


def test_ci_runs_the_readme_test_command_unchanged():
    assert _quick_start_commands()[1] in _ci_lines()


def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_constraints_file_pins_every_requirement_of_setup_py():
    from packaging.requirements import Requirement  # pytest's own dependency

    pins = []
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r'([A-Za-z0-9_.-]+)==([^\s;]+)(\s*;\s*python_version\s*[<>=]+\s*"3\.\d+")?', line)
            assert match, f"constraints.txt: not an exact pin: {line!r}"
            pins.append(Requirement(line))
    lists = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse((ROOT / "setup.py").read_text()).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "").endswith("_REQUIRES")
    }
    requirements = [Requirement(r) for r in lists["INSTALL_REQUIRES"] + lists["TEST_REQUIRES"]]
    names = {_norm(r.name) for r in requirements}
    assert len(names) >= 10 and "tensorflow" in names and "pytest" in names, names
    versions = _supported_versions()
    assert versions, versions
    # On every supported Python, each requirement that applies there is pinned exactly once, inside its range.
    for version in versions:
        env = {"python_version": version, "python_full_version": version + ".0", "extra": ""}

        def applies(r, env=env):
            return r.marker is None or r.marker.evaluate(env)

        pinned = {}
        for pin in filter(applies, pins):
            assert _norm(pin.name) not in pinned, f"constraints.txt pins {pin.name} twice for Python {version}"
            pinned[_norm(pin.name)] = next(iter(pin.specifier)).version
        for requirement in filter(applies, requirements):
            version_pinned = pinned.get(_norm(requirement.name))
            assert version_pinned, f"{requirement} (Python {version}) is in setup.py but not pinned in constraints.txt"
            assert requirement.specifier.contains(version_pinned), (
                f"{requirement} (Python {version}): constraints.txt pins {version_pinned}, outside the range"
            )


def test_ci_smoke_tests_every_other_supported_python():
    versions = _supported_versions()
    assert "3.11" in versions, versions
    smoked = re.findall(
        r"^bash tests/smoke/smoke_install\.sh (3\.\d+) (?:editable|wheel)$", "\n".join(_ci_lines()), re.M
    )
    assert sorted(smoked) == sorted(v for v in versions if v != "3.11"), (smoked, versions)
    minor = sorted(int(v.split(".")[1]) for v in versions)
    assert minor == list(range(minor[0], minor[-1] + 1)), versions
    requires = f'python_requires=">=3.{minor[0]},<3.{minor[-1] + 1}"'
    assert requires in (ROOT / "setup.py").read_text(), requires
