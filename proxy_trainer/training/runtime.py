"""Where and how a trial runs: precision, XLA, determinism and seeds.

``setup_runtime`` resolves the "auto" settings of a ``TrainerConfig`` for
this machine: with a GPU, bfloat16 mixed precision, XLA, TensorFlow's
graph optimizer and anchor labelling inside the training step; without one,
float32, no XLA, no graph optimizer (it only lengthens tracing there),
anchor labelling in the input pipeline and TensorFlow op determinism (so the same seed
gives the same metrics on CPU). It seeds Python, NumPy and TensorFlow
(``keras.utils.set_random_seed``).

Op determinism is a process-wide TensorFlow switch that cannot be turned off
again; a process that trains with it on keeps it on. XLA has no deterministic
max-pool gradient, so determinism and XLA exclude each other: "auto" picks
one, and setting both "on" is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import keras
import tensorflow as tf
from tensorflow.python.framework import config as tf_config  # is_op_determinism_enabled has no public API

from proxy_trainer.training.config import TrainerConfig
from proxy_trainer.training.errors import TrainingError

# Keras dtype policy of each precision: mixed = float32 variables, low-precision compute.
_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Resolved runtime settings of one trial.

    Attributes:
      has_gpu: TensorFlow sees a GPU.
      precision: "float32", "bfloat16" or "float16".
      jit_compile: the training and inference steps are XLA-compiled.
      deterministic: TensorFlow op determinism is on.
      graph_optimizer: TensorFlow's graph optimizer (Grappler) runs on traced functions.
      label_on_device: the training step labels anchors (not the input pipeline).
    """

    has_gpu: bool
    precision: str
    jit_compile: bool
    deterministic: bool
    graph_optimizer: bool = True
    label_on_device: bool = False

    @property
    def loss_scaling(self) -> bool:
        """float16 needs dynamic loss scaling; bfloat16 and float32 do not."""
        return self.precision == "float16"

    @contextlib.contextmanager
    def policy(self) -> Iterator[None]:
        """Builds layers under this precision's Keras dtype policy, restoring the previous one after."""
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(_POLICIES[self.precision])
        try:
            yield
        finally:
            keras.config.set_dtype_policy(previous)


def resolve_runtime(config: TrainerConfig, has_gpu: bool | None = None) -> Runtime:
    """The settings ``config`` asks for on this machine (no side effects).

    Args:
      config: the trainer config ("auto" values are resolved).
      has_gpu: override GPU detection (tests); None asks TensorFlow.
    """
    if has_gpu is None:
        has_gpu = bool(tf.config.list_physical_devices("GPU"))
    precision = config.mixed_precision
    if precision == "auto":
        precision = "bfloat16" if has_gpu else "float32"
    # XLA cannot compile the max-pool gradient deterministically (TF 2.21), so an "auto" switch yields
    # to the other one set explicitly (both set "on" is refused by TrainerConfig.validate).
    if config.jit_compile == "auto":
        jit = has_gpu and config.deterministic != "on"
    else:
        jit = config.jit_compile == "on"
    if config.deterministic == "auto":
        deterministic = not has_gpu and not jit
    else:
        deterministic = config.deterministic == "on"
    optimizer = has_gpu if config.graph_optimizer == "auto" else config.graph_optimizer == "on"
    on_device = has_gpu if config.anchor_labeling == "auto" else config.anchor_labeling == "device"
    return Runtime(
        has_gpu=has_gpu, precision=precision, jit_compile=jit, deterministic=deterministic, graph_optimizer=optimizer,
        label_on_device=on_device,
    )  # fmt: skip


def setup_runtime(config: TrainerConfig, seed: int) -> Runtime:
    """Resolves the runtime, seeds every generator, sets the graph optimizer and op determinism.

    Raises:
      TrainingError: XLA asked for in a process where an earlier trial turned op determinism on.
    """
    runtime = resolve_runtime(config)
    if runtime.jit_compile and tf_config.is_op_determinism_enabled():
        raise TrainingError(
            "this trial XLA-compiles its steps (trainer.jit_compile), but an earlier trial in this process "
            "turned TensorFlow op determinism on, which cannot be turned off and has no deterministic XLA "
            "max-pool gradient; run trials of different trainer.deterministic settings in separate processes "
            "(search.fresh_worker_per_trial=true), or set trainer.jit_compile=off"
        )
    # A process-wide switch, set on every call: functions traced from now on follow it.
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not runtime.graph_optimizer})
    keras.utils.set_random_seed(seed)
    # TensorFlow's random_seed.get_seed evaluates a (global, op) seed pair as a Python bool when
    # the global seed is 0, which fails for the tensor-valued op seeds of tf.data shuffles; so the
    # global TensorFlow seed is never 0 (still a pure function of ``seed``).
    tf.random.set_seed(1 + seed % (2**31 - 2))
    if runtime.deterministic:
        tf.config.experimental.enable_op_determinism()
    return runtime


def limit_cpu_threads(num_threads: int) -> bool:
    """Caps TensorFlow's op thread pools at ``num_threads`` in a process without a GPU.

    Trials that share a machine's cores (a search's slots) otherwise each start
    one thread per core and thrash: two synthetic trials on 2 cores ran at half
    the images/s of one trial on one core. Only possible before TensorFlow
    runs its first op; later calls, and calls where a GPU is visible, change
    nothing.

    Returns:
      Whether the cap was applied.
    """
    if num_threads < 1 or tf.config.list_physical_devices("GPU"):
        return False
    try:
        tf.config.threading.set_intra_op_parallelism_threads(num_threads)
        tf.config.threading.set_inter_op_parallelism_threads(num_threads)
    except RuntimeError:  # TensorFlow is already running in this process
        return False
    return True


def cpu_threads_in_use() -> int | None:
    """TensorFlow's intra-op thread count as set by ``limit_cpu_threads``; None when left to TensorFlow."""
    return tf.config.threading.get_intra_op_parallelism_threads() or None
