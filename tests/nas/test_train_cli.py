"""nas-train: end to end in a subprocess on generated data, and every bad input in one line."""

import json
import os
import random
import subprocess
import sys

import pytest

from nas import train_cli
from search_space import DecisionEncoding, SearchSpace, sample_architecture, save_architecture

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = (
    "trainer.train_steps=4,trainer.batch_size=4,trainer.log_interval=2,trainer.eval_batch_size=8,"
    "data.synthetic.num_images=48,data.holdout_size=16,model.head_num_convs=1,model.head_num_filters=16"
)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


def test_nas_train_end_to_end_with_an_architecture_file(tmp_path, cache_dir):
    arch = sample_architecture(DecisionEncoding(SearchSpace()), random.Random(5))
    arch_file = tmp_path / "arch.json"
    save_architecture(str(arch_file), arch)
    workdir = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "nas.train_cli", f"--arch={arch_file}", "--experiment=synthetic_smoke",
        f"--workdir={workdir}", f"--params_override={TINY},data.cache_dir={cache_dir}", "--seed=2",
        "--cpu_threads=1",
    ]  # fmt: skip
    # As a user runs it: TF_CPP_MIN_LOG_LEVEL unset, so TensorFlow's C++ log must stay hidden.
    env = {**{k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}, "PYTHONPATH": ROOT}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not [line for line in proc.stderr.splitlines() if line[:5] in ("E0000", "W0000", "I0000")], proc.stderr
    printed = json.loads(proc.stdout)
    assert {"AP", "AP50", "AP75", "APs", "APm", "APl", "train_s", "eval_s", "images_per_s"} <= set(printed)
    assert printed["steps"] == 4 and printed["num_eval_images"] == 16
    # Not a terminal: log lines rather than a bar.
    assert "nas-train: step 2/4 loss" in proc.stderr and "nas-train: step 4/4 loss" in proc.stderr
    saved = json.loads((workdir / "metrics.json").read_text())
    assert saved["metrics"] == printed and saved["experiment"] == "synthetic_smoke" and saved["seed"] == 2
    assert saved["cpu_threads"] == 1  # applied before TensorFlow started, as in a search's slot
    assert saved["config"]["trainer"]["train_steps"] == 4
    trained = json.loads((workdir / "architecture.json").read_text())
    assert trained["scaling"]["endpoints_num_filters"] == 32  # the experiment's scaling, not the file's
    for name in ("config.yaml", "trial.json", "checkpoints", "tensorboard"):
        assert (workdir / name).exists(), name


def _run(capsys, *args):
    code = train_cli.main(["nas-train", *args])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--experiment=synthetic_smoke", "--workdir=W"], "--arch is required"),
        (["--arch=preset:spinenet49", "--workdir=W"], "--experiment is required"),
        (["--arch=preset:nope", "--experiment=synthetic_smoke", "--workdir=W"], "unknown architecture preset 'nope'"),
        (["--arch=/no/such.json", "--experiment=synthetic_smoke", "--workdir=W"], "/no/such.json"),
        (["--arch=preset:spinenet49", "--experiment=nope", "--workdir=W"], "unknown experiment 'nope'"),
        (["--arch=preset:spinenet49", "--experiment=synthetic_smoke", "--workdir=W", "--model_id=77"], "unknown model id '77'"),
        (["--arch=preset:spinenet49", "--experiment=synthetic_smoke", "--workdir=W", "--params_override=trainer.lr=1"], "unknown key 'trainer.lr'"),
        (["--arch=preset:spinenet49", "--experiment=synthetic_smoke", "--workdir=W", "--params_override=trainer.batch_size=0"], "trainer.batch_size: 0; allowed >= 1"),
        (["--arch=preset:spinenet49", "--experiment=spinenet49_coco_proxy", "--workdir=W"], "data.annotation_file and data.image_dir"),
        (["--arch=preset:spinenet49", "--experiment=synthetic_smoke", "--workdir=W", "--seed=-1"], "--seed"),
        (["--arch=preset:spinenet49", "--bogus=1"], "bogus"),
        (["--arch=preset:spinenet49", "--experiment=synthetic_smoke", "--workdir=W", "extra"], "unexpected argument 'extra'"),
        (["--arch=preset:spinenet49", "--experiment=synthetic_smoke", "--workdir=FILE/w"], "FILE/w: Not a directory"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, args, message):
    (tmp_path / "file").write_text("a file, not a directory")
    args = [a.replace("--workdir=W", f"--workdir={tmp_path / 'w'}") for a in args]
    args = [a.replace("FILE", str(tmp_path / "file")) for a in args]
    message = message.replace("FILE", str(tmp_path / "file"))
    code, err = _run(capsys, *args)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("nas-train: error: ") and message in err[0], err


def test_bad_architecture_file_and_missing_coco_data(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, err = _run(capsys, f"--arch={bad}", "--experiment=synthetic_smoke", f"--workdir={tmp_path / 'w'}")
    assert code == 2 and len(err) == 1 and str(bad) in err[0]
    missing = tmp_path / "missing.json"
    override = f"--params_override=data.annotation_file={missing},data.image_dir={tmp_path},data.cache_dir={tmp_path}"
    code, err = _run(
        capsys,
        "--arch=preset:spinenet49",
        "--experiment=spinenet49_coco_proxy",
        f"--workdir={tmp_path / 'w'}",
        override,
    )
    # The run's first info line, then one error line naming the file; no traceback.
    assert code == 2 and len(err) == 2 and err[1].startswith("nas-train: error: ") and str(missing) in err[1], err


def test_the_train_command_does_not_import_ray():
    code = (
        "import sys; from nas import train_cli, cli; from nas.commands import train; "
        "from proxy_trainer.training import trainer; "
        "from experiments.registry import get_experiment; get_experiment('synthetic_smoke'); "
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_help_lists_flags_and_experiments(capsys):
    assert train_cli.main(["nas-train", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nas-train [--flag=value ...]")
    for flag in ("arch", "experiment", "workdir", "model_id", "params_override", "config_file", "seed"):
        assert f"--{flag}=" in out
    assert "synthetic_smoke" in out
