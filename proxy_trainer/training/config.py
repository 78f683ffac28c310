"""Typed, frozen configuration of proxy training and of its evaluation.

Defaults are the public proxy recipe (docs/proxy_recipe.md; the reference
RetinaNet training defaults): SGD with momentum 0.9, batch 64, learning rate
0.08 reached by a linear warmup over 500 steps from 0.0067, then step decay
by 10x at 2/3 and at 8/9 of training (the reference's steps 15,000 and
20,000 of 22,500), 5 epochs, L2 weight decay 4e-5 (the reference SpineNet
configs; its ResNet default is 1e-4), focal loss alpha 0.25 gamma 1.5, Huber
delta 0.1 with box loss weight 50, anchors labelled positive at IoU >= 0.5 and
negative below 0.4 (the RetinaNet paper's thresholds; the reference parsers
default to 0.5 for both, i.e. no ignore band: see
docs/proxy_recipe.md#anchor-matching), and the reference post-processing
(score threshold 0.05, NMS IoU 0.5, 100 detections).

Field types are the simple ones ``experiments.overrides`` applies strictly.
"""

from __future__ import annotations

import dataclasses

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
SWITCHES = ("auto", "on", "off")
LABELLING = ("auto", "host", "device")


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """How one architecture is trained and evaluated.

    Attributes:
      batch_size: training images per step.
      epochs: passes over the training split (fractions allowed); ignored
        when ``train_steps`` > 0.
      train_steps: total training steps; 0 derives them from ``epochs``.
      stop_at_epoch: stop training at the end of this epoch (fractions
        allowed) and evaluate there, without changing the schedule, which is
        still that of the whole run (``epochs`` / ``train_steps``): a run in
        the same workdir with a later stop (or none) continues from the
        checkpoint written there and ends exactly as one uninterrupted run.
        0 = train to the end. A multi-fidelity search (``search.fidelity=asha``)
        sets it for each rung.
      learning_rate: peak learning rate, reached at the end of warmup.
      warmup_steps: linear warmup steps (capped at the total step count).
      warmup_learning_rate: learning rate at step 0.
      decay_boundaries: fractions of the total steps after which the learning
        rate is multiplied by ``decay_rate``; ascending, each in (0, 1).
      decay_rate: the step-decay factor.
      momentum: SGD momentum.
      weight_decay: L2 weight decay on convolution kernels (loss term
        ``0.5 * weight_decay * sum(kernel ** 2)``).
      gradient_clip_norm: clip gradients to this global norm; 0 = off.
      match_threshold: IoU at or above which an anchor is positive.
      unmatched_threshold: IoU below which an anchor is negative.
      focal_alpha: focal loss alpha.
      focal_gamma: focal loss gamma.
      huber_delta: Huber loss delta of the box loss.
      box_loss_weight: weight of the box loss against the class loss.
      mixed_precision: "auto" (bfloat16 on a GPU, float32 on CPU),
        "float32", "bfloat16" or "float16" (with dynamic loss scaling).
      jit_compile: XLA-compile the training step: "auto" (on with a GPU,
        unless ``deterministic`` is "on"), "on" or "off".
      deterministic: TensorFlow op determinism: "auto" (on without a GPU and
        without XLA, so the same seed gives the same metrics on CPU), "on" or
        "off". XLA cannot compile the max-pool gradient deterministically, so
        it and ``jit_compile`` cannot both be "on".
      graph_optimizer: TensorFlow's graph optimizer (Grappler) on the traced
        steps: "auto" (on with a GPU), "on" or "off". On CPU it adds seconds
        to the first step of every trial and no measured speed (3 s of a
        15 s synthetic trial, same images/s).
      anchor_labeling: where training anchors are labelled: "auto" (in the
        training step with a GPU, in the input pipeline without one),
        "host" (the input pipeline, per image, on the real boxes) or "device"
        (the training step, on the batch's padded boxes). Same targets either
        way; at 512 px labelling is the input pipeline's most expensive work
        per image (a third of its images/s per core), cheap on a GPU.
      checkpoint_interval: steps between checkpoints; 0 = only at the end.
      max_checkpoints: checkpoints kept in the workdir.
      log_interval: steps between loss logs and TensorBoard summaries.
      eval_batch_size: images per evaluation step.
      eval_every_epoch: also evaluate AP on the held-out split at the end of
        every epoch (the last one is the final evaluation), so one run gives
        the proxy's learning curve: metrics ``AP_epoch_1``, ``AP_epoch_2``...
        and ``epoch_ap.json`` in the workdir. Off by default (each evaluation
        costs time); training computes the same either way.
      score_threshold: post-processing: minimum detection score.
      pre_nms_top_k: post-processing: candidates kept per class and image
        before NMS (the reference's 5,000).
      nms_iou_threshold: post-processing: NMS IoU threshold (per class).
      max_detections: post-processing: detections kept per image.
    """

    batch_size: int = 64
    epochs: float = 5.0
    train_steps: int = 0
    stop_at_epoch: float = 0.0
    learning_rate: float = 0.08
    warmup_steps: int = 500
    warmup_learning_rate: float = 0.0067
    decay_boundaries: tuple[float, ...] = (2 / 3, 8 / 9)
    decay_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 4e-5
    gradient_clip_norm: float = 0.0
    match_threshold: float = 0.5
    unmatched_threshold: float = 0.4
    focal_alpha: float = 0.25
    focal_gamma: float = 1.5
    huber_delta: float = 0.1
    box_loss_weight: float = 50.0
    mixed_precision: str = "auto"
    jit_compile: str = "auto"
    deterministic: str = "auto"
    graph_optimizer: str = "auto"
    anchor_labeling: str = "auto"
    checkpoint_interval: int = 500
    max_checkpoints: int = 2
    log_interval: int = 50
    eval_batch_size: int = 8
    eval_every_epoch: bool = False
    score_threshold: float = 0.05
    pre_nms_top_k: int = 5000
    nms_iou_threshold: float = 0.5
    max_detections: int = 100

    def validate(self) -> None:
        """Raises ValueError naming the first invalid field and its allowed values."""

        def bad(name: str, allowed: str) -> None:
            raise ValueError(f"trainer.{name}: {getattr(self, name)!r}; allowed {allowed}")

        for name in ("batch_size", "eval_batch_size", "max_checkpoints", "log_interval", "max_detections"):
            if getattr(self, name) < 1:
                bad(name, ">= 1")
        for name in ("train_steps", "warmup_steps", "checkpoint_interval"):
            if getattr(self, name) < 0:
                bad(name, ">= 0")
        if not self.stop_at_epoch >= 0:
            bad("stop_at_epoch", ">= 0 (0 = train to the end)")
        if self.train_steps == 0 and not self.epochs > 0:
            bad("epochs", "> 0 (or set trainer.train_steps)")
        if not self.learning_rate > 0:
            bad("learning_rate", "> 0")
        if not 0 <= self.warmup_learning_rate <= self.learning_rate:
            bad("warmup_learning_rate", f"0..learning_rate ({self.learning_rate})")
        b = self.decay_boundaries
        if any(not 0 < x < 1 for x in b) or any(x >= y for x, y in zip(b, b[1:])):
            bad("decay_boundaries", "ascending fractions of the total steps, each in (0, 1)")
        if not 0 < self.decay_rate <= 1:
            bad("decay_rate", "(0, 1]")
        if not 0 <= self.momentum < 1:
            bad("momentum", "[0, 1)")
        for name in ("weight_decay", "gradient_clip_norm", "focal_gamma", "huber_delta", "box_loss_weight"):
            if getattr(self, name) < 0:
                bad(name, ">= 0")
        if self.huber_delta == 0:
            bad("huber_delta", "> 0")
        if not 0 <= self.focal_alpha <= 1:
            bad("focal_alpha", "[0, 1]")
        if not 0 < self.match_threshold <= 1:
            bad("match_threshold", "(0, 1]")
        if not 0 <= self.unmatched_threshold <= self.match_threshold:
            bad("unmatched_threshold", f"0..match_threshold ({self.match_threshold})")
        if self.mixed_precision not in PRECISIONS:
            bad("mixed_precision", ", ".join(PRECISIONS))
        for name in ("jit_compile", "deterministic", "graph_optimizer"):
            if getattr(self, name) not in SWITCHES:
                bad(name, ", ".join(SWITCHES))
        if self.jit_compile == "on" and self.deterministic == "on":
            raise ValueError(
                "trainer.jit_compile and trainer.deterministic are both 'on'; XLA has no deterministic "
                "max-pool gradient (TensorFlow 2.21): turn one off or leave it 'auto'"
            )
        if self.anchor_labeling not in LABELLING:
            bad("anchor_labeling", ", ".join(LABELLING))
        if not 0 <= self.score_threshold < 1:
            bad("score_threshold", "[0, 1)")
        if not 0 < self.nms_iou_threshold <= 1:
            bad("nms_iou_threshold", "(0, 1]")
        if self.pre_nms_top_k < self.max_detections:
            bad("pre_nms_top_k", f">= max_detections ({self.max_detections})")

    def total_steps(self, num_train_images: int) -> int:
        """Training steps: ``train_steps``, or ``ceil(epochs * images / batch_size)``."""
        if self.train_steps > 0:
            return self.train_steps
        return max(1, -(-int(round(self.epochs * num_train_images)) // self.batch_size))

    def stop_step(self, num_train_images: int) -> int:
        """The step training stops at: the end of epoch ``stop_at_epoch`` (capped at ``total_steps``)."""
        total = self.total_steps(num_train_images)
        if self.stop_at_epoch <= 0:
            return total
        return min(total, max(1, -(-int(round(self.stop_at_epoch * num_train_images)) // self.batch_size)))
