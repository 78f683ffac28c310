"""What the trainer's tests share: one tiny run evaluated after every epoch, trained once per session."""

import pytest


@pytest.fixture(scope="session")
def epoch_eval_cache(tmp_path_factory):
    """The data cache of ``epoch_eval_run`` and of the runs compared with it."""
    return str(tmp_path_factory.mktemp("epoch_eval_cache"))


@pytest.fixture(scope="session")
def epoch_eval_run(epoch_eval_cache, tmp_path_factory):
    """``(workdir, metrics)`` of ``TINY_ARCH`` trained uninterrupted with ``EPOCH_EVAL`` (tests/proxy_trainer/
    test_trainer.py), seed 1: the reference run of test_trainer_epoch_eval.py and test_trainer_rungs.py."""
    from proxy_trainer.training.trainer import train_and_evaluate
    from tests.proxy_trainer.test_trainer import EPOCH_EVAL, TINY_ARCH, tiny_config

    workdir = str(tmp_path_factory.mktemp("epoch_eval_whole"))
    return workdir, train_and_evaluate(TINY_ARCH, tiny_config(epoch_eval_cache, **EPOCH_EVAL), workdir, 1)
