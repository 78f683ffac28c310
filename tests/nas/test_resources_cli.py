"""Resource distribution on the command line and in the report: ``space``, ``describe``, the heatmaps."""

import dataclasses
import json
import subprocess

import pytest

from experiments.registry import get_experiment
from nas.decision_stats import biggest_changes, decision_heatmaps
from search_space import DecisionEncoding, save_architecture, space_size, spinenet49
from search_space.cost_model import model_cost


@pytest.fixture
def run_cli(capsys):
    """Runs ``nas-search`` in this process, each call from the flags' defaults."""
    from nas import cli
    from nas.cli_flags import FLAGS

    def run(*args):
        FLAGS.unparse_flags()
        code = cli.main(["nas-search", *args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    yield run
    FLAGS.unparse_flags()


def test_space_counts_the_resource_choices(run_cli):
    r = run_cli("space", "--experiment=synthetic_resource_smoke", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["resources"] == out["total"] == 15**15 and out["num_decisions"] == 30
    assert (out["permutations"], out["connections"], out["adjustments"]) == (1, 1, 1)
    assert out["fixed_topology"] is True and out["block_repeats"] == [1, 2, 3]
    r = run_cli(
        "space",
        "--experiment=synthetic_smoke",
        "--params_override=search_space.width_multipliers=[0.5,1,1.5],search_space.block_repeats=[1,2]",
        "--json",
    )
    out = json.loads(r.stdout)
    plain = space_size(get_experiment("synthetic_smoke").search_space)
    assert out["resources"] == 6**15 and out["total"] == plain.total * 6**15 and out["num_decisions"] == 68 + 30
    r = run_cli("space", "--experiment=synthetic_resource_smoke")
    assert "topology fixed (15 blocks kept)" in r.stdout
    assert "width multipliers [0.5, 0.75, 1.0, 1.25, 1.5], repeats [1, 2, 3]" in r.stdout
    assert f"block resources              {15**15:.3e}" in r.stdout
    plain_text = run_cli("space", "--experiment=synthetic_smoke").stdout
    assert "resources per block" not in plain_text and "topology fixed" not in plain_text


def test_describe_shows_each_blocks_width_and_repeats(run_cli, tmp_path):
    blocks = list(spinenet49().blocks)
    blocks[2] = dataclasses.replace(blocks[2], width_multiplier=1.25, block_repeats=3)
    arch = dataclasses.replace(spinenet49(), blocks=tuple(blocks))
    path = tmp_path / "resources.json"
    save_architecture(path, arch)
    r = run_cli("describe", f"--arch={path}", "--model_id=49", "--input_size=640", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    cost = model_cost(arch, input_size=640, num_classes=90, head_num_convs=4, head_num_filters=256)
    assert (out["params"], out["multiply_adds"]) == (cost.params, cost.multiply_adds)
    row = out["blocks"][4]
    assert (row["width_multiplier"], row["repeats"], row["channels"]) == (1.25, 3, 4 * int(128 * 1.25))
    table = run_cli("describe", f"--arch={path}", "--model_id=49").stdout
    header = next(line for line in table.splitlines() if "idx" in line)
    assert "width" in header and "reps" in header
    line = next(line for line in table.splitlines() if line.strip().startswith("4 "))
    assert " x1.25    3 " in line
    assert "reps" not in run_cli("describe", "--arch=preset:spinenet49").stdout


def test_the_report_shows_what_the_controller_decides_for_each_block():
    encoding = DecisionEncoding(get_experiment("synthetic_resource_smoke").search_space)
    narrow = [0, 0] * 15  # every block x0.5, 1 repeat
    wide = [4, 2] * 15  # every block x1.5, 3 repeats
    heatmaps = {h.kind: h for h in decision_heatmaps(encoding, [narrow, wide, wide, wide])}
    assert set(heatmaps) == {"width_multiplier", "block_repeats", "parents"}
    width = heatmaps["width_multiplier"]
    assert width.columns == ("x0.5", "x0.75", "x1", "x1.25", "x1.5") and len(width.rows) == 15
    assert width.shares[0] == (0.25, 0.0, 0.0, 0.0, 0.75)
    start = decision_heatmaps(encoding, [narrow] * 40)
    now = decision_heatmaps(encoding, [wide] * 40)
    changes = biggest_changes(start, now, limit=50)
    assert "block 2 is x1.5 wide 100% of the time (0% at the start)" in changes
    assert "block 16 (output) repeats its block 3 times 100% of the time (0% at the start)" in changes
