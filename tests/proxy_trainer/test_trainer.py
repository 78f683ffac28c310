"""Proxy training: schedule, runtime, determinism, resume, the non-finite guard, learning.

The trials are tiny (64 px, a six-block scale-permuted network with 16-filter endpoints, batch 4, a
few steps) on generated data; one test trains SpineNet-49 at the synthetic_smoke proxy size to show
it learns (through nas-train, shared with tests/test_readme_results.py: tests/conftest.py).
"""

import dataclasses
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from proxy_trainer.data.config import DataConfig, SyntheticConfig
from proxy_trainer.data.pipeline import prepare_data
from proxy_trainer.detector.anchor_labeler import AnchorLabeler
from proxy_trainer.detector.config import ModelConfig
from proxy_trainer.detector.retinanet import build_model
from proxy_trainer.training import trainer as trainer_module
from proxy_trainer.training.config import TrainerConfig
from proxy_trainer.training.runtime import resolve_runtime, setup_runtime
from proxy_trainer.training.schedule import WarmupStepDecay
from proxy_trainer.training.trainer import NonFiniteLossError, TrainingError, evaluate_model, train_and_evaluate
from search_space import BOTTLENECK, RESIDUAL, Architecture, BlockSpec, Scaling, spinenet49

# Six scale-permuted blocks (L4, then the outputs L3, L5, L7, L6, L4), each fusing two parents across
# scales: down- and upsampling, both block types, like SpineNet-49's fifteen but traced in about half the
# time. What these tests check (schedule, resume, determinism, checkpoints, guards) is not the topology's.
TINY_ARCH = Architecture(
    blocks=tuple(
        BlockSpec(level, fn, parents, out)
        for level, fn, parents, out in (
            (4, RESIDUAL, (0, 1), False),
            (3, BOTTLENECK, (0, 2), True),
            (5, BOTTLENECK, (2, 3), True),
            (7, RESIDUAL, (3, 4), True),
            (6, BOTTLENECK, (4, 5), True),
            (4, BOTTLENECK, (3, 6), True),
        )
    ),
    scaling=Scaling(filter_size_scale=0.25, resample_alpha=0.25, endpoints_num_filters=16),
)
METRIC_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "final_loss", "steps")
# tiny_config's 48 images less 16 held out = 32 training images; batch 8: 4 steps an epoch, 2 epochs = 8 steps,
# a checkpoint every 3 steps, AP evaluated after every epoch. One such run (conftest.py, epoch_eval_run) is the
# reference of tests/proxy_trainer/test_trainer_epoch_eval.py and test_trainer_rungs.py.
EPOCH_EVAL = dict(batch_size=8, train_steps=0, epochs=2.0, checkpoint_interval=3, warmup_steps=2, eval_every_epoch=True)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


def tiny_config(cache_dir, **trainer_kw):
    trainer = dict(
        batch_size=4, train_steps=6, warmup_steps=2, learning_rate=0.02, checkpoint_interval=3, log_interval=1,
        eval_batch_size=8,
    )  # fmt: skip
    trainer.update(trainer_kw)
    return types.SimpleNamespace(
        model=ModelConfig(model_id=None, input_size=64, num_classes=4, head_num_convs=1, head_num_filters=16),
        data=DataConfig(
            source="synthetic", cache_dir=cache_dir, synthetic=SyntheticConfig(num_images=48), holdout_size=16
        ),
        trainer=TrainerConfig(**trainer),
    )


# ----- pure parts ---------------------------------------------------------------


def test_warmup_then_step_decay():
    schedule = WarmupStepDecay(0.08, 500, 0.0067, (15000, 20000), 0.1)
    values = [float(schedule(s)) for s in (0, 250, 499, 500, 14999, 15000, 19999, 20000, 22499)]
    expected = [0.0067, 0.0067 + (0.08 - 0.0067) / 2, 0.0067 + (0.08 - 0.0067) * 499 / 500, 0.08, 0.08]
    expected += [0.008, 0.008, 0.0008, 0.0008]
    np.testing.assert_allclose(values, expected, rtol=1e-5)
    assert float(WarmupStepDecay(0.1, 0, 0.0, (), 0.1)(0)) == pytest.approx(0.1)


def test_default_trainer_config_is_the_public_proxy_recipe():
    cfg = TrainerConfig()
    assert (cfg.batch_size, cfg.learning_rate, cfg.warmup_steps, cfg.momentum) == (64, 0.08, 500, 0.9)
    assert (cfg.focal_alpha, cfg.focal_gamma, cfg.huber_delta, cfg.box_loss_weight) == (0.25, 1.5, 0.1, 50.0)
    # 5 epochs of the 110,895 training images; decays at the reference's 15,000 / 20,000 of 22,500.
    assert cfg.total_steps(110_895) == math.ceil(5 * 110_895 / 64)
    assert [round(f * 22500) for f in cfg.decay_boundaries] == [15000, 20000]
    assert TrainerConfig(train_steps=7).total_steps(110_895) == 7


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("batch_size", 0, "trainer.batch_size: 0; allowed >= 1"),
        ("decay_boundaries", (0.9, 0.5), "trainer.decay_boundaries"),
        ("mixed_precision", "fp8", "allowed auto, float32, bfloat16, float16"),
        ("jit_compile", "yes", "allowed auto, on, off"),
        ("unmatched_threshold", 0.6, "trainer.unmatched_threshold"),
        ("warmup_learning_rate", 1.0, "trainer.warmup_learning_rate"),
    ],
)
def test_trainer_config_rejects_bad_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(TrainerConfig(), **{field: value}).validate()


def test_runtime_auto_settings():
    auto = TrainerConfig()
    gpu, cpu = resolve_runtime(auto, has_gpu=True), resolve_runtime(auto, has_gpu=False)
    assert (gpu.precision, gpu.jit_compile, gpu.deterministic, gpu.graph_optimizer) == ("bfloat16", True, False, True)
    assert (cpu.precision, cpu.jit_compile, cpu.deterministic, cpu.graph_optimizer) == ("float32", False, True, False)
    explicit = TrainerConfig(mixed_precision="float16", jit_compile="on", deterministic="off", graph_optimizer="on")
    runtime = resolve_runtime(explicit, has_gpu=False)
    assert (runtime.precision, runtime.jit_compile, runtime.deterministic, runtime.loss_scaling) == (
        "float16", True, False, True,
    )  # fmt: skip
    assert runtime.graph_optimizer
    assert gpu.label_on_device and not cpu.label_on_device
    assert resolve_runtime(TrainerConfig(anchor_labeling="device"), has_gpu=False).label_on_device
    assert not resolve_runtime(TrainerConfig(anchor_labeling="host"), has_gpu=True).label_on_device


def test_setup_runtime_switches_the_graph_optimizer_both_ways():
    setup_runtime(TrainerConfig(graph_optimizer="off"), seed=0)
    assert tf.config.optimizer.get_experimental_options()["disable_meta_optimizer"] is True
    setup_runtime(TrainerConfig(graph_optimizer="on"), seed=0)
    assert tf.config.optimizer.get_experimental_options()["disable_meta_optimizer"] is False


def test_cpu_threads_are_capped_only_before_tensorflow_runs():
    code = (
        "import tensorflow as tf; from proxy_trainer.training.runtime import limit_cpu_threads as cap\n"
        "print(cap(1), tf.config.threading.get_intra_op_parallelism_threads(),"
        " tf.config.threading.get_inter_op_parallelism_threads())\n"
        "tf.constant(1.0) + 1.0\n"
        "print(cap(2), tf.config.threading.get_intra_op_parallelism_threads())\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "1", "1", "False", "1"]


# ----- training -----------------------------------------------------------------


class _Stop(Exception):
    pass


def _stop_at(step):
    def progress(event):
        if event.get("event") == "train" and event["step"] == step:
            raise _Stop()

    return progress


@pytest.fixture(scope="module")
def reference_run(cache_dir, tmp_path_factory):
    """``(workdir, metrics, events)`` of TINY_ARCH trained uninterrupted with ``tiny_config``, seed 3."""
    workdir, events = str(tmp_path_factory.mktemp("run_a")), []
    return (
        workdir,
        train_and_evaluate(TINY_ARCH, tiny_config(cache_dir), workdir, seed=3, progress=events.append),
        events,
    )


def test_metrics_workdir_and_tensorboard(reference_run):
    workdir, metrics, _ = reference_run
    for key in ("AP", "AP50", "AP75", "APs", "APm", "APl", "train_s", "eval_s", "images_per_s", "params"):
        assert key in metrics
    assert metrics["steps"] == metrics["steps_run"] == 6 and metrics["resumed_from_step"] == 0
    assert metrics["num_train_images"] == 32 and metrics["num_eval_images"] == 16
    assert metrics["params"] > 0 and metrics["multiply_adds"] > 0 and metrics["images_per_s"] > 0
    assert math.isfinite(metrics["final_loss"]) and 0.0 <= metrics["AP"] <= 1.0
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("ckpt-6")
    tags = set()
    for path in glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags.update(v.tag for v in event.summary.value)
    assert {"train/loss", "train/learning_rate", "eval/AP", "eval/AP50"} <= tags


def test_same_seed_twice_gives_the_same_metrics(cache_dir, reference_run, tmp_path):
    _, first, _ = reference_run
    second = train_and_evaluate(TINY_ARCH, tiny_config(cache_dir), str(tmp_path), seed=3)
    assert {k: second[k] for k in METRIC_KEYS} == {k: first[k] for k in METRIC_KEYS}


def test_resume_mid_training_reaches_the_same_metrics(cache_dir, reference_run, tmp_path):
    _, uninterrupted, _ = reference_run
    workdir = str(tmp_path)
    with pytest.raises(_Stop):
        train_and_evaluate(TINY_ARCH, tiny_config(cache_dir), workdir, seed=3, progress=_stop_at(5))
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("ckpt-3")
    events = []
    resumed = train_and_evaluate(TINY_ARCH, tiny_config(cache_dir), workdir, seed=3, progress=events.append)
    assert resumed["resumed_from_step"] == 3 and resumed["steps_run"] == 3
    assert any(e["event"] == "resume" for e in events)
    assert {k: resumed[k] for k in METRIC_KEYS} == {k: uninterrupted[k] for k in METRIC_KEYS}
    # A finished trial run again only evaluates.
    again = train_and_evaluate(TINY_ARCH, tiny_config(cache_dir), workdir, seed=3)
    assert again["steps_run"] == 0 and again["AP"] == uninterrupted["AP"]


def _cut_in_half(checkpoint_prefix):
    for path in glob.glob(checkpoint_prefix + ".data-*"):
        os.truncate(path, os.path.getsize(path) // 2)


def test_a_checkpoint_cut_short_falls_back_to_an_older_one_or_is_one_clear_error(cache_dir, reference_run, tmp_path):
    source, uninterrupted, _ = reference_run
    workdir = str(tmp_path / "a")
    shutil.copytree(source, workdir)
    _cut_in_half(os.path.join(workdir, "checkpoints", "ckpt-6"))
    events = []
    resumed = train_and_evaluate(TINY_ARCH, tiny_config(cache_dir), workdir, seed=3, progress=events.append)
    assert resumed["resumed_from_step"] == 3 and resumed["steps_run"] == 3
    assert any(e["event"] == "warning" and "ckpt-6 does not read back" in e["message"] for e in events), events
    assert {k: resumed[k] for k in METRIC_KEYS} == {k: uninterrupted[k] for k in METRIC_KEYS}

    workdir = str(tmp_path / "b")
    shutil.copytree(source, workdir)
    for step in (3, 6):
        _cut_in_half(os.path.join(workdir, "checkpoints", f"ckpt-{step}"))
    with pytest.raises(TrainingError, match=r"checkpoints: no checkpoint reads back .*remove that directory"):
        train_and_evaluate(TINY_ARCH, tiny_config(cache_dir), workdir, seed=3)


def test_labelling_in_the_training_step_trains_on_the_same_targets(cache_dir, reference_run, tmp_path):
    """Same losses step by step, up to float rounding of the box codes (which a few SGD steps of a
    tiny model amplify: 1e-8 in the codes became 1% of the loss by step 6, so later steps are
    compared loosely). One mode is the reference run's, which labels as "auto" picks (on the host
    without a GPU); the other is trained here."""
    _, _, reference_events = reference_run
    auto = "device" if resolve_runtime(tiny_config(cache_dir).trainer).label_on_device else "host"
    losses = {auto: [e["loss"] for e in reference_events if e["event"] == "train"]}
    for mode in {"host", "device"} - {auto}:
        config = tiny_config(cache_dir, anchor_labeling=mode)
        assert resolve_runtime(config.trainer).label_on_device == (mode == "device")
        events = []
        metrics = train_and_evaluate(TINY_ARCH, config, str(tmp_path / mode), seed=3, progress=events.append)
        losses[mode] = [e["loss"] for e in events if e["event"] == "train"]
        assert metrics["steps_run"] == 6 and math.isfinite(metrics["final_loss"]) and 0 <= metrics["AP"] <= 1
    host, device = losses["host"], losses["device"]
    assert len(host) == len(device) == 6
    assert device[0] == pytest.approx(host[0], rel=1e-6)
    assert device[1] == pytest.approx(host[1], rel=1e-4)
    assert device == pytest.approx(host, rel=0.05)


_GPU_DEFAULTS_RUN = """
import json, sys
sys.path.insert(0, sys.argv[1])
from test_trainer import TINY_ARCH, tiny_config
from proxy_trainer.training.runtime import resolve_runtime
from proxy_trainer.training.config import TrainerConfig
from proxy_trainer.training.trainer import train_and_evaluate

config = tiny_config(sys.argv[2], anchor_labeling="device", jit_compile="on", mixed_precision="bfloat16",
                     graph_optimizer="on", deterministic="auto")
events = []
metrics = train_and_evaluate(TINY_ARCH, config, sys.argv[3], seed=3, progress=events.append)
runtime = resolve_runtime(config.trainer)
gpu = resolve_runtime(TrainerConfig(), has_gpu=True)
print(json.dumps({
    "same_as_gpu": runtime.__dict__ == {**gpu.__dict__, "has_gpu": False},
    "losses": [e["loss"] for e in events if e["event"] == "train"], "AP": metrics["AP"],
}))
"""


def test_the_gpu_defaults_train_on_cpu_too(cache_dir, tmp_path):
    """bfloat16, one XLA-compiled step that labels its own anchors, Grappler, no op determinism:
    what "auto" picks with a GPU, run here (in a fresh process: this one has op determinism on) so
    a change that breaks XLA compilation fails without a GPU."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = [sys.executable, "-c", _GPU_DEFAULTS_RUN, os.path.dirname(__file__), cache_dir, str(tmp_path)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["same_as_gpu"]
    assert len(result["losses"]) == 6 and all(math.isfinite(v) for v in result["losses"])
    assert 0 <= result["AP"] <= 1


def test_xla_and_op_determinism_exclude_each_other(cache_dir, tmp_path):
    with pytest.raises(ValueError, match="jit_compile and trainer.deterministic are both 'on'"):
        TrainerConfig(jit_compile="on", deterministic="on").validate()
    assert not resolve_runtime(TrainerConfig(jit_compile="on"), has_gpu=False).deterministic
    assert not resolve_runtime(TrainerConfig(deterministic="on"), has_gpu=True).jit_compile
    # This process has op determinism on (earlier trials): XLA is refused with a clear error.
    setup_runtime(TrainerConfig(), seed=0)
    with pytest.raises(TrainingError, match="turned TensorFlow op determinism on"):
        train_and_evaluate(TINY_ARCH, tiny_config(cache_dir, jit_compile="on"), str(tmp_path), seed=0)


def test_a_workdir_of_another_trial_is_refused(cache_dir, reference_run):
    workdir, _, _ = reference_run
    with pytest.raises(TrainingError, match=r"holds another trial \(differs in seed\)"):
        train_and_evaluate(TINY_ARCH, tiny_config(cache_dir), workdir, seed=4)
    with pytest.raises(TrainingError, match="trainer.learning_rate"):
        train_and_evaluate(TINY_ARCH, tiny_config(cache_dir, learning_rate=0.5), workdir, seed=3)


def test_exploding_learning_rate_stops_the_trial(cache_dir, tmp_path):
    config = tiny_config(cache_dir, learning_rate=1e9, warmup_steps=0, warmup_learning_rate=0.0, train_steps=20)
    with pytest.raises(NonFiniteLossError, match="training stopped at step .*: non-finite"):
        train_and_evaluate(TINY_ARCH, config, str(tmp_path), seed=0)
    assert tf.train.latest_checkpoint(os.path.join(tmp_path, "checkpoints")) is None


def test_nan_in_the_data_stops_the_trial_at_its_first_step(cache_dir, tmp_path, monkeypatch):
    class PoisonedLabeler(AnchorLabeler):
        def __call__(self, element):
            out = super().__call__(element)
            out["image"] = out["image"] * np.float32("nan")
            return out

    monkeypatch.setattr(trainer_module, "AnchorLabeler", PoisonedLabeler)
    with pytest.raises(NonFiniteLossError, match=r"step 1/6: non-finite (loss|gradients)"):
        train_and_evaluate(TINY_ARCH, tiny_config(cache_dir), str(tmp_path), seed=0)


def test_more_classes_in_the_data_than_the_model_is_an_error(cache_dir, tmp_path):
    config = tiny_config(cache_dir)
    config.model = dataclasses.replace(config.model, num_classes=2)
    with pytest.raises(TrainingError, match="model.num_classes is 2 but the data has class indices up to 3"):
        train_and_evaluate(TINY_ARCH, config, str(tmp_path), seed=0)


# The synthetic_smoke recipe. Measured over seeds 0, 1, 2: trained AP 0.21-0.29 and AP50
# 0.52-0.64, untrained AP 0.000; the thresholds leave a factor of about 2.5 below the lowest.
LEARNED_AP = 0.08


def test_short_training_beats_the_untrained_model_clearly(synthetic_smoke_spinenet49):
    # The registered experiment itself, trained by nas-train (tests/conftest.py, a search's trial alike), so
    # the test follows any change to its recipe; the untrained model is evaluated here on the same data.
    from experiments.overrides import apply_overrides
    from experiments.registry import get_experiment

    config = apply_overrides(
        get_experiment("synthetic_smoke"), {"data.cache_dir": synthetic_smoke_spinenet49.cache_dir}
    )
    arch = spinenet49(config.search_space.scaling)
    untrained = evaluate_model(
        build_model(config.model, arch),
        prepare_data(config.data, config.model.input_size),
        config.model,
        config.trainer,
    )
    trained = synthetic_smoke_spinenet49.metrics
    assert untrained["AP"] < 0.01
    assert trained["AP"] > LEARNED_AP and trained["AP50"] > 2.5 * LEARNED_AP
