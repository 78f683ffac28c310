"""Proxy training speed: images/s of our trainer, side by side with the reference model.

Measures, in one run on this machine:

1. **step** (all models in one subprocess, steady-state steps interleaved,
   ``--rounds`` subprocesses with the build order swapped, best round kept):
   the full proxy training step at 512 px, batch 8 - forward in training
   mode, focal + Huber loss on real anchor labels (a fixed batch of the
   synthetic dataset), L2 weight decay, gradients, SGD with momentum 0.9 -
   on our RetinaNet and on the reference's (tf-models-official ``SpineNet`` +
   ``RetinaNetHead`` for the same SpineNet-49 proxy topology, from the
   virtual environment that ``bench_model.py`` sets up). Both use the same
   loss code and the same momentum update written with TensorFlow ops (Keras
   3's optimizer cannot update the reference's tf-keras variables); ours is
   also timed with the trainer's own step (``keras.optimizers.SGD`` with the
   warmup + step-decay schedule and the non-finite guard).
2. **trainer**: ``train_and_evaluate`` end to end at 512 px (input pipeline
   with decoding, augmentation and anchor labelling included): its measured
   training images/s and evaluation images/s.
3. On a machine with a GPU, the same with the GPU defaults (bfloat16 + XLA,
   anchors labelled in the training step) at the recipe's batch of 64, side
   by side with anchors labelled in the input pipeline, and the projected wall time of one paper-size
   proxy trial: 5 epochs x 110,895 images at the measured training rate plus
   7,392 held-out images at the measured evaluation rate. Projections come
   from measured rates only.

Usage::

    python bench/bench_training.py                   # CPU: steps + trainer; GPU: also bf16+XLA
    python bench/bench_training.py --skip_reference

Writes ``bench/results/training.json`` (``--output``; ``--output=`` writes nothing), from which the
README's figures are rendered (``bench/readme_results.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_model  # noqa: E402  (the reference venv and model builder live there)

from bench import results_io  # noqa: E402

# docs/proxy_recipe.md#the-proxy-task: the paper's proxy trial.
PAPER_TRAIN_IMAGES = 110_895
PAPER_EVAL_IMAGES = 7_392
PAPER_EPOCHS = 5
PAPER_EXPERIMENT = "spinenet49_coco_proxy"


def _synthetic_data(input_size: int, cache_dir: str):
    from proxy_trainer.data.config import DataConfig, SyntheticConfig
    from proxy_trainer.data.pipeline import prepare_data

    config = DataConfig(
        source="synthetic", synthetic=SyntheticConfig(num_images=96), holdout_size=32, cache_dir=cache_dir
    )
    return prepare_data(config, input_size)


def _measure_steps(args) -> dict:
    """In one subprocess: the proxy training step of each implementation of ``args.impl``.

    The models are built and traced one after the other, then their steady-state steps
    alternate, so that a change in the machine's load hits all of them alike.
    """
    import tensorflow as tf

    from proxy_trainer.detector.anchor_labeler import AnchorLabeler
    from proxy_trainer.detector.anchors import Anchors
    from proxy_trainer.detector.config import ModelConfig
    from proxy_trainer.detector.losses import retinanet_loss, weight_decay_loss
    from proxy_trainer.training import trainer
    from proxy_trainer.training.config import TrainerConfig
    from proxy_trainer.training.runtime import resolve_runtime

    anchors = Anchors(args.input_size)
    data = _synthetic_data(args.input_size, args.cache_dir)
    labeler = AnchorLabeler(anchors, args.num_classes)
    labelled = next(iter(data.train_dataset(args.batch_size, seed=0, label_fn=labeler)))
    batch = {k: labelled[k] for k in trainer._TRAIN_KEYS}

    def momentum_step(forward, variables):
        # The same loss and SGD-with-momentum update, written with TensorFlow ops, for either model.
        slots = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]

        @tf.function
        def step(b):
            with tf.GradientTape() as tape:
                losses = retinanet_loss(forward(b["image"]), b, anchors, args.num_classes)
                loss = losses["model_loss"] + weight_decay_loss(variables, 4e-5)
            for v, m, g in zip(variables, slots, tape.gradient(loss, variables)):
                m.assign(0.9 * m + g)
                v.assign_sub(0.01 * m)
            return loss

        return step

    steps = {}
    for impl in args.impl.split(","):
        if impl == "reference":
            model, _, variables = bench_model._build_reference(args)

            def forward(images, model=model):
                scores, boxes = model(images, training=True)
                return {"cls_outputs": scores, "box_outputs": boxes}

            step = momentum_step(forward, variables)
        elif impl == "ours":
            model, _, variables = bench_model._build_ours(args)
            step = momentum_step(lambda images, model=model: model(images, training=True), variables)
        else:  # the trainer's own step: Keras SGD with the warmup + step-decay schedule
            model, _, _ = bench_model._build_ours(args)
            cfg = TrainerConfig(batch_size=args.batch_size, mixed_precision="float32", jit_compile="off")
            state = trainer._TrainState(model, cfg, 1000, resolve_runtime(cfg))
            model_cfg = ModelConfig(model_id=args.model_id, input_size=args.input_size, num_classes=args.num_classes)
            step = trainer._make_train_step(state, anchors, model_cfg, cfg)
        for _ in range(1 + args.warmup):
            tf.nest.map_structure(lambda t: t.numpy(), step(batch))
        steps[impl] = step
    times = {impl: [] for impl in steps}
    for _ in range(args.steps):
        for impl, step in steps.items():
            start = time.perf_counter()
            tf.nest.map_structure(lambda t: t.numpy(), step(batch))
            times[impl].append(time.perf_counter() - start)
    return {impl: statistics.median(t) for impl, t in times.items()}


def _run_steps(python: str, impls: list[str], args) -> dict:
    cmd = [python, os.path.abspath(__file__), f"--impl={','.join(impls)}", f"--cache_dir={args.cache_dir}"]
    for name in ("batch_size", "input_size", "num_classes", "model_id", "steps", "warmup"):
        cmd.append(f"--{name}={getattr(args, name)}")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"run of {impls} failed (exit {done.returncode}): {' | '.join(tail)}")
    return json.loads(lines[-1])


def _trainer_rates(
    args, *, batch_size: int, steps: int, precision: str, jit: str, eval_images: int, labelling: str = "auto"
) -> dict:
    """train_and_evaluate with the paper experiment's settings on synthetic data; its measured rates.

    ``spinenet49_coco_proxy``'s model, data and trainer sections (so the evaluation batch, augmentation
    and post-processing are what a search runs), with synthetic images instead of COCO and the batch,
    step count, precision, XLA and labelling of this measurement.
    """
    import dataclasses
    import types

    from experiments.registry import get_experiment
    from proxy_trainer.data.config import SyntheticConfig
    from proxy_trainer.training.trainer import train_and_evaluate
    from search_space import spinenet49

    paper = get_experiment(PAPER_EXPERIMENT)
    config = types.SimpleNamespace(
        model=dataclasses.replace(
            paper.model, model_id=args.model_id, input_size=args.input_size, num_classes=args.num_classes
        ),
        data=dataclasses.replace(
            paper.data, source="synthetic", synthetic=SyntheticConfig(num_images=max(2 * eval_images, batch_size * 4)),
            holdout_size=eval_images, cache_dir=args.cache_dir,
        ),
        trainer=dataclasses.replace(
            paper.trainer, batch_size=batch_size, train_steps=steps, warmup_steps=min(steps, 10),
            mixed_precision=precision, jit_compile=jit, checkpoint_interval=0, log_interval=max(1, steps // 4),
            anchor_labeling=labelling, deterministic="off",
        ),
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as workdir:
        metrics = train_and_evaluate(spinenet49(), config, workdir, seed=0)
    ips = metrics["images_per_s"]
    return {
        "train_images_per_s": ips,
        # Includes tracing the inference step once: a pessimistic rate on a small held-out set.
        "eval_images_per_s": metrics["num_eval_images"] / metrics["eval_s"],
        # Model tracing / compilation and pipeline start-up: the training time not at the steady rate.
        "startup_s": max(0.0, metrics["train_s"] - (steps - 1) * batch_size / ips),
    }


def _print_projection(rates: dict) -> dict:
    train_s = PAPER_EPOCHS * PAPER_TRAIN_IMAGES / rates["train_images_per_s"]
    eval_s = PAPER_EVAL_IMAGES / rates["eval_images_per_s"]
    total = rates["startup_s"] + train_s + eval_s
    print(
        f"projected paper-size proxy trial: start-up {rates['startup_s']:.0f} s + {PAPER_EPOCHS} x "
        f"{PAPER_TRAIN_IMAGES:,} images at {rates['train_images_per_s']:.1f} img/s = {train_s / 60:.1f} min training + "
        f"{PAPER_EVAL_IMAGES:,} images at {rates['eval_images_per_s']:.1f} img/s = {eval_s / 60:.1f} min evaluation; "
        f"total {total / 60:.1f} min"
    )
    return {"startup_s": rates["startup_s"], "train_s": train_s, "eval_s": eval_s, "total_s": total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--input_size", type=int, default=512)
    parser.add_argument("--num_classes", type=int, default=90)
    parser.add_argument("--model_id", default="proxy")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per implementation")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps after the first")
    parser.add_argument("--rounds", type=int, default=2, help="alternate the implementations; best kept")
    parser.add_argument("--trainer_steps", type=int, default=20, help="steps of the end-to-end trainer run")
    parser.add_argument("--gpu_batch_size", type=int, default=64, help="batch of the bf16+XLA run on a GPU")
    parser.add_argument("--gpu_steps", type=int, default=60, help="steps of the bf16+XLA run on a GPU")
    parser.add_argument("--cache_dir", default=os.path.join(tempfile.gettempdir(), "bench_training_cache"))
    parser.add_argument("--reference_venv", default=bench_model.DEFAULT_VENV)
    parser.add_argument("--skip_reference", action="store_true")
    parser.add_argument("--skip_trainer", action="store_true")
    parser.add_argument(
        "--gpu_section", action="store_true",
        help="run the bf16 + XLA section without a GPU too (to check it; its figures then mean nothing)",
    )  # fmt: skip
    parser.add_argument("--output", default=results_io.path("training"), help="result file ('': none)")
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.impl:
        print(json.dumps(_measure_steps(args)))
        return 0
    run = results_io.start()
    stored: dict = {"settings": {k: getattr(args, k) for k in ("batch_size", "input_size", "num_classes", "model_id",
                                                                "steps", "warmup", "rounds", "trainer_steps")},
                    "seeds": [0]}  # fmt: skip

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    print(
        f"proxy training, SpineNet-49 topology, model id {args.model_id}, {args.input_size}x{args.input_size}, "
        f"{args.num_classes} classes; {os.cpu_count()} CPUs, {len(gpus)} GPU(s)"
    )
    impls, python, note = ["ours", "ours_trainer"], sys.executable, "skipped (--skip_reference)"
    if not args.skip_reference:
        ref_python, note = bench_model._reference_python(args.reference_venv)
        if ref_python:  # the reference's venv sees the system packages too: all models in one process
            impls, python = ["ours", "ours_trainer", "reference"], ref_python
    best: dict[str, float] = {}
    for round_ in range(max(1, args.rounds)):
        order = impls if round_ % 2 == 0 else impls[::-1]
        try:
            result = _run_steps(python, order, args)
        except RuntimeError as e:
            if "reference" not in impls:
                raise
            note = f"unavailable: {e}"
            impls, python = ["ours", "ours_trainer"], sys.executable
            result = _run_steps(python, impls, args)
        for impl, step_s in result.items():
            best[impl] = min(best.get(impl, step_s), step_s)  # other processes share the CPU: best round
    print(
        f"training step, batch {args.batch_size} (median of {args.steps} interleaved steps, best of {args.rounds} rounds):"
    )
    labels = {"ours": "ours", "ours_trainer": "ours, trainer's step", "reference": "reference"}
    for impl, step_s in best.items():
        print(f"  {labels[impl]:<22} {step_s:8.3f} s/step {args.batch_size / step_s:8.2f} img/s")
    if "reference" in best:
        print(f"  ours / reference step time: {best['ours'] / best['reference']:.2f} (< 1: ours is faster)")
    print(f"reference: {bench_model.REFERENCE_PACKAGE} ({note})")
    stored.update(step_s=best, reference=bench_model.REFERENCE_PACKAGE if "reference" in best else None,
                  reference_note=note, gpus=len(gpus))  # fmt: skip

    if not args.skip_trainer:
        rates = _trainer_rates(
            args, batch_size=args.batch_size, steps=args.trainer_steps, precision="auto", jit="auto", eval_images=32
        )
        print(
            f"trainer end to end (input pipeline included, {'GPU' if gpus else 'CPU'} defaults), batch "
            f"{args.batch_size}: {rates['train_images_per_s']:.2f} train img/s, {rates['eval_images_per_s']:.2f} eval img/s"
        )
        stored["trainer"] = rates
        if not gpus:
            stored["trainer_projection"] = _print_projection(rates)
    if gpus or args.gpu_section:
        by_labelling = {}
        for labelling in ("device", "host"):
            by_labelling[labelling] = rates = _trainer_rates(
                args, batch_size=args.gpu_batch_size, steps=args.gpu_steps, precision="bfloat16", jit="on",
                eval_images=256, labelling=labelling,
            )  # fmt: skip
            print(
                f"{'GPU' if gpus else 'CPU (--gpu_section)'} bf16 + XLA, batch {args.gpu_batch_size}, anchors "
                f"labelled on the {labelling}: "
                f"{rates['train_images_per_s']:.1f} train img/s, {rates['eval_images_per_s']:.1f} eval img/s, "
                f"start-up {rates['startup_s']:.0f} s"
            )
        device, host = (by_labelling[k]["train_images_per_s"] for k in ("device", "host"))
        print(f"  train img/s, labelling in the step / in the input pipeline: {device / host:.2f}")
        stored["bf16_xla"] = {"on_gpu": bool(gpus), "batch_size": args.gpu_batch_size, "by_labelling": by_labelling,
                              "projection": _print_projection(by_labelling["device"])}  # fmt: skip
    if args.output:
        print(f"wrote {results_io.write(args.output, run, stored)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
