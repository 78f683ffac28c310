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
    Run once per suite: with pytest-xdist the workers share it (the first trains, under a file lock, the
    others read what it wrote).
    """
    import fcntl

    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "synthetic_smoke_spinenet49"
    root.mkdir(exist_ok=True)
    cache_dir, workdir = root / "cache", root / "train"
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "done").exists():
            argv = [
                sys.executable, "-m", "nas.train_cli", "--arch=preset:spinenet49", "--experiment=synthetic_smoke",
                f"--workdir={workdir}", "--seed=0", "--quiet", f"--params_override=data.cache_dir={cache_dir}",
            ]  # fmt: skip
            env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
            done = subprocess.run(
                argv, cwd=ROOT, env=env, capture_output=True, text=True, preexec_fn=_pinned_to_one_core, timeout=900
            )
            assert done.returncode == 0, done.stderr[-2000:]
            (root / "done").write_text("")
    metrics = json.loads((workdir / "metrics.json").read_text())["metrics"]
    return types.SimpleNamespace(metrics=metrics, cache_dir=str(cache_dir), workdir=str(workdir))
