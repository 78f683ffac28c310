"""A real multi-fidelity search end to end: proxy RetinaNets on synthetic data, stopped and continued at rungs."""

import os

from experiments.overrides import apply_overrides
from experiments.registry import get_experiment
from nas.commands.plot import plot_search
from nas.commands.status import search_status
from nas.search_runner import start_or_resume
from nas.trial_store import TrialStore

# 24 images less 8 held out = 16 training images, batch 8: 2 steps an epoch; rungs at epochs 1 and 2. Two
# trials: the second is judged at the first rung against the first's result. The search writes its report
# when it ends (synthetic_smoke's search.report_every).
TINY = {
    "search.executor": "local",
    "search.max_trials": 2,
    "search.fidelity": "asha",
    "search.rungs": (1.0, 2.0),
    "search.reuse_results": False,
    "trainer.epochs": 2.0,
    "trainer.warmup_steps": 2,
    "trainer.checkpoint_interval": 3,
    "trainer.log_interval": 5,
    "data.synthetic.num_images": 24,
    "data.holdout_size": 8,
}


def test_a_tiny_asha_search_on_synthetic_data(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINENET_NAS_CACHE", str(tmp_path / "cache"))
    wd = str(tmp_path / "s")
    start_or_resume(apply_overrides(get_experiment("synthetic_smoke"), TINY), wd, quiet=True)
    with TrialStore(os.path.join(wd, "trials.jsonl"), readonly=True) as store:
        trials = [store.trials[i] for i in range(2)]
        rung_records = [r for r in store.records if r["event"] == "rung"]
    assert all(t.status == "completed" for t in trials)
    # Trial 0 is the first at rung 0: promoted, it continued from its rung's checkpoint (step 2 of 4).
    assert rung_records and rung_records[0]["trial_id"] == 0 and rung_records[0]["metrics"]["stopped_at_step"] == 2
    t0 = trials[0]
    assert t0.fidelity["decision"] == "final" and t0.metrics["resumed_from_step"] == 2 and t0.metrics["steps_run"] == 2
    assert t0.reward == t0.metrics["AP"]
    for t in trials:
        if t.fidelity["decision"] == "stopped":
            assert t.metrics["stopped_at_step"] == 2 and t.metrics["steps"] == 4
    status = search_status(wd)
    rungs = status["fidelity"]["rungs"]
    assert [r["evaluated"] for r in rungs] == [2, len([t for t in trials if len(t.rungs) == 2])]
    assert status["fidelity"]["epochs_full"] == 4.0
    paths = plot_search(wd)
    assert any(p.endswith("rungs.png") and os.path.getsize(p) > 10_000 for p in paths)
    # The report the search wrote when it ended shows its rungs.
    with open(os.path.join(wd, "report.html")) as f:
        report = f.read()
    assert "<h3>Rungs (ASHA, reduction factor 3)</h3>" in report
    assert f"Epochs trained: {status['fidelity']['epochs_spent']:g}, against 4 for the same proposals" in report
