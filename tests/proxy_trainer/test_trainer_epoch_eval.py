"""trainer.eval_every_epoch: the proxy's learning curve from one run, kept across a resume."""

import json
import os

import pytest

from proxy_trainer.training.trainer import EPOCH_AP_FILE, epoch_end_steps, train_and_evaluate
from tests.proxy_trainer.test_trainer import EPOCH_EVAL, TINY_ARCH, tiny_config

# 48 images less 16 held out = 32 training images; batch 8: 4 steps an epoch, 2 epochs = 8 steps.
EPOCHS = {k: v for k, v in EPOCH_EVAL.items() if k != "eval_every_epoch"}


class _Stop(Exception):
    pass


def test_epoch_end_steps():
    assert epoch_end_steps(32, 8, 8) == [4, 8]
    assert epoch_end_steps(30, 8, 12) == [4, 8, 12]  # ceil(30/8), ceil(60/8), then the end
    assert epoch_end_steps(32, 8, 10) == [4, 8, 10]  # a fractional last epoch ends with training
    assert epoch_end_steps(100, 8, 3) == [3]  # shorter than an epoch: only the final evaluation


@pytest.fixture(scope="module")
def cache_dir(epoch_eval_cache):
    return epoch_eval_cache


@pytest.fixture(scope="module")
def uninterrupted(epoch_eval_run):
    """Trained with EPOCHS and eval_every_epoch, seed 1 (conftest.py: shared with test_trainer_rungs.py)."""
    return epoch_eval_run


def test_every_epoch_is_evaluated_and_the_last_is_the_final_evaluation(uninterrupted):
    workdir, metrics = uninterrupted
    assert metrics["steps"] == 8
    assert metrics["epoch_steps_1"] == 4 and metrics["epoch_steps_2"] == 8
    assert metrics["AP_epoch_2"] == metrics["AP"]
    assert 0.0 <= metrics["AP_epoch_1"] <= 1.0 and metrics["epoch_eval_s"] > 0
    with open(os.path.join(workdir, EPOCH_AP_FILE)) as f:
        saved = json.load(f)["epochs"]
    assert [(e["epoch"], e["step"], e["AP"]) for e in saved] == [
        (1, 4, metrics["AP_epoch_1"]),
        (2, 8, metrics["AP"]),
    ]
    assert "AP50" in saved[0]


def test_evaluating_between_epochs_does_not_change_what_training_computes(cache_dir, uninterrupted, tmp_path):
    _, with_epochs = uninterrupted
    plain = train_and_evaluate(TINY_ARCH, tiny_config(cache_dir, **EPOCHS), str(tmp_path), 1)
    assert plain["AP"] == with_epochs["AP"] and plain["final_loss"] == with_epochs["final_loss"]
    assert not any(k.startswith("AP_epoch_") for k in plain)


def test_a_resume_keeps_the_epochs_before_its_checkpoint(cache_dir, uninterrupted, tmp_path):
    _, whole = uninterrupted
    config = tiny_config(cache_dir, eval_every_epoch=True, **EPOCHS)
    workdir = str(tmp_path)

    def stop_at_7(event):
        if event.get("event") == "train" and event["step"] == 7:
            raise _Stop()

    with pytest.raises(_Stop):  # killed after the checkpoint of step 6, which follows epoch 1's evaluation
        train_and_evaluate(TINY_ARCH, config, workdir, 1, progress=stop_at_7)
    events = []
    resumed = train_and_evaluate(TINY_ARCH, config, workdir, 1, progress=events.append)
    assert resumed["resumed_from_step"] == 6
    assert not any("epoch 1/2" in e.get("message", "") for e in events)  # not evaluated again: kept from the file
    keys = ("AP", "AP_epoch_1", "AP_epoch_2", "epoch_steps_1", "epoch_steps_2")
    assert {k: resumed[k] for k in keys} == {k: whole[k] for k in keys}
