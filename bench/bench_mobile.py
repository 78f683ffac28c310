"""SpineNet-Mobile parity: our cost model and Keras models against the public reference's build.

For each published SpineNet-Mobile model (``mobile49`` and ``mobile49S`` at 384 px,
``mobile49XS`` at 256 px, with the activation of their published figures) it builds
Model Garden's ``SpineNetMobile`` and its RetinaNet head (90 classes, 4 separable convs
of the endpoint width) from our block specs (``architecture_to_block_specs``: the
reference's Mobile form), and counts ``count_params()`` and the TensorFlow profiler's
float operations of the frozen inference graph (less the two integer shape
multiplications of each reference upsampling, its ``Tile`` ops, as in
``bench_model.py --parity``). It compares them with ``search_space.cost_model`` (exact)
and with the parameters of our Keras model, and stores the issue's published figures
beside them. Then ``--random`` random members of the Mobile space (tiny scalings, 64 or
128 px, ReLU / swish / hard-swish in turn, every other one with its separable head) are
compared the same way, and SpineNet-49 with swish (the activation's float ops are
counted for a SpineNet too).

Usage::

    python bench/bench_mobile.py --random=20     # needs the reference (bench_model.py installs it)

Writes ``bench/results/mobile_parity.json`` (``--output``), rendered into the README by
``bench/readme_results.py``. Exits 1 on a mismatch or when the reference is unavailable.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import bench_model, results_io  # noqa: E402

# Issue 16: Model Garden's SpineNetMobile (tf-models-official 2.20.0) at batch 1, RetinaNet with 90
# classes, multiply-adds = profiler float ops / 2: input size, backbone params, backbone
# multiply-adds, RetinaNet params, RetinaNet multiply-adds.
PUBLISHED = {
    "mobile49": (384, 2_313_892, 0.825e9, 2_386_162, 1.023e9),
    "mobile49S": (384, 1_004_872, 0.366e9, 1_062_678, 0.523e9),
    "mobile49XS": (256, 869_400, 0.136e9, 901_350, 0.174e9),
}
ACTIVATIONS = ("relu", "swish", "hard_swish")


def _reference_counts(arch, size, activation, head=None):
    """(params, float ops) of the reference's build of ``arch`` (backbone, or with ``head`` the RetinaNet)."""
    import tensorflow as tf
    import tf_keras
    from official.vision.modeling.backbones import spinenet, spinenet_mobile
    from official.vision.modeling.heads import dense_prediction_heads
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2_as_graph

    from search_space import SPINENET_MOBILE, architecture_to_block_specs

    sc = arch.scaling
    input_specs = tf_keras.layers.InputSpec(shape=[None, size, size, 3])
    if arch.family == SPINENET_MOBILE:
        backbone = spinenet_mobile.SpineNetMobile(
            input_specs=input_specs,
            block_specs=spinenet_mobile.build_block_specs(architecture_to_block_specs(arch)),
            endpoints_num_filters=sc.endpoints_num_filters,
            filter_size_scale=sc.filter_size_scale,
            block_repeats=sc.block_repeats,
            activation=activation,
        )
    else:
        specs = [s for s in architecture_to_block_specs(arch) if s[2] != (None, None)]
        backbone = spinenet.SpineNet(
            input_specs=input_specs,
            block_specs=spinenet.build_block_specs(specs),
            endpoints_num_filters=sc.endpoints_num_filters,
            resample_alpha=sc.resample_alpha,
            block_repeats=sc.block_repeats,
            filter_size_scale=sc.filter_size_scale,
            activation=activation,
        )
    images = tf_keras.Input(shape=(size, size, 3), batch_size=1)
    outputs = backbone(images)
    if head:
        outputs = dense_prediction_heads.RetinaNetHead(min_level=3, max_level=7, activation=activation, **head)(
            outputs
        )[:2]
    model = tf_keras.Model(images, outputs)
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(tf.TensorSpec([1, size, size, 3]))
    frozen, _ = convert_variables_to_constants_v2_as_graph(fn)
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = tf.compat.v1.profiler.profile(
        graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=opts
    )
    tiles = sum(1 for op in frozen.graph.get_operations() if op.type == "Tile")
    return int(model.count_params()), int(info.total_float_ops) - 2 * tiles


def _head(num_filters, num_convs=4):
    return dict(
        num_classes=90,
        num_anchors_per_location=9,
        num_convs=num_convs,
        num_filters=num_filters,
        use_separable_conv=True,
    )


def _ours_params(arch, size, activation, head):
    """count_params() of our Keras RetinaNet (and its backbone) for the same settings."""
    from proxy_trainer.detector.config import LayerSpec
    from proxy_trainer.detector.retinanet import build_retinanet

    model = build_retinanet(
        arch,
        input_size=size,
        num_classes=head["num_classes"],
        head_num_convs=head["num_convs"],
        head_num_filters=head["num_filters"],
        spec=LayerSpec(activation=activation),
        head_separable=True,
    )
    return int(model.backbone.count_params()), int(model.count_params())


def _parity(args) -> dict:
    """Runs in the reference's virtual environment; see the module docstring."""
    import random

    from search_space import (
        MBCONV,
        MODEL_PRESETS,
        DecisionEncoding,
        Scaling,
        SearchSpace,
        architecture_preset,
        sample_architecture,
    )
    from search_space import spinenet49 as spinenet49_topology
    from search_space.cost_model import model_cost
    from search_space.space import SPINENET_MOBILE49_INTERMEDIATE_ALLOCATION

    presets = []
    for model_id in args.presets.split(",") if args.presets else []:
        size = PUBLISHED[model_id][0]
        preset = MODEL_PRESETS[model_id]
        arch = architecture_preset("spinenet_mobile49", model_id)
        head = _head(preset.head_num_filters, preset.head_num_convs)
        backbone = _reference_counts(arch, size, preset.activation)
        full = _reference_counts(arch, size, preset.activation, head)
        cost = model_cost(arch, input_size=size, num_classes=90, head_num_convs=preset.head_num_convs,
                          head_num_filters=preset.head_num_filters, head_separable=True,
                          activation=preset.activation)  # fmt: skip
        presets.append({
            "model_id": model_id, "input_size": size, "activation": preset.activation,
            "reference": {"backbone_params": backbone[0], "backbone_float_ops": backbone[1], "params": full[0],
                          "float_ops": full[1]},
            "cost_model": {"backbone_params": cost.backbone_params, "backbone_float_ops": cost.backbone_flops,
                           "params": cost.params, "float_ops": cost.flops},
            "keras_params": dict(zip(("backbone_params", "params"), _ours_params(arch, size, preset.activation, head))),
            "published": dict(zip(("backbone_params", "backbone_multiply_adds", "params", "multiply_adds"),
                                  PUBLISHED[model_id][1:])),
        })  # fmt: skip

    rng = random.Random(args.seed)
    scalings = [Scaling(0.25, 0.5, 8, 1), Scaling(0.5, 0.5, 16, 1)]
    space = SearchSpace(level_allocation=SPINENET_MOBILE49_INTERMEDIATE_ALLOCATION, block_fns=(MBCONV,))
    mismatches, checked = [], 0
    cases = []
    for i in range(args.random):
        arch = sample_architecture(DecisionEncoding(space), rng).with_scaling(scalings[i % 2])
        head = _head(arch.scaling.endpoints_num_filters, 2) if i % 2 else None
        cases.append((arch, 128 if i % 4 < 2 else 64, ACTIVATIONS[i % 3], head))
    # The activation's float ops of a SpineNet are counted too (SpineNet-49 topology, a small scaling).
    cases.append((spinenet49_topology(Scaling(0.125, 0.5, 16, 1)), 128, "swish", None))
    for arch, size, activation, head in cases:
        ref = _reference_counts(arch, size, activation, head)
        if head:
            cost = model_cost(arch, input_size=size, num_classes=90, head_num_convs=head["num_convs"],
                              head_num_filters=head["num_filters"], head_separable=True, activation=activation)  # fmt: skip
            ours = (cost.params, cost.flops)
        else:
            cost = model_cost(arch, input_size=size, activation=activation)
            ours = (cost.backbone_params, cost.backbone_flops)
        checked += 1
        if ref != ours:
            mismatches.append({"fingerprint": arch.fingerprint(), "size": size, "activation": activation,
                               "head": bool(head), "reference": list(ref), "ours": list(ours)})  # fmt: skip
    for p in presets:
        checked += 1
        if p["reference"] != p["cost_model"] or {k: p["reference"][k] for k in p["keras_params"]} != p["keras_params"]:
            mismatches.append({"model_id": p["model_id"], "reference": p["reference"], "ours": p["cost_model"],
                               "keras_params": p["keras_params"]})  # fmt: skip
    return {"presets": presets, "random": args.random, "checked": checked, "mismatches": mismatches}


def run_parity(python: str, random_count: int, seed: int, presets: str = ",".join(PUBLISHED)) -> dict:
    """Runs ``_parity`` with the reference's ``python`` in a subprocess.

    Raises:
      RuntimeError: the subprocess failed (its last lines of stderr).
    """
    cmd = [python, os.path.abspath(__file__), "--impl=parity", f"--random={random_count}", f"--seed={seed}",
           f"--presets={presets}"]  # fmt: skip
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"parity run failed (exit {done.returncode}): {' | '.join(tail)}")
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=20, help="random Mobile-space architectures to compare")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random architectures")
    parser.add_argument("--presets", default=",".join(PUBLISHED), help="model ids to compare ('' for none)")
    parser.add_argument("--reference_venv", default=bench_model.DEFAULT_VENV)
    parser.add_argument("--output", default=results_io.path("mobile_parity"), help="result file ('': none)")
    parser.add_argument("--impl", help=argparse.SUPPRESS)  # subprocess mode: parity
    args = parser.parse_args()
    if args.impl == "parity":
        print(json.dumps(_parity(args)))
        return 0

    started = results_io.start()
    python, note = bench_model._reference_python(args.reference_venv)  # noqa: SLF001 - the sibling bench's installer
    if python is None:
        print(f"reference unavailable: {note}")
        return 1
    parity = run_parity(python, args.random, args.seed, args.presets)
    for p in parity["presets"]:
        ref, pub = p["reference"], p["published"]
        print(
            f"{p['model_id']:<11} {p['input_size']} px {p['activation']:<10} backbone {ref['backbone_params']:,} params "
            f"{ref['backbone_float_ops'] // 2 / 1e9:.3f}B madds (published {pub['backbone_multiply_adds'] / 1e9:.3f}B); "
            f"RetinaNet {ref['params']:,} params {ref['float_ops'] // 2 / 1e9:.3f}B madds "
            f"(published {pub['multiply_adds'] / 1e9:.3f}B)"
        )
    exact = parity["checked"] - len(parity["mismatches"])
    print(f"cost model (and Keras parameters) vs reference: {exact}/{parity['checked']} exact")
    for m in parity["mismatches"]:
        print(f"  MISMATCH {m}")
    if args.output:
        figures = {"settings": {"random": args.random, "presets": args.presets}, "seeds": [args.seed],
                   "reference": bench_model.REFERENCE_PACKAGE, "reference_note": note, "parity": parity}  # fmt: skip
        print(f"wrote {results_io.write(args.output, started, figures)}")
    return 1 if parity["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
