"""trainer.stop_at_epoch: a rung of a multi-fidelity search, then its continuation, is one whole run."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from proxy_trainer.training.config import TrainerConfig
from proxy_trainer.training.trainer import EPOCH_AP_FILE, train_and_evaluate
from tests.proxy_trainer.test_trainer import EPOCH_EVAL, TINY_ARCH, tiny_config

# 48 images less 16 held out = 32 training images; batch 8: 4 steps an epoch, 2 epochs = 8 steps,
# the learning rate decaying at steps 5 and 7 (2/3 and 8/9 of 8), after the first rung (epoch 1):
# a rung that trained with a schedule of its own length would have decayed before it.
EPOCHS = EPOCH_EVAL
KEYS = ("AP", "AP50", "final_loss", "steps", "AP_epoch_1", "AP_epoch_2")


def test_stop_step():
    cfg = TrainerConfig(batch_size=8, epochs=3.0, decay_boundaries=())
    assert cfg.stop_step(32) == cfg.total_steps(32) == 12
    assert TrainerConfig(batch_size=8, epochs=3.0, stop_at_epoch=1).stop_step(32) == 4
    assert TrainerConfig(batch_size=8, epochs=3.0, stop_at_epoch=1.1).stop_step(32) == 5  # ceil, as epochs do
    assert TrainerConfig(batch_size=8, epochs=3.0, stop_at_epoch=9).stop_step(32) == 12  # capped at the end
    with pytest.raises(ValueError, match="stop_at_epoch"):
        TrainerConfig(stop_at_epoch=-1).validate()


def _weights(workdir):
    """The model's variables in the newest checkpoint (the optimizer's too), by name."""
    reader = tf.train.load_checkpoint(os.path.join(workdir, "checkpoints"))
    names = sorted(n for n in reader.get_variable_to_shape_map() if "model" in n or "optimizer" in n)
    return {n: reader.get_tensor(n) for n in names}


def test_a_rung_then_its_continuation_ends_as_one_whole_run(epoch_eval_cache, epoch_eval_run, tmp_path):
    cache_dir = epoch_eval_cache
    whole_dir, whole = epoch_eval_run  # trained with EPOCHS, seed 1, uninterrupted (conftest.py)
    rungs_dir = str(tmp_path / "rungs")

    rung1 = train_and_evaluate(TINY_ARCH, tiny_config(cache_dir, stop_at_epoch=1.0, **EPOCHS), rungs_dir, 1)
    assert rung1["stopped_at_step"] == 4 and rung1["steps_run"] == 4 and rung1["steps"] == 8
    assert rung1["AP"] == rung1["AP_epoch_1"] == whole["AP_epoch_1"]  # the rung's AP is the whole run's at epoch 1
    assert "AP_epoch_2" not in rung1 and rung1["epochs_trained"] == 1.0

    final = train_and_evaluate(TINY_ARCH, tiny_config(cache_dir, **EPOCHS), rungs_dir, 1)  # no stop: to the end
    assert final["resumed_from_step"] == 4 and final["steps_run"] == 4 and "stopped_at_step" not in final
    assert {k: final[k] for k in KEYS} == {k: whole[k] for k in KEYS}
    a, b = _weights(whole_dir), _weights(rungs_dir)
    assert a.keys() == b.keys() and len(a) > 10
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    with open(os.path.join(rungs_dir, EPOCH_AP_FILE)) as f:
        saved = [(e["epoch"], e["step"]) for e in json.load(f)["epochs"]]
    assert saved == [(1, 4), (2, 8)]
