"""``nas-search describe``, driven as a user drives it (a subprocess)."""

import json
import subprocess
import sys

import pytest

from search_space import (
    BOTTLENECK,
    RESIDUAL,
    Architecture,
    BlockSpec,
    Scaling,
    architecture_preset,
    model_preset,
    save_architecture,
    spinenet49,
)
from search_space.cost_model import model_cost


def nas_search(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def run_cli(capsys):
    """Runs ``nas-search`` in this process (a subprocess costs seconds of imports per call)."""
    from nas import cli
    from nas.cli_flags import FLAGS

    def run(*args):
        FLAGS.unparse_flags()  # every call starts from the defaults, as a fresh process does
        code = cli.main(["nas-search", *args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    yield run
    FLAGS.unparse_flags()


def one_line_error(r, text):
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nas-search describe: error: "), r.stderr
    assert text in lines[0]


def test_spinenet49_json_has_the_published_figures():
    r = nas_search(
        "describe", "--arch=preset:spinenet49", "--model_id=49", "--input_size=640", "--num_classes=90", "--json"
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("params", "multiply_adds", "backbone_params", "backbone_multiply_adds"):
        assert isinstance(out[key], int)
    # docs/search_space.md#parameters-and-multiply-adds: 28.63M parameters (21.92M backbone), 85.4B multiply-adds.
    assert out["params"] == 28_631_822 and out["backbone_params"] == 21_920_192
    assert abs(out["multiply_adds"] / 85.4e9 - 1) < 0.01
    cost = model_cost(spinenet49(), input_size=640, num_classes=90, head_num_convs=4, head_num_filters=256)
    assert out["multiply_adds"] == cost.multiply_adds
    assert out["backbone_multiply_adds"] == cost.backbone_multiply_adds
    assert [(lv["level"], lv["height"], lv["endpoint_channels"], lv["cls_channels"]) for lv in out["levels"]] == [
        (3, 80, 256, 810),
        (4, 40, 256, 810),
        (5, 20, 256, 810),
        (6, 10, 256, 810),
        (7, 5, 256, 810),
    ]
    assert len(out["blocks"]) == 17
    assert [b["merged"] for b in out["blocks"] if b["merged"]] == [[11]]


def test_human_readable_table():
    r = nas_search("describe", "--arch=preset:resnet_like", "--model_id=proxy", "--input_size=512")
    assert r.returncode == 0, r.stderr
    cost = model_cost(
        architecture_preset("resnet_like", "proxy"),
        input_size=512,
        num_classes=90,
        head_num_convs=4,
        head_num_filters=64,
    )
    assert f"{cost.params:,}" in r.stdout
    assert "head 4 x 64" in r.stdout
    assert "P3  64x64x64  class 810  box 36" in r.stdout


def test_architecture_file_with_head_overrides(tmp_path, run_cli):
    blocks = (
        BlockSpec(4, BOTTLENECK, (0, 1)),
        BlockSpec(2, RESIDUAL, (0, 1)),  # dead: nobody consumes it and there is no L2 output
        BlockSpec(3, BOTTLENECK, (0, 2), True),
        BlockSpec(4, BOTTLENECK, (1, 4), True),
        BlockSpec(5, RESIDUAL, (2, 5), True),
        BlockSpec(6, BOTTLENECK, (5, 6), True),
        BlockSpec(7, BOTTLENECK, (6, 7), True),
    )
    arch = Architecture(blocks, scaling=Scaling(0.5, 0.5, 32, 1))
    path = tmp_path / "arch.json"
    save_architecture(path, arch)
    r = run_cli(
        "describe",
        f"--arch={path}",
        "--input_size=128",
        "--num_classes=3",
        "--head_num_convs=2",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    cost = model_cost(arch, input_size=128, num_classes=3, head_num_convs=2, head_num_filters=256)
    assert (out["params"], out["multiply_adds"]) == (cost.params, cost.multiply_adds)
    assert out["head_num_convs"] == 2 and out["head_num_filters"] == 256  # 4 x 256 unless set
    assert [b["index"] for b in out["blocks"] if not b["live"]] == [3]
    # --model_id replaces the file's scaling and sets the head.
    r = run_cli("describe", f"--arch={path}", "--model_id=proxy", "--input_size=128", "--json")
    out = json.loads(r.stdout)
    assert out["scaling"]["filter_size_scale"] == model_preset("proxy").scaling.filter_size_scale
    assert out["head_num_filters"] == 64


def test_bad_input_is_one_clear_error(tmp_path, run_cli):
    one_line_error(run_cli("describe", "--arch=preset:spinenet50"), "unknown architecture preset 'spinenet50'")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    one_line_error(run_cli("describe", f"--arch={bad}"), f"{bad}: not valid JSON")
    one_line_error(run_cli("describe", "--arch=preset:spinenet49", "--model_id=48"), "unknown model id '48'")
    one_line_error(run_cli("describe", "--input_size=640"), "--arch is required")
    one_line_error(run_cli("describe", "--arch=preset:spinenet49", "--head_num_filters=0"), "head_num_filters")
    one_line_error(run_cli("describe", "--arch=preset:spinenet49", "--experiment=x"), "does not apply to 'describe'")
    one_line_error(run_cli("describe", "--arch=preset:spinenet49", "--input_size=96"), "input_size 96")


def test_describe_imports_no_tensorflow():
    code = (
        "import sys\n"
        "from nas.cli_flags import FLAGS\n"
        "from nas.commands import describe\n"
        "FLAGS(['x', '--arch=preset:spinenet49', '--json'])\n"
        "describe.cmd_describe()\n"
        "sys.exit(3 if 'tensorflow' in sys.modules else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["params"] > 0


@pytest.mark.parametrize(
    "preset, size, params, backbone_params, madds",
    [
        ("spinenet_mobile49", 384, 2_386_162, 2_313_892, 1.023e9),
        ("spinenet_mobile49S", 384, 1_062_678, 1_004_872, 0.523e9),
        ("spinenet_mobile49XS", 256, 901_350, 869_400, 0.174e9),
    ],
)
def test_spinenet_mobile_presets_describe_as_the_reference_measures_them(
    run_cli, preset, size, params, backbone_params, madds
):
    # Issue 16's figures for Model Garden's SpineNetMobile (docs/search_space.md#spinenet-mobile).
    r = run_cli("describe", f"--arch=preset:{preset}", f"--input_size={size}", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["family"], out["head_separable"]) == ("spinenet_mobile", True)
    assert (out["params"], out["backbone_params"]) == (params, backbone_params)
    assert abs(out["multiply_adds"] / madds - 1) < 0.005


def test_a_mobile_architecture_takes_only_mobile_model_ids(run_cli):
    r = run_cli("describe", "--arch=preset:spinenet_mobile49", "--model_id=mobile49S", "--activation=relu", "--json")
    out = json.loads(r.stdout)
    assert (out["model_id"], out["activation"], out["head_num_filters"]) == ("mobile49S", "relu", 40)
    one_line_error(run_cli("describe", "--arch=preset:spinenet_mobile49", "--model_id=49"), "its ids: mobile49")
