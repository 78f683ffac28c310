"""The nas-search command line, driven as a user drives it (a subprocess)."""

import json
import math
import subprocess
import sys

import pytest


def nas_search(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_space_json_prints_the_paper_sizes():
    r = nas_search("space", "--experiment=spinenet49_coco_proxy", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["num_blocks"] == 15
    assert out["permutations"] == 435456000
    assert out["connections"] == math.prod(math.comb(i, 2) for i in range(2, 17))
    assert out["adjustments"] == 4**10 * 2**15
    assert out["total"] == out["permutations"] * out["connections"] * out["adjustments"]
    assert round(out["connections_windowed"] / 1e18, 2) == 1.06
    assert out["total_windowed"] == out["permutations"] * out["connections_windowed"] * out["adjustments"]
    for key in (
        "num_blocks",
        "permutations",
        "connections",
        "adjustments",
        "total",
        "connections_windowed",
        "total_windowed",
    ):
        assert isinstance(out[key], int)


def test_space_human_readable():
    r = nas_search("space", "--experiment=spinenet49_coco_proxy")
    assert r.returncode == 0, r.stderr
    assert "15 scale-permuted blocks" in r.stdout
    assert "(435456000)" in r.stdout


def test_overrides_change_the_space():
    r = nas_search(
        "space",
        "--experiment=spinenet49_coco_proxy",
        "--params_override=search_space.level_shifts=[0],search_space.block_fns=[bottleneck]",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["adjustments"] == 1


def test_config_file_overrides(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("search_space:\n  parent_window: null\n")
    r = nas_search("space", "--experiment=spinenet49_coco_proxy", f"--config_file={cfg}", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["connections_windowed"] == out["connections"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["space", "--experiment=spinenet49_coco_proxy", "--colour=red"], "Unknown command line flag 'colour'"),
        (["space", "--experiment=nope"], "unknown experiment 'nope'; known: "),
        (["space"], "--experiment is required"),
        (["space", "--experiment=spinenet49_coco_proxy", "stray"], "unexpected argument 'stray'"),
        (
            ["space", "--experiment=spinenet49_coco_proxy", "--params_override=search_space.windw=3"],
            "unknown key 'search_space.windw'; allowed here:",
        ),
        (
            ["space", "--experiment=spinenet49_coco_proxy", "--params_override=search_space.parent_window=wide"],
            "search_space.parent_window: expected an integer or null",
        ),
        (
            ["space", "--experiment=spinenet49_coco_proxy", "--params_override=search_space.parent_window=1"],
            "parent_window is 1",
        ),
        (["space", "--experiment=spinenet49_coco_proxy", "--params_override=oops"], "not of the form key=value"),
        (["space", "--experiment=spinenet49_coco_proxy", "--config_file=/no/such.yaml"], "cannot read config file"),
        (["search", "--experiment=synthetic_smoke", "--workdir=/dev/null/w"], "/dev/null/w: Not a directory"),
    ],
)
def test_bad_command_lines_get_one_error_line_and_exit_2(args, message):
    r = nas_search(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert message in lines[0]
    assert "Traceback" not in r.stderr


def test_help_lists_commands():
    r = nas_search("--help")
    assert r.returncode == 0
    assert "space" in r.stdout


@pytest.mark.parametrize("command", ["search", "resume", "status", "export", "plot", "describe", "space", "data"])
def test_command_help_lists_its_flags(command):
    from nas.cli import _load

    r = nas_search(command, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: nas-search {command} ")
    for flag in _load(command).FLAGS_USED:
        assert f"--{flag}=" in r.stdout or f"--[no]{flag}" in r.stdout
    if command in ("search", "space", "data"):
        assert "synthetic_smoke" in r.stdout  # the registered experiments are listed


def test_help_after_other_flags_still_helps():
    r = nas_search("search", "--experiment=synthetic_smoke", "-h")
    assert r.returncode == 0 and "--workdir=STRING" in r.stdout
