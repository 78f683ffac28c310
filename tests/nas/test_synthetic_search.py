"""The real path end to end: nas-search on synthetic_smoke trains proxy RetinaNets on local Ray,
then the exported architecture trains again with nas-train."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A shorter schedule than the experiment's (the full one is about 30 s per trial on a core):
# the machinery, not the AP, is under test here.
SHORT = (
    "trainer.train_steps=12,trainer.warmup_steps=4,trainer.checkpoint_interval=6,trainer.log_interval=4,"
    "data.synthetic.num_images=48,data.holdout_size=8,controller.policy_gradient.update_every=2"
)


def run(*args, timeout=900, env=None):
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=dict(os.environ, **(env or {})),
    )


def test_synthetic_smoke_search_export_and_nas_train(tmp_path):
    cache = str(tmp_path / "cache")
    env = {"SPINENET_NAS_CACHE": cache}
    wd = str(tmp_path / "search")
    r = run(
        "nas.cli",
        "search",
        "--experiment=synthetic_smoke",
        f"--workdir={wd}",
        "--max_trials=3",
        f"--params_override={SHORT}",
        env=env,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    records = [json.loads(line) for line in open(os.path.join(wd, "trials.jsonl"))]
    completed = [rec for rec in records if rec["event"] == "completed"]
    assert len(completed) == 3, [rec for rec in records if rec["event"] in ("failed", "attempt_failed")]
    for rec in completed:
        m = rec["metrics"]
        assert 0.0 <= m["AP"] <= 1.0 and rec["reward"] == m["AP"]
        assert m["steps"] == 12 and m["params"] > 0 and m["multiply_adds"] > 0
    # synthetic_smoke keeps its 2 worker processes up between trials: 3 trials, at most 2 workers.
    assert len({rec["worker"] for rec in completed}) <= 2
    # Each trial trained in its own directory (checkpoints, events) as a Ray task.
    for rec in completed:
        trial_dir = os.path.join(wd, "trials", f"{rec['trial_id']:06d}")
        assert os.listdir(trial_dir)
    assert os.listdir(os.path.join(wd, "snapshots"))
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(os.path.join(wd, "tensorboard")))

    r = run("nas.cli", "plot", f"--workdir={wd}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert os.path.getsize(os.path.join(wd, "plots", "best_architecture.png")) > 10_000

    exported = str(tmp_path / "best.json")
    r = run("nas.cli", "export", f"--workdir={wd}", f"--output={exported}")
    assert r.returncode == 0, r.stderr[-2000:]
    provenance = json.load(open(exported))["provenance"]
    best = max(completed, key=lambda rec: (rec["reward"], -rec["trial_id"]))
    assert provenance["trial_id"] == best["trial_id"]

    train_dir = str(tmp_path / "train")
    r = run(
        "nas.train_cli",
        f"--arch={exported}",
        "--experiment=synthetic_smoke",
        f"--workdir={train_dir}",
        f"--params_override={SHORT}",
        "--quiet",
        env=env,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    files = os.listdir(train_dir)
    metrics_file = next(n for n in files if n.endswith(".json") and "metric" in n)
    metrics = json.load(open(os.path.join(train_dir, metrics_file)))
    assert "AP" in json.dumps(metrics)
