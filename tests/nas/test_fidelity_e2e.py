"""A real multi-fidelity search end to end: proxy RetinaNets on synthetic data, stopped and continued at rungs."""

import os

from experiments.overrides import apply_overrides
from experiments.registry import get_experiment
from nas.commands.plot import plot_search
from nas.commands.status import search_status
from nas.search_runner import start_or_resume
from nas.trial_store import TrialStore

# 48 images less 8 held out = 40 training images, batch 8: 5 steps an epoch; rungs at epochs 1 and 2.
TINY = {
    "search.executor": "local",
    "search.max_trials": 3,
    "search.fidelity": "asha",
    "search.rungs": (1.0, 2.0),
    "search.reuse_results": False,
    "trainer.epochs": 2.0,
    "trainer.warmup_steps": 2,
    "trainer.checkpoint_interval": 3,
    "trainer.log_interval": 5,
    "data.synthetic.num_images": 48,
    "data.holdout_size": 8,
}


def test_a_tiny_asha_search_on_synthetic_data(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINENET_NAS_CACHE", str(tmp_path / "cache"))
    wd = str(tmp_path / "s")
    start_or_resume(apply_overrides(get_experiment("synthetic_smoke"), TINY), wd, quiet=True)
    with TrialStore(os.path.join(wd, "trials.jsonl"), readonly=True) as store:
        trials = [store.trials[i] for i in range(3)]
        rung_records = [r for r in store.records if r["event"] == "rung"]
    assert all(t.status == "completed" for t in trials)
    # Trial 0 is the first at rung 0: promoted, it continued from its rung's checkpoint (step 5 of 10).
    assert rung_records and rung_records[0]["trial_id"] == 0 and rung_records[0]["metrics"]["stopped_at_step"] == 5
    t0 = trials[0]
    assert t0.fidelity["decision"] == "final" and t0.metrics["resumed_from_step"] == 5 and t0.metrics["steps_run"] == 5
    assert t0.reward == t0.metrics["AP"]
    for t in trials:
        if t.fidelity["decision"] == "stopped":
            assert t.metrics["stopped_at_step"] == 5 and t.metrics["steps"] == 10
    status = search_status(wd)
    rungs = status["fidelity"]["rungs"]
    assert [r["evaluated"] for r in rungs] == [3, len([t for t in trials if len(t.rungs) == 2])]
    assert status["fidelity"]["epochs_full"] == 6.0
    paths = plot_search(wd)
    assert any(p.endswith("rungs.png") and os.path.getsize(p) > 10_000 for p in paths)
