"""Proxy training and evaluation of one architecture: the search's reward.

``train_and_evaluate(architecture, config, workdir, seed)`` builds the
RetinaNet proxy of ``architecture`` (``config.model``), trains it on the
training split of ``config.data`` with ``config.trainer`` (SGD with momentum,
linear warmup then step decay, focal + Huber loss, L2 weight decay), then
evaluates COCO box AP on the held-out split with pycocotools, and returns the
metrics. ``config`` is any object with ``model`` (``ModelConfig``), ``data``
(``DataConfig``) and ``trainer`` (``TrainerConfig``) sections, such as an
experiment's ``ExperimentConfig``.

The workdir holds ``trial.json`` (what is trained: architecture fingerprint,
seed, the three sections), ``checkpoints/`` (a ``tf.train.CheckpointManager``:
model, optimizer and step, every ``checkpoint_interval`` steps and at the end)
and ``tensorboard/`` (loss, learning rate, throughput, AP). Running again in
the same workdir resumes from the latest checkpoint with the same data stream
(the input pipeline skips the examples already seen), so an interrupted and a
continuous run end with the same metrics on CPU.

With ``trainer.eval_every_epoch`` the model is also evaluated at the end of
every epoch; each result is written to ``epoch_ap.json`` (atomically) before
the checkpoint of that step, so a resumed run keeps the epochs before its
checkpoint and evaluates the later ones again (to the same values on CPU).

With ``trainer.stop_at_epoch`` training stops at the end of that epoch and
the model is evaluated there (a rung of a multi-fidelity search); the
learning-rate schedule is still the whole run's, so running again with a
later stop continues from that checkpoint as if it had never stopped.

A non-finite loss or gradient stops the trial with ``NonFiniteLossError``;
the step's update is not applied and no checkpoint is written after it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from proxy_trainer.data.coco_files import DataError
from proxy_trainer.data.pipeline import ProxyData, prepare_data
from proxy_trainer.detector.anchor_labeler import AnchorLabeler
from proxy_trainer.detector.anchors import Anchors
from proxy_trainer.detector.losses import retinanet_loss, weight_decay_loss
from proxy_trainer.detector.postprocess import generate_detections
from proxy_trainer.detector.retinanet import build_model
from proxy_trainer.evaluation.coco_eval import CocoEvaluator
from proxy_trainer.training.config import TrainerConfig
from proxy_trainer.training.errors import NonFiniteLossError, TrainingError
from proxy_trainer.training.runtime import Runtime, setup_runtime
from proxy_trainer.training.schedule import WarmupStepDecay
from proxy_trainer.training.trial_file import CHECKPOINT_DIR, check_trial_file, trial_identity, write_trial_file
from search_space import Architecture, write_file_atomically

TENSORBOARD_DIR = "tensorboard"
EPOCH_AP_FILE = "epoch_ap.json"
__all__ = ["NonFiniteLossError", "TrainingError", "epoch_end_steps", "evaluate_model", "train_and_evaluate"]
Progress = Callable[[dict[str, Any]], None]


def train_and_evaluate(
    architecture: Architecture, config: Any, workdir: str, seed: int = 0, *, progress: Progress | None = None
) -> dict[str, float | int]:
    """Trains the proxy RetinaNet of ``architecture`` and evaluates its COCO box AP.

    Args:
      architecture: the topology with its scaling.
      config: has ``.model`` (ModelConfig), ``.data`` (DataConfig) and
        ``.trainer`` (TrainerConfig).
      workdir: checkpoints, TensorBoard events and ``trial.json``; an existing
        one is resumed.
      seed: seeds initialisation, shuffling and augmentation.
      progress: optional callback receiving event dicts (``event`` = "info",
        "resume", "train", "evaluate").

    Returns:
      ``AP``, ``AP50``, ``AP75``, ``APs``, ``APm``, ``APl`` (fractions in
      [0, 1]; -1 for an area range without ground truth, as pycocotools),
      ``train_s`` and ``eval_s`` (wall seconds of this call), ``steps`` (total
      training steps), ``steps_run`` (steps run by this call),
      ``resumed_from_step``, ``images_per_s`` (training throughput after the
      first step), ``final_loss``, ``params`` and ``multiply_adds`` (the
      cost model at the input size), ``num_train_images``,
      ``num_eval_images``; with ``trainer.eval_every_epoch`` also
      ``AP_epoch_K`` for every epoch K (1-based; the last is ``AP``),
      ``epoch_steps_K`` (the step it ended at) and ``epoch_eval_s`` (seconds
      of this call spent on those evaluations, not counted in ``train_s``).

    Raises:
      TrainingError: non-finite loss (``NonFiniteLossError``), a workdir that
        holds another trial, or a model/data mismatch.
      DataError: bad data (from the input pipeline).
    """
    emit = progress or (lambda event: None)
    model_cfg, trainer_cfg = config.model, config.trainer
    trainer_cfg.validate()
    os.makedirs(workdir, exist_ok=True)
    ident = trial_identity(architecture, config, seed)
    check_trial_file(workdir, ident)
    runtime = setup_runtime(trainer_cfg, seed)
    try:
        data = prepare_data(config.data, model_cfg.input_size, log=lambda m: emit({"event": "info", "message": m}))
    except DataError:
        raise
    except ValueError as e:  # an unusable data config, e.g. COCO paths not given
        raise DataError(str(e)) from None
    if data.num_classes > model_cfg.num_classes:
        raise TrainingError(
            f"model.num_classes is {model_cfg.num_classes} but the data has class indices up to "
            f"{data.num_classes - 1} (category ids up to {data.num_classes}); set model.num_classes={data.num_classes}"
        )
    anchors = anchors_for(model_cfg)
    with runtime.policy():
        model = build_model(model_cfg, architecture)
    _check_outputs(model, anchors, model_cfg)
    total_steps = trainer_cfg.total_steps(data.num_train_images)
    state = _TrainState(model, trainer_cfg, total_steps, runtime)
    state.stop_step = trainer_cfg.stop_step(data.num_train_images)
    manager = tf.train.CheckpointManager(
        state.checkpoint, os.path.join(workdir, CHECKPOINT_DIR), max_to_keep=trainer_cfg.max_checkpoints
    )
    resumed_from = 0
    if manager.checkpoints:
        used = _restore_checkpoint(state, manager, emit)
        resumed_from = int(state.step.numpy())
        emit({"event": "resume", "message": f"resuming at step {resumed_from}/{total_steps} from {used}"})
    write_trial_file(workdir, ident)
    writer = tf.summary.create_file_writer(os.path.join(workdir, TENSORBOARD_DIR))

    evaluate = make_evaluation(model, data, model_cfg, trainer_cfg, runtime)
    epochs = _EpochEvaluations(workdir, data, trainer_cfg, total_steps, resumed_from, evaluate, writer, emit)
    epochs.stop_step = state.stop_step
    start = time.perf_counter()
    stats = _train(state, data, anchors, model_cfg, trainer_cfg, seed, manager, writer, emit, epochs)
    train_s = time.perf_counter() - start - epochs.seconds

    emit({"event": "evaluate", "message": f"evaluating AP on {data.num_eval_images} held-out images"})
    start = time.perf_counter()
    ap = evaluate()
    eval_s = time.perf_counter() - start
    with writer.as_default(step=state.stop_step):
        for name, value in ap.items():
            tf.summary.scalar(f"eval/{name}", value)
    writer.flush()
    per_epoch = epochs.finish(ap) if trainer_cfg.eval_every_epoch else {}
    stopped = {}
    if state.stop_step < total_steps:
        stopped = {
            "stopped_at_step": state.stop_step,
            "epochs_trained": state.stop_step * trainer_cfg.batch_size / data.num_train_images,
        }

    cost = model_cfg.cost(architecture)
    return {
        **ap,
        **per_epoch,
        **stopped,
        "train_s": train_s,
        "eval_s": eval_s,
        "steps": total_steps,
        "steps_run": stats["steps_run"],
        "resumed_from_step": resumed_from,
        "images_per_s": stats["images_per_s"],
        "final_loss": stats["final_loss"],
        "params": cost.params,
        "multiply_adds": cost.multiply_adds,
        "num_train_images": data.num_train_images,
        "num_eval_images": data.num_eval_images,
    }


def anchors_for(model_cfg: Any) -> Anchors:
    """The anchors of a model config (input size, levels, scales, aspect ratios, anchor size)."""
    return Anchors(
        model_cfg.input_size,
        min_level=model_cfg.min_level,
        max_level=model_cfg.max_level,
        num_scales=model_cfg.num_scales,
        aspect_ratios=model_cfg.aspect_ratios,
        anchor_size=model_cfg.anchor_size,
    )


def evaluate_model(
    model: keras.Model, data: ProxyData, model_cfg: Any, trainer_cfg: TrainerConfig, runtime: Runtime | None = None
) -> dict[str, float]:
    """COCO box AP of ``model`` on the held-out split of ``data``.

    Returns:
      ``AP``, ``AP50``, ``AP75``, ``APs``, ``APm``, ``APl``.
    """
    return make_evaluation(model, data, model_cfg, trainer_cfg, runtime)()


def make_evaluation(
    model: keras.Model, data: ProxyData, model_cfg: Any, trainer_cfg: TrainerConfig, runtime: Runtime | None = None
) -> Callable[[], dict[str, float]]:
    """A function that evaluates ``model``'s current weights as ``evaluate_model`` does.

    Its traced steps are made once, so evaluating after every epoch traces
    them once, not once per epoch.
    """
    anchors = anchors_for(model_cfg)
    jit = runtime.jit_compile if runtime is not None else False

    @tf.function(jit_compile=jit, reduce_retracing=True, autograph=False)
    def predict(images):
        return model(images, training=False)

    @tf.function(reduce_retracing=True, autograph=False)
    def detect(outputs):
        return generate_detections(
            outputs["cls_outputs"],
            outputs["box_outputs"],
            anchors,
            model_cfg.num_classes,
            score_threshold=trainer_cfg.score_threshold,
            pre_nms_top_k=trainer_cfg.pre_nms_top_k,
            nms_iou_threshold=trainer_cfg.nms_iou_threshold,
            max_detections=trainer_cfg.max_detections,
        )

    def evaluate() -> dict[str, float]:
        evaluator = CocoEvaluator(data.eval_ground_truth(), data.eval_image_ids)
        for batch in data.eval_dataset(trainer_cfg.eval_batch_size):
            det = detect(predict(batch["image"]))
            evaluator.add_batch(
                batch["image_id"].numpy(),
                det["boxes"].numpy(),
                det["scores"].numpy(),
                det["classes"].numpy(),
                batch["image_scale"].numpy(),
                batch["original_size"].numpy(),
                det["num_detections"].numpy(),
            )
        return evaluator.evaluate()

    return evaluate


def epoch_end_steps(num_train_images: int, batch_size: int, total_steps: int) -> list[int]:
    """The step at which each epoch ends: ``ceil(K * images / batch)`` for K = 1, 2, ..., the last capped
    at ``total_steps`` (a fractional last epoch ends with training)."""
    ends: list[int] = []
    k = 1
    while True:
        end = -(-k * num_train_images // batch_size)
        if end >= total_steps:
            ends.append(total_steps)
            return ends
        ends.append(end)
        k += 1


class _EpochEvaluations:
    """The per-epoch evaluations of one run (``trainer.eval_every_epoch``), kept in ``epoch_ap.json``.

    The file is rewritten (atomically) after each evaluation, before the
    checkpoint of that step; on resume the entries after the restored step
    are dropped (they are evaluated again), the others kept.
    """

    def __init__(self, workdir, data, cfg, total_steps, resumed_from, evaluate, writer, emit):
        self.enabled = cfg.eval_every_epoch
        self.path = os.path.join(workdir, EPOCH_AP_FILE)
        self.ends = epoch_end_steps(data.num_train_images, cfg.batch_size, total_steps) if self.enabled else []
        self.evaluate, self.writer, self.emit = evaluate, writer, emit
        self.seconds = 0.0
        self.stop_step = total_steps
        self.entries: list[dict[str, Any]] = []
        if self.enabled and resumed_from > 0 and os.path.exists(self.path):
            try:
                with open(self.path) as f:
                    saved = json.load(f)["epochs"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise TrainingError(
                    f"{self.path}: unreadable ({e}); remove the trial's workdir to train it again"
                ) from None
            self.entries = [e for e in saved if e["step"] <= resumed_from]

    def after_step(self, step: int) -> None:
        """Evaluates when ``step`` ends an epoch (not where training stops: that is the final evaluation)."""
        if not self.enabled or step not in self.ends or step == self.ends[-1] or step == self.stop_step:
            return
        start = time.perf_counter()
        ap = self.evaluate()
        self._record(step, ap)
        self.seconds += time.perf_counter() - start
        epoch = self.ends.index(step) + 1
        self.emit({"event": "info", "message": f"epoch {epoch}/{len(self.ends)}: AP {ap['AP']:.4f}"})

    def finish(self, final_ap: dict[str, float]) -> dict[str, float]:
        """Records the final evaluation as the last epoch's (or the stop's); returns the per-epoch metrics."""
        if self.stop_step in self.ends:
            self._record(self.stop_step, final_ap)
        out: dict[str, float] = {"epoch_eval_s": self.seconds}
        for entry in self.entries:
            out[f"AP_epoch_{entry['epoch']}"] = entry["AP"]
            out[f"epoch_steps_{entry['epoch']}"] = entry["step"]
        return out

    def _record(self, step: int, ap: dict[str, float]) -> None:
        epoch = self.ends.index(step) + 1
        self.entries = [e for e in self.entries if e["step"] != step] + [{"epoch": epoch, "step": step, **ap}]
        self.entries.sort(key=lambda e: e["step"])
        write_file_atomically(self.path, json.dumps({"epochs": self.entries}, indent=1) + "\n")
        with self.writer.as_default(step=step):
            tf.summary.scalar("epoch/AP", ap["AP"])


@dataclasses.dataclass
class _TrainState:
    """Model, optimizer and step counter, and the checkpoint that holds them."""

    model: keras.Model
    trainer_cfg: TrainerConfig
    total_steps: int
    runtime: Runtime
    stop_step: int = 0  # where this run stops (``trainer.stop_at_epoch``); the schedule is total_steps

    def __post_init__(self):
        cfg = self.trainer_cfg
        warmup = min(cfg.warmup_steps, self.total_steps)
        boundaries = tuple(max(1, int(round(f * self.total_steps))) for f in cfg.decay_boundaries)
        self.schedule = WarmupStepDecay(cfg.learning_rate, warmup, cfg.warmup_learning_rate, boundaries, cfg.decay_rate)
        optimizer = keras.optimizers.SGD(learning_rate=self.schedule, momentum=cfg.momentum)
        if self.runtime.loss_scaling:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(self.model.trainable_variables)
        self.optimizer = optimizer
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=optimizer, step=self.step)


def _train(
    state: _TrainState,
    data: ProxyData,
    anchors: Anchors,
    model_cfg: Any,
    cfg: TrainerConfig,
    seed: int,
    manager: tf.train.CheckpointManager,
    writer: Any,
    emit: Progress,
    epochs: _EpochEvaluations,
) -> dict[str, Any]:
    first = int(state.step.numpy())
    stop = state.stop_step or state.total_steps
    if first >= stop:
        return {"steps_run": 0, "images_per_s": 0.0, "final_loss": float("nan")}
    labeler = AnchorLabeler(
        anchors, model_cfg.num_classes, match_threshold=cfg.match_threshold, unmatched_threshold=cfg.unmatched_threshold
    )
    on_device = state.runtime.label_on_device
    label_fn = labeler.check_classes if on_device else labeler
    dataset = data.train_dataset(cfg.batch_size, seed=seed, label_fn=label_fn, start_example=first * cfg.batch_size)
    train_step = _make_train_step(state, anchors, model_cfg, cfg, labeler if on_device else None)
    keys = _DEVICE_LABEL_KEYS if on_device else _TRAIN_KEYS

    iterator = iter(dataset)
    last: dict[str, float] = {}
    t_first = None  # after the first step, which includes tracing
    start = time.perf_counter()
    pending = None  # the previous step, checked after the next one is dispatched (no per-step stall)
    for step in range(first + 1, stop + 1):
        batch = next(iterator)
        result = train_step({k: batch[k] for k in keys})
        if pending is not None:
            _raise_if_non_finite(*pending, state)
        pending = (step, result)
        if t_first is None:
            _raise_if_non_finite(step, result, state)
            t_first = time.perf_counter()
        log_now = step % cfg.log_interval == 0 or step == stop
        save_now = cfg.checkpoint_interval and step % cfg.checkpoint_interval == 0 and step < stop
        epoch_end = epochs.enabled and step in epochs.ends
        if log_now or save_now or epoch_end:
            _raise_if_non_finite(step, result, state)  # never log, save or evaluate a non-finite state
        if epoch_end:
            epochs.after_step(step)  # before the checkpoint of this step: a resume after it keeps the result
        if log_now:
            last = {k: float(v) for k, v in result.items() if k != "finite"}
            elapsed = time.perf_counter() - t_first - epochs.seconds
            ips = (step - first - 1) * cfg.batch_size / elapsed if step > first + 1 and elapsed > 0 else 0.0
            lr = float(state.schedule(step - 1))
            with writer.as_default(step=step):
                for name, value in last.items():
                    tf.summary.scalar(f"train/{name}", value)
                tf.summary.scalar("train/learning_rate", lr)
                tf.summary.scalar("train/images_per_s", ips)
            emit({"event": "train", "step": step, "total_steps": state.total_steps, "loss": last["loss"],
                  "learning_rate": lr, "images_per_s": ips})  # fmt: skip
        if save_now:
            manager.save(checkpoint_number=step)
    _raise_if_non_finite(*pending, state)
    manager.save(checkpoint_number=stop)
    writer.flush()
    end = time.perf_counter()
    steps_run = stop - first
    if steps_run > 1 and end - epochs.seconds > t_first:
        images_per_s = (steps_run - 1) * cfg.batch_size / (end - t_first - epochs.seconds)
    else:
        images_per_s = steps_run * cfg.batch_size / max(end - start - epochs.seconds, 1e-9)
    return {"steps_run": steps_run, "images_per_s": images_per_s, "final_loss": last.get("loss", float("nan"))}


# The batch keys the training step reads (the rest stay on the host): labelled on the host, or
# labelled by the step itself.
_TRAIN_KEYS = ("image", "cls_targets", "box_targets", "cls_weights", "box_weights")
_DEVICE_LABEL_KEYS = ("image", "boxes", "classes")


def _raise_if_non_finite(step: int, result: dict[str, tf.Tensor], state: _TrainState) -> None:
    if bool(result["finite"].numpy()):
        return
    loss, norm = float(result["loss"]), float(result["grad_norm"])
    what = "gradients" if math.isfinite(loss) else "loss"
    raise NonFiniteLossError(
        f"training stopped at step {step}/{state.total_steps}: non-finite {what} (loss {loss}, gradient norm "
        f"{norm}) at learning rate {float(state.schedule(step - 1)):.4g}; the trial failed - lower "
        "trainer.learning_rate or set trainer.gradient_clip_norm"
    )


def _make_train_step(
    state: _TrainState, anchors: Anchors, model_cfg: Any, cfg: TrainerConfig, labeler: AnchorLabeler | None = None
):
    """The traced training step; with ``labeler``, it labels the batch's padded boxes itself."""
    model, optimizer = state.model, state.optimizer
    variables = model.trainable_variables
    loss_scaling = state.runtime.loss_scaling

    def train_step(batch):
        if labeler is not None:
            batch = {"image": batch["image"], **labeler.label_batch(batch["boxes"], batch["classes"])}
        with tf.GradientTape() as tape:
            outputs = model(batch["image"], training=True)
            losses = retinanet_loss(
                outputs, batch, anchors, model_cfg.num_classes, alpha=cfg.focal_alpha, gamma=cfg.focal_gamma,
                huber_delta=cfg.huber_delta, box_loss_weight=cfg.box_loss_weight,
            )  # fmt: skip
            decay = weight_decay_loss(variables, cfg.weight_decay)
            loss = losses["model_loss"] + decay
            scaled = optimizer.scale_loss(loss) if loss_scaling else loss
        grads = tape.gradient(scaled, variables)
        if loss_scaling:
            # The loss-scale optimizer unscales, skips non-finite steps and adapts the scale itself;
            # only the loss decides whether the trial failed.
            scale = optimizer.dynamic_scale
            grads = [g / tf.cast(scale, g.dtype) for g in grads]
        grad_norm = tf.linalg.global_norm(grads)
        finite = tf.math.is_finite(loss) & (tf.math.is_finite(grad_norm) | loss_scaling)
        if cfg.gradient_clip_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, cfg.gradient_clip_norm, use_norm=grad_norm)
        # A non-finite step applies zero gradients; the host stops the trial before any checkpoint.
        grads = [tf.where(finite, g, tf.zeros_like(g)) for g in grads]
        if loss_scaling:
            grads = [g * tf.cast(optimizer.dynamic_scale, g.dtype) for g in grads]
        optimizer.apply_gradients(zip(grads, variables))
        state.step.assign_add(1)
        return {
            "loss": loss,
            "model_loss": losses["model_loss"],
            "cls_loss": losses["cls_loss"],
            "box_loss": losses["box_loss"],
            "weight_decay_loss": decay,
            "grad_norm": grad_norm,
            "finite": finite,
        }

    # No autograph: the step has no tensor-dependent Python control flow, and converting every
    # Keras layer's call costs seconds per trial.
    return tf.function(train_step, jit_compile=state.runtime.jit_compile, reduce_retracing=True, autograph=False)


def _restore_checkpoint(state: _TrainState, manager: tf.train.CheckpointManager, emit: Callable) -> str:
    """Restores the newest checkpoint that reads back, newest first; returns its path.

    A checkpoint cut short (a full disk, a copy that stopped) does not end the
    trial while an older one is whole; the one skipped is said in the log and
    left in place.

    Raises:
      TrainingError: no checkpoint reads back; names the directory and what to do.
    """
    problems = []
    for path in reversed(manager.checkpoints):
        try:
            state.checkpoint.restore(path).assert_existing_objects_matched()
            for skipped, why in problems:
                emit({"event": "warning", "message": f"checkpoint {skipped} does not read back ({why}); used {path}"})
            return path
        except (tf.errors.OpError, ValueError, IndexError, AssertionError) as e:
            why = " ".join(str(e).split())[:200] or type(e).__name__
            problems.append((path, f"{type(e).__name__}: {why}"))
    directory = os.path.dirname(problems[0][0])
    raise TrainingError(
        f"{directory}: no checkpoint reads back ({problems[0][1]}); remove that directory to train this trial "
        "from the start"
    )


def _check_outputs(model: keras.Model, anchors: Anchors, model_cfg: Any) -> None:
    outputs = model.output if isinstance(model.output, dict) else None
    if outputs is None:
        return
    a = anchors.num_anchors_per_location
    for level in anchors.levels:
        cls = outputs["cls_outputs"][str(level)]
        h, w = anchors.feature_shape(level)
        if tuple(cls.shape[1:]) != (h, w, a * model_cfg.num_classes):
            raise TrainingError(
                f"model output at level {level} is {tuple(cls.shape[1:])}; anchors expect "
                f"{(h, w, a * model_cfg.num_classes)} (num_scales x aspect_ratios = {a} anchors per location)"
            )
