"""Model build and train-step speed: our SpineNet RetinaNet against the public reference.

Builds the proxy RetinaNet of the search (docs/search_space.md#model-ids and
docs/proxy_recipe.md#proxy-model: scaling ``proxy``, SpineNet-49 topology,
512x512, 90 classes, head 4 x 64) and times, in one run and on the same
machine:

* build: constructing the Keras model (layers and weights);
* trace: tracing the training step into a graph (``get_concrete_function``);
* first step: the first call after tracing (graph optimisation + one step);
* step: the median of the steady-state training steps.

The training step is the same for both: forward in training mode, a dummy
loss (mean square of every class and box output), gradients, plain SGD
(``var -= lr * grad``). The reference is tf-models-official's ``SpineNet``
backbone and ``RetinaNetHead`` for the same block specs and scaling; the
script installs it into a separate virtual environment (``--reference_venv``,
made with ``--system-site-packages`` so that both run on the very same
TensorFlow and tf-keras) unless it is already there. Both models run in one
subprocess of that environment (it sees the system's Keras 3 as well), their
steady-state steps interleaved, in ``--rounds`` subprocesses that swap which
model is built first; each figure is the best round's.

Usage::

    python bench/bench_model.py                 # ours + reference, ratio
    python bench/bench_model.py --skip_reference
    python bench/bench_model.py --parity=20    # + cost model vs reference on 20 random backbones

Writes ``bench/results/model.json`` (``--output``; ``--output=`` writes nothing), from which the README's
figures are rendered (``bench/readme_results.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import results_io  # noqa: E402

REFERENCE_PACKAGE = "tf-models-official==2.20.0"
# What importing the reference SpineNet and RetinaNetHead needs beyond the
# system's TensorFlow / tf-keras / NumPy (found by trying; its full dependency
# list would replace TensorFlow itself).
REFERENCE_EXTRA_PACKAGES = ("gin-config", "immutabledict", "tf-slim", "tensorflow-datasets", "opencv-python-headless")
DEFAULT_VENV = "/tmp/nas_ref_venv"


def _build_ours(args):
    from proxy_trainer.detector.retinanet import build_retinanet
    from search_space import model_preset, spinenet49

    preset = model_preset(args.model_id)
    model = build_retinanet(
        spinenet49(preset.scaling),
        input_size=args.input_size,
        num_classes=args.num_classes,
        head_num_convs=preset.head_num_convs,
        head_num_filters=preset.head_num_filters,
    )

    def forward(images):
        out = model(images, training=True)
        return list(out["cls_outputs"].values()) + list(out["box_outputs"].values())

    # The underlying tf.Variables: Keras 3 variables implement assign_sub as a read,
    # a subtraction and an assign; the update must cost the same for both models.
    return model, forward, [v.value for v in model.trainable_variables]


def _build_reference(args):
    import tf_keras
    from official.vision.modeling.backbones import spinenet
    from official.vision.modeling.heads import dense_prediction_heads

    from search_space import architecture_to_block_specs, model_preset, spinenet49

    preset = model_preset(args.model_id)
    scaling = preset.scaling
    specs = [s for s in architecture_to_block_specs(spinenet49(scaling)) if s[2] != (None, None)]
    backbone = spinenet.SpineNet(
        input_specs=tf_keras.layers.InputSpec(shape=[None, args.input_size, args.input_size, 3]),
        min_level=3,
        max_level=7,
        block_specs=spinenet.build_block_specs(specs),
        endpoints_num_filters=scaling.endpoints_num_filters,
        resample_alpha=scaling.resample_alpha,
        block_repeats=scaling.block_repeats,
        filter_size_scale=scaling.filter_size_scale,
    )
    head = dense_prediction_heads.RetinaNetHead(
        min_level=3,
        max_level=7,
        num_classes=args.num_classes,
        num_anchors_per_location=9,
        num_convs=preset.head_num_convs,
        num_filters=preset.head_num_filters,
    )
    images = tf_keras.Input(shape=(args.input_size, args.input_size, 3), batch_size=args.batch_size)
    outputs = head(backbone(images))
    model = tf_keras.Model(images, [outputs[0], outputs[1]])

    def forward(images):
        scores, boxes = model(images, training=True)
        return list(scores.values()) + list(boxes.values())

    return model, forward, model.trainable_variables


def _make_train_step(forward, variables):
    """Forward in training mode, dummy loss, gradients, plain SGD: the same for both models."""
    import tensorflow as tf

    @tf.function
    def train_step(images):
        with tf.GradientTape() as tape:
            loss = tf.add_n([tf.reduce_mean(tf.square(tf.cast(o, tf.float32))) for o in forward(images)])
        grads = tape.gradient(loss, variables)
        for v, g in zip(variables, grads):
            v.assign_sub(0.01 * g)
        return loss

    return train_step


def _measure(args) -> dict:
    """Runs in a subprocess; times the implementations of ``args.impl`` (comma-separated).

    Build, trace and first step are timed one implementation after the other,
    in the order given; the steady-state steps alternate between them, so that
    a change in the load of the machine hits both alike.
    """
    import tensorflow as tf

    images = tf.random.uniform((args.batch_size, args.input_size, args.input_size, 3), seed=0)
    results, steps = {}, {}
    for impl in args.impl.split(","):
        start = time.perf_counter()
        model, forward, variables = (_build_ours if impl == "ours" else _build_reference)(args)
        build_s = time.perf_counter() - start

        train_step = _make_train_step(forward, variables)
        start = time.perf_counter()
        train_step.get_concrete_function(images)
        trace_s = time.perf_counter() - start
        start = time.perf_counter()
        train_step(images).numpy()
        first_step_s = time.perf_counter() - start
        for _ in range(args.warmup):
            train_step(images).numpy()
        steps[impl] = train_step
        results[impl] = {
            "params": int(model.count_params()),
            "build_s": build_s,
            "trace_s": trace_s,
            "first_step_s": first_step_s,
            "times": [],
        }
    for _ in range(args.steps):
        for impl, train_step in steps.items():
            start = time.perf_counter()
            train_step(images).numpy()
            results[impl]["times"].append(time.perf_counter() - start)
    for r in results.values():
        times = r.pop("times")
        r["step_s"], r["step_min_s"] = statistics.median(times), min(times)
    return results


def _parity(args) -> dict:
    """Runs in the reference subprocess: reference backbones against our cost model.

    For SpineNet-49 RetinaNet at 640 px and ``args.parity`` random architectures
    (tiny scalings, 64 and 128 px), compares the reference's ``count_params()``
    and the TensorFlow profiler's float operations of its frozen inference graph
    with ``search_space.cost_model``. The profiler also counts two integer
    shape multiplications per reference upsampling (its ``Tile`` ops), which
    are no arithmetic; they are subtracted.
    """
    import random

    import tensorflow as tf
    import tf_keras
    from official.vision.modeling.backbones import spinenet
    from official.vision.modeling.heads import dense_prediction_heads
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2_as_graph

    from search_space import DecisionEncoding, Scaling, SearchSpace, architecture_to_block_specs, sample_architecture
    from search_space import spinenet49 as spinenet49_topology
    from search_space.cost_model import model_cost

    def reference(arch, size, head=None):
        specs = [s for s in architecture_to_block_specs(arch) if s[2] != (None, None)]
        sc = arch.scaling
        backbone = spinenet.SpineNet(
            input_specs=tf_keras.layers.InputSpec(shape=[None, size, size, 3]),
            min_level=3,
            max_level=7,
            block_specs=spinenet.build_block_specs(specs),
            endpoints_num_filters=sc.endpoints_num_filters,
            resample_alpha=sc.resample_alpha,
            block_repeats=sc.block_repeats,
            filter_size_scale=sc.filter_size_scale,
        )
        images = tf_keras.Input(shape=(size, size, 3), batch_size=1)
        outputs = backbone(images)
        if head:
            outputs = dense_prediction_heads.RetinaNetHead(min_level=3, max_level=7, **head)(outputs)[:2]
        model = tf_keras.Model(images, outputs)
        fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(tf.TensorSpec([1, size, size, 3]))
        frozen, _ = convert_variables_to_constants_v2_as_graph(fn)
        opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        opts["output"] = "none"
        info = tf.compat.v1.profiler.profile(
            graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=opts
        )
        tiles = sum(1 for op in frozen.graph.get_operations() if op.type == "Tile")
        return model.count_params(), info.total_float_ops - 2 * tiles

    cases = [
        (spinenet49_topology(), 640, dict(num_classes=90, num_anchors_per_location=9, num_convs=4, num_filters=256))
    ]
    rng = random.Random(args.seed)
    spaces = [
        SearchSpace(scaling=Scaling(0.125, 0.5, 16, 1)),
        SearchSpace(level_allocation=((2, 1), (4, 1)), parent_window=None, scaling=Scaling(0.125, 1.0, 16, 2)),
    ]
    for i in range(args.parity):
        cases.append((sample_architecture(DecisionEncoding(spaces[i % 2]), rng), 64 if i % 2 else 128, None))
    mismatches, first = [], None
    for arch, size, head in cases:
        params, flops = reference(arch, size, head)
        first = first or {"params": params, "float_ops": flops, "input_size": size}
        if head:
            cost = model_cost(arch, input_size=size, num_classes=90, head_num_convs=4, head_num_filters=256)
            ours = (cost.params, cost.flops)
        else:
            cost = model_cost(arch, input_size=size)
            ours = (cost.backbone_params, cost.backbone_flops)
        if (params, flops) != ours:
            mismatches.append(
                {"fingerprint": arch.fingerprint(), "size": size, "reference": [params, flops], "ours": list(ours)}
            )
    # first: the reference's own figures for SpineNet-49 RetinaNet at 640 px, 90 classes, head 4 x 256
    return {"checked": len(cases), "mismatches": mismatches, "spinenet49_retinanet": first}


def _reference_python(venv: str) -> tuple[str | None, str]:
    """The venv's python with the reference importable, installing it if needed.

    Returns:
      (python path or None, what happened / why it is unavailable).
    """
    python = os.path.join(venv, "bin", "python")
    probe = [python, "-c", "import official.vision.modeling.backbones.spinenet, official.vision.modeling.heads"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if os.path.exists(python) and subprocess.run(probe, capture_output=True, env=env).returncode == 0:
        return python, f"reference found in {venv}"
    steps = [
        [sys.executable, "-m", "venv", "--system-site-packages", venv],
        [python, "-m", "pip", "install", "--quiet", "--no-deps", REFERENCE_PACKAGE],
        [python, "-m", "pip", "install", "--quiet", *REFERENCE_EXTRA_PACKAGES],
    ]
    for cmd in steps:
        print(f"installing the reference: {' '.join(cmd)}", file=sys.stderr, flush=True)
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return None, f"'{' '.join(cmd)}' failed: {' | '.join(tail)}"
    done = subprocess.run(probe, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["unknown error"]
        return None, f"installed {REFERENCE_PACKAGE} in {venv} but it does not import: {tail[0]}"
    return python, f"reference installed in {venv}"


def _run(python: str, impl: str, args) -> dict:
    cmd = [python, os.path.abspath(__file__), f"--impl={impl}"]
    for name in ("batch_size", "input_size", "num_classes", "model_id", "steps", "warmup", "parity", "seed"):
        cmd.append(f"--{name}={getattr(args, name)}")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"{impl} run failed (exit {done.returncode}): {' | '.join(tail)}")
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--input_size", type=int, default=512)
    parser.add_argument("--num_classes", type=int, default=90)
    parser.add_argument("--model_id", default="proxy")
    parser.add_argument("--steps", type=int, default=10, help="timed steady-state steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after the first")
    parser.add_argument("--rounds", type=int, default=2, help="alternate ours/reference this many times; best kept")
    parser.add_argument("--reference_venv", default=DEFAULT_VENV)
    parser.add_argument("--skip_reference", action="store_true")
    parser.add_argument(
        "--parity",
        type=int,
        default=0,
        help="also check the cost model against the reference on N random architectures",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the --parity architectures")
    parser.add_argument("--output", default=results_io.path("model"), help="result file ('': none)")
    parser.add_argument("--impl", help=argparse.SUPPRESS)  # subprocess mode: ours, reference, both, parity
    args = parser.parse_args()
    if args.impl == "parity":
        print(json.dumps(_parity(args)))
        return 0
    if args.impl:
        print(json.dumps(_measure(args)))
        return 0

    started = results_io.start()
    print(
        f"proxy RetinaNet, SpineNet-49 topology, model id {args.model_id}, {args.input_size}x{args.input_size}, "
        f"batch {args.batch_size}, {args.num_classes} classes; {os.cpu_count()} CPUs; "
        f"median of {args.steps} steps after {args.warmup + 1} untimed; best of {args.rounds} alternating rounds"
    )
    python, reference_note = None, "skipped (--skip_reference)"
    if not args.skip_reference:
        python, reference_note = _reference_python(args.reference_venv)
    results: dict[str, dict] = {}
    for r in range(max(1, args.rounds)):
        # Both in one process (the reference venv sees the system's Keras 3 too), the
        # order swapped every round; other processes share this CPU: keep each figure's best.
        order = "ours,reference" if r % 2 == 0 else "reference,ours"
        try:
            run = _run(python, order, args) if python else _run(sys.executable, "ours", args)
        except RuntimeError as e:
            if not python:
                raise
            reference_note, python = f"unavailable: {e}", None
            run = _run(sys.executable, "ours", args)
        for impl, figures in run.items():
            best = results.setdefault(impl, figures)
            for key in ("build_s", "trace_s", "first_step_s", "step_s", "step_min_s"):
                best[key] = min(best[key], figures[key])
    rows = (
        ("params", "params", "{:d}"),
        ("graph build", "build_s", "{:.2f} s"),
        ("trace", "trace_s", "{:.2f} s"),
        ("first step", "first_step_s", "{:.2f} s"),
        ("train step", "step_s", "{:.3f} s"),
    )
    print(f"{'':<12} {'ours':>12} {'reference':>12} {'ours/ref':>9}")
    for label, key, fmt in rows:
        ours = results["ours"][key]
        ref = results.get("reference", {}).get(key)
        ratio = f"{ours / ref:.2f}" if ref else "-"
        print(f"{label:<12} {fmt.format(ours):>12} {fmt.format(ref) if ref is not None else '-':>12} {ratio:>9}")
    parity = None
    if "reference" not in results:
        print(f"reference: {reference_note}")
    else:
        print(f"reference: {REFERENCE_PACKAGE} ({reference_note}); ratio < 1 means ours is faster")
        if args.parity:
            parity = _run(python, "parity", args)
            print(
                f"cost model vs reference (SpineNet-49 RetinaNet at 640 + {args.parity} random backbones, params "
                f"and profiler float ops): {parity['checked'] - len(parity['mismatches'])}/{parity['checked']} exact"
            )
            for m in parity["mismatches"]:
                print(f"  MISMATCH {m}")
    if args.output:
        settings = {k: getattr(args, k) for k in ("batch_size", "input_size", "num_classes", "model_id", "steps",
                                                  "warmup", "rounds", "parity")}  # fmt: skip
        figures = {"settings": settings, "seeds": [args.seed] if args.parity else [], "results": results,
                   "reference": REFERENCE_PACKAGE if "reference" in results else None,
                   "reference_note": reference_note, "parity": parity}  # fmt: skip
        print(f"wrote {results_io.write(args.output, started, figures)}")
    if "reference" not in results:
        return 1 if not args.skip_reference else 0
    return 1 if parity and parity["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
