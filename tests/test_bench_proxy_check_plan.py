"""The stored COCO proxy-check projection (bench/bench_proxy_check_plan.py) is what the dry run gives today.

The README's cost of a 20 x 2 check of ``spinenet49_coco_proxy`` is rendered from
``bench/results/proxy_check_plan.json``. These tests fail when that file goes stale: when the stored step
time no longer follows from ``bench/results/training.json`` (re-measured) or when ``proxy-check --dry_run``
now plans another number of trials or steps (the experiment or the check changed).
"""

import pytest

from bench import results_io
from bench.bench_proxy_check_plan import dry_run, evaluation_hours, step_time_sources
from experiments.registry import get_experiment


@pytest.fixture(scope="module")
def stored():
    return results_io.load("proxy_check_plan")


def test_the_stored_step_time_follows_from_the_stored_training_measurement(stored):
    training = results_io.load("training")
    assert stored["step_time_from"]["commit"] == training["commit"], "re-run python bench/bench_proxy_check_plan.py"
    sources = step_time_sources(training, get_experiment("spinenet49_coco_proxy").trainer.batch_size)
    assert [s["device"] for s in sources] == [p["device"] for p in stored["projections"]]
    for source, projection in zip(sources, stored["projections"]):
        assert source["step_seconds"] == pytest.approx(projection["step_seconds"], rel=1e-12)
        # The command carries it to 4 significant digits.
        assert projection["plan"]["step_seconds"] == pytest.approx(source["step_seconds"], rel=5e-4)
    cpu = sources[0]
    assert cpu["device"] == "cpu" and cpu["step_seconds"] == 64 / training["trainer"]["train_images_per_s"]


def test_the_dry_run_plans_today_what_is_stored(stored, tmp_path):
    projection = stored["projections"][0]
    command, plan = dry_run(projection["step_seconds"], str(tmp_path / "check"))
    assert command == projection["command"]
    assert not (tmp_path / "check").exists()  # a dry run writes nothing (and needs no COCO files)
    for key in ("trials", "total_steps", "step_seconds", "projected_trial_hours", "recipes", "archs"):
        assert plan[key] == projection["plan"][key], key
    assert plan["trials"] == 80 and len(plan["archs"]) == 20
    assert plan["projected_trial_hours"] == pytest.approx(plan["total_steps"] * plan["step_seconds"] / 3600)


def test_a_gpu_measurement_adds_a_gpu_projection_and_evaluations_count_per_epoch():
    training = {
        "settings": {"batch_size": 8},
        "trainer": {"train_images_per_s": 2.0, "eval_images_per_s": 4.0},
        "bf16_xla": {
            "on_gpu": True,
            "batch_size": 64,
            "by_labelling": {"device": {"train_images_per_s": 128.0, "eval_images_per_s": 256.0}},
        },
    }
    cpu, gpu = step_time_sources(training, 64)
    assert (cpu["device"], cpu["step_seconds"], gpu["device"], gpu["step_seconds"]) == ("cpu", 32.0, "gpu", 0.5)
    training["bf16_xla"]["on_gpu"] = False  # measured with --gpu_section on a CPU: not a GPU's rate
    assert [s["device"] for s in step_time_sources(training, 64)] == ["cpu"]
    plan = {
        "recipes": {
            "proxy": {"trials": 2, "epochs": 5.0, "eval_every_epoch": True},
            "reference": {"trials": 2, "epochs": 20.0, "eval_every_epoch": False},
        }
    }
    evals = evaluation_hours(plan, eval_images=360, eval_images_per_s=1.0)
    assert evals["proxy"] == {"evaluations_per_trial": 5, "hours": 2 * 5 * 360 / 3600}
    assert evals["reference"] == {"evaluations_per_trial": 1, "hours": 2 * 360 / 3600}
