"""Shared test setup: quiet TensorFlow, make the repository importable, and the one SpineNet-49 training
on synthetic_smoke that two tests read."""

import json
import os
import subprocess
import sys
import types

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _pinned_to_one_core():
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


@pytest.fixture(scope="session")
def synthetic_smoke_spinenet49(tmp_path_factory):
    """`nas-train` of SpineNet-49 on the registered synthetic_smoke recipe, seed 0, on one core, as a
    search's trial runs it: ``.metrics`` (its metrics.json), ``.cache_dir`` (the generated data).

    The only full-length training of the suite (about a minute on one core), read by
    tests/test_readme_results.py (the stored AP) and tests/proxy_trainer/test_trainer.py (it learns).
    """
    root = tmp_path_factory.mktemp("synthetic_smoke_spinenet49")
    cache_dir, workdir = root / "cache", root / "train"
    argv = [
        sys.executable, "-m", "nas.train_cli", "--arch=preset:spinenet49", "--experiment=synthetic_smoke",
        f"--workdir={workdir}", "--seed=0", "--quiet", f"--params_override=data.cache_dir={cache_dir}",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, preexec_fn=_pinned_to_one_core, timeout=900
    )
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((workdir / "metrics.json").read_text())["metrics"]
    return types.SimpleNamespace(metrics=metrics, cache_dir=str(cache_dir), workdir=str(workdir))
