"""Output parity: our SpineNet + RetinaNet and the public reference's give the same outputs with the same weights.

For each architecture (the preset SpineNet-49 at the proxy scaling and at SpineNet-49's own, and
``--random`` random members of the ``spinenet49_coco_proxy`` space, one ``random.Random(seed)`` each,
alternately at the proxy scaling and at SpineNet-96's, whose groups hold two blocks), it

1. builds our RetinaNet (``proxy_trainer.detector.retinanet``) and gives every weight a random value
   (``numpy.random.default_rng``): conv kernels N(0, 1/fan_in), conv biases N(0, 0.1), batch-norm
   gamma U(0.5, 1.5), beta N(0, 0.1), moving mean N(0, 0.1) and moving variance U(0.5, 1.5), so the
   batch norms' inference path, moving statistics included, is exercised with values that are nobody's
   defaults;
2. writes those weights and a fixed random input (``--batch_size`` images of ``--input_size`` px, N(0, 1))
   to an ``.npz`` file in a temporary directory, and its own outputs beside them;
3. in a subprocess of the reference's Python (``--reference_venv``, which ``bench_model.py`` sets up), builds
   tf-models-official's ``SpineNet`` and ``RetinaNetHead`` from the same block specs and scaling, copies the
   weights in, runs it in inference mode (``training=False``) and writes its outputs to another ``.npz``;
4. compares every backbone level P3-P7 and both heads' outputs (class logits and box deltas) on every
   level: the largest absolute difference, and that difference over the largest absolute value of the
   reference's output (the relative difference; element-wise ratios are meaningless where outputs are
   near zero, as a ReLU makes many of them).

The weights are matched by structure, not by name (``proxy_trainer.detector.weight_order``): each side
traces its own inference computation into a TensorFlow graph and walks it depth first from the outputs
(P3-P7, then the class outputs, then the box outputs), each op's inputs in their own order, listing its
conv and batch-norm layers where their variables are first read. The two implementations name, nest
and schedule their layers differently, but their dataflow is the same (a block adds its resampled
parents in block-spec order, a residual adds the main path before the shortcut), so the k-th layer of
one walk is the k-th of the other; its kernel, bias, gamma, beta, moving mean and moving variance are
copied after a check that both walks list as many layers and each position has the same roles and
shapes. As a control, the reference's outputs with its own initial weights (before the copy) are
compared too: they must differ.

Usage::

    python bench/bench_output_parity.py                 # 2 presets + 4 random architectures, 128 px, batch 2

Writes ``bench/results/output_parity.json`` (``--output``; ``--output=`` writes nothing), rendered into the
README by ``bench/readme_results.py``. Exits 1 when an output differs beyond the tolerance or the reference
is unavailable.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import bench_model, results_io  # noqa: E402

LEVELS = (3, 4, 5, 6, 7)
OUTPUTS = ("backbone", "cls", "box")
# Float32 tolerance: the largest absolute difference of an output may be this fraction of its largest
# absolute value (the same kernels on the same TensorFlow; summation order may still differ).
RELATIVE_TOLERANCE = 1e-4


def cases(args) -> list[dict]:
    """The architectures compared: label, block specs, scaling, head size."""
    from experiments.registry import get_experiment
    from search_space import DecisionEncoding, architecture_to_block_specs, model_preset, sample_architecture
    from search_space import spinenet49 as spinenet49_topology

    out = []

    def add(label: str, source: str, arch, model_id: str):
        preset = model_preset(model_id)
        arch = arch.with_scaling(preset.scaling)
        out.append({
            "label": label, "source": source, "model_id": model_id, "fingerprint": arch.fingerprint(),
            "block_specs": architecture_to_block_specs(arch), "scaling": list(dataclasses.astuple(arch.scaling)),
            "head_num_convs": preset.head_num_convs, "head_num_filters": preset.head_num_filters,
        })  # fmt: skip

    for model_id in filter(None, args.preset_model_ids.split(",")):
        add(f"spinenet49 ({model_id})", "preset:spinenet49", spinenet49_topology(), model_id)
    space = get_experiment("spinenet49_coco_proxy").search_space
    model_ids = args.random_model_ids.split(",")
    for i, seed in enumerate(random_seeds(args)):
        arch = sample_architecture(DecisionEncoding(space), random.Random(seed))
        model_id = model_ids[i % len(model_ids)]
        add(f"random seed {seed} ({model_id})", f"random.Random({seed})", arch, model_id)
    return out


def random_seeds(args) -> list[int]:
    return list(range(args.first_seed, args.first_seed + args.random))


def _architecture(case: dict):
    from search_space import Scaling, architecture_from_block_specs

    return architecture_from_block_specs(case["block_specs"], Scaling(*case["scaling"]))


def ours_outputs(model, images) -> list:
    """Our model's outputs in the fixed order: P3-P7, class outputs P3-P7, box outputs P3-P7."""
    features = model.backbone(images, training=False)
    heads = model.head(features, training=False)
    return (
        [features[str(lv)] for lv in LEVELS]
        + [heads["cls_outputs"][str(lv)] for lv in LEVELS]
        + [heads["box_outputs"][str(lv)] for lv in LEVELS]
    )


def reference_outputs(model, images) -> list:
    """The reference model's (``[features, scores, boxes]``) in the same order."""
    features, scores, boxes = model(images, training=False)
    return [d[str(lv)] for d in (features, scores, boxes) for lv in LEVELS]


def named(outputs: list) -> dict:
    """``backbone/3`` ... ``box/7`` -> array, for the list of ``ours_outputs``/``reference_outputs``."""
    import numpy as np

    keys = [f"{kind}/{lv}" for kind in OUTPUTS for lv in LEVELS]
    return {k: np.asarray(o) for k, o in zip(keys, outputs)}


def randomize(layers, rng) -> None:
    """Random values for every weight that the computation reads (see the module docstring)."""
    import numpy as np

    for layer in layers:
        for role, v in layer.variables.items():
            shape = tuple(v.shape)
            if role in ("kernel", "depthwise_kernel", "pointwise_kernel"):
                value = rng.normal(0.0, 1.0 / np.sqrt(max(1, int(np.prod(shape[:-1])))), shape)
            elif role in ("gamma", "moving_variance"):
                value = rng.uniform(0.5, 1.5, shape)
            else:  # bias, beta, moving_mean
                value = rng.normal(0.0, 0.1, shape)
            v.assign(value.astype(v.dtype.as_numpy_dtype))


def run_ours(case: dict, args, workdir: str, index: int) -> dict:
    """Builds our model with random weights; writes weights, input and our outputs to ``workdir``."""
    import numpy as np

    from proxy_trainer.detector.retinanet import build_retinanet
    from proxy_trainer.detector.weight_order import export_weights, weighted_layers

    model = build_retinanet(
        _architecture(case),
        input_size=args.input_size,
        num_classes=args.num_classes,
        head_num_convs=case["head_num_convs"],
        head_num_filters=case["head_num_filters"],
    )
    shape = (args.batch_size, args.input_size, args.input_size, 3)
    layers = weighted_layers(model, shape, ours_outputs)
    randomize(layers, np.random.default_rng(args.weight_seed + index))
    images = np.random.default_rng(args.input_seed).normal(0.0, 1.0, shape).astype(np.float32)
    outputs = named(ours_outputs(model, images))
    paths = {name: os.path.join(workdir, f"case{index}_{name}.npz") for name in ("weights", "ours", "reference")}
    np.savez(paths["weights"], images=images, **{f"w.{k}": a for k, a in export_weights(layers).items()})
    np.savez(paths["ours"], **outputs)
    return {
        "paths": paths,
        "layers": len(layers),
        "variables": sum(len(layer.variables) for layer in layers),
        "params": int(model.count_params()),
    }


def reference_side(manifest_path: str) -> dict:
    """Runs in the reference's Python: for each case, the reference's outputs with the copied weights."""
    import numpy as np
    import tf_keras
    from official.vision.modeling.backbones import spinenet
    from official.vision.modeling.heads import dense_prediction_heads

    from proxy_trainer.detector.weight_order import import_weights, weighted_layers

    with open(manifest_path) as f:
        manifest = json.load(f)
    size, batch = manifest["input_size"], manifest["batch_size"]
    report = []
    for case in manifest["cases"]:
        fn, alpha, endpoints, repeats = case["scaling"]
        specs = [tuple(s[:2]) + (tuple(s[2]), s[3]) for s in case["block_specs"] if s[2] != [None, None]]
        backbone = spinenet.SpineNet(
            input_specs=tf_keras.layers.InputSpec(shape=[None, size, size, 3]),
            min_level=min(LEVELS),
            max_level=max(LEVELS),
            block_specs=spinenet.build_block_specs(specs),
            endpoints_num_filters=endpoints,
            resample_alpha=alpha,
            block_repeats=repeats,
            filter_size_scale=fn,
        )
        head = dense_prediction_heads.RetinaNetHead(
            min_level=min(LEVELS),
            max_level=max(LEVELS),
            num_classes=manifest["num_classes"],
            num_anchors_per_location=9,
            num_convs=case["head_num_convs"],
            num_filters=case["head_num_filters"],
        )
        images_in = tf_keras.Input(shape=(size, size, 3), batch_size=batch)
        features = backbone(images_in)
        scores, boxes, _ = head(features)
        model = tf_keras.Model(images_in, [features, scores, boxes])
        data = np.load(case["paths"]["weights"])
        images = data["images"]

        own_init = named(reference_outputs(model, images))  # the control: the reference's own initial weights
        layers = weighted_layers(model, tuple(images.shape), reference_outputs)
        assigned = import_weights(layers, {k[2:]: data[k] for k in data.files if k.startswith("w.")})
        copied = named(reference_outputs(model, images))
        np.savez(case["paths"]["reference"], **copied, **{f"own_init/{k}": v for k, v in own_init.items()})
        report.append({"layers": len(layers), "assigned": assigned, "params": int(model.count_params())})
    return {"cases": report}


def compare(ours_path: str, reference_path: str) -> dict:
    """Per output: the largest absolute difference, the reference's largest magnitude and their ratio."""
    import numpy as np

    ours, ref = np.load(ours_path), np.load(reference_path)
    rows = {}
    for kind in OUTPUTS:
        for level in LEVELS:
            key = f"{kind}/{level}"
            a, b = ours[key].astype(np.float64), ref[key].astype(np.float64)
            if a.shape != b.shape:
                raise RuntimeError(f"{key}: our shape {a.shape}, the reference's {b.shape}")
            scale = float(np.max(np.abs(b)))
            diff = float(np.max(np.abs(a - b)))
            control = float(np.max(np.abs(a - ref[f"own_init/{key}"].astype(np.float64))))
            rows[key] = {
                "shape": list(a.shape),
                "max_abs_diff": diff,
                "max_abs_reference": scale,
                "max_rel_diff": diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf")),
                "nonzero_fraction": float(np.mean(b != 0)),
                "control_max_abs_diff": control,
            }
    return rows


def run_parity(reference_python: str, args) -> dict:
    """The whole comparison (ours here, the reference in a subprocess); returns the per-case figures."""
    all_cases = cases(args)
    with tempfile.TemporaryDirectory(prefix="output_parity_") as workdir:
        ours = []
        for i, case in enumerate(all_cases):
            start = time.perf_counter()
            ours.append(run_ours(case, args, workdir, i))
            ours[-1]["ours_s"] = time.perf_counter() - start
            case["paths"] = ours[-1]["paths"]
        manifest = os.path.join(workdir, "manifest.json")
        with open(manifest, "w") as f:
            json.dump({"input_size": args.input_size, "batch_size": args.batch_size,
                       "num_classes": args.num_classes, "cases": all_cases}, f)  # fmt: skip
        env = dict(
            os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
        )
        start = time.perf_counter()
        done = subprocess.run(
            [reference_python, os.path.abspath(__file__), f"--impl_manifest={manifest}"],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        reference_s = time.perf_counter() - start
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
        if done.returncode != 0 or not lines:
            tail = done.stderr.strip().splitlines()[-3:]
            raise RuntimeError(f"reference run failed (exit {done.returncode}): {' | '.join(tail)}")
        reference = json.loads(lines[-1])["cases"]
        results = []
        for case, mine, theirs in zip(all_cases, ours, reference):
            outputs = compare(case["paths"]["ours"], case["paths"]["reference"])
            worst = max(o["max_rel_diff"] for o in outputs.values())
            results.append({
                "label": case["label"], "source": case["source"], "model_id": case["model_id"],
                "fingerprint": case["fingerprint"], "block_specs": case["block_specs"], "scaling": case["scaling"],
                "head": [case["head_num_convs"], case["head_num_filters"]],
                "layers": mine["layers"], "variables": mine["variables"], "assigned": theirs["assigned"],
                "params": {"ours": mine["params"], "reference": theirs["params"]},
                "max_abs_diff": max(o["max_abs_diff"] for o in outputs.values()),
                "max_rel_diff": worst,
                "control_min_max_abs_diff": min(o["control_max_abs_diff"] for o in outputs.values()),
                "within_tolerance": worst <= RELATIVE_TOLERANCE,
                "outputs": outputs, "ours_s": round(mine["ours_s"], 2),
            })  # fmt: skip
    return {"cases": results, "reference_s": round(reference_s, 1)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input_size", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--num_classes", type=int, default=90)
    parser.add_argument("--preset_model_ids", default="proxy,49", help="SpineNet-49 at each of these scalings")
    parser.add_argument("--random", type=int, default=4, help="random architectures of the spinenet49_coco_proxy space")
    parser.add_argument("--first_seed", type=int, default=0, help="their seeds: first_seed, first_seed + 1, ...")
    parser.add_argument("--random_model_ids", default="proxy,96", help="scalings of the random ones, in turn")
    parser.add_argument("--weight_seed", type=int, default=0, help="case k's weights: default_rng(weight_seed + k)")
    parser.add_argument("--input_seed", type=int, default=0)
    parser.add_argument("--reference_venv", default=bench_model.DEFAULT_VENV)
    parser.add_argument("--output", default=results_io.path("output_parity"), help="result file ('': none)")
    parser.add_argument("--impl_manifest", help=argparse.SUPPRESS)  # subprocess mode: the reference side
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    if args.impl_manifest:
        print(json.dumps(reference_side(args.impl_manifest)))
        return 0

    run = results_io.start()
    python, note = bench_model._reference_python(args.reference_venv)  # noqa: SLF001 - the sibling bench's installer
    if python is None:
        print(f"reference unavailable: {note}")
        return 1
    parity = run_parity(python, args)
    print(
        f"output parity, ours vs {bench_model.REFERENCE_PACKAGE} ({note}), {args.input_size} px, batch "
        f"{args.batch_size}, {args.num_classes} classes, inference mode, relative tolerance {RELATIVE_TOLERANCE:g}"
    )
    print(f"  {'architecture':<24} {'layers':>6} {'max abs diff':>13} {'max rel diff':>13} {'control':>9}  ok")
    for c in parity["cases"]:
        print(
            f"  {c['label']:<24} {c['layers']:>6} {c['max_abs_diff']:>13.3g} {c['max_rel_diff']:>13.3g} "
            f"{c['control_min_max_abs_diff']:>9.3g}  {'yes' if c['within_tolerance'] else 'NO'}"
        )
        for key, o in c["outputs"].items():
            if o["max_rel_diff"] > RELATIVE_TOLERANCE:
                print(f"    MISMATCH {key}: {o}")
    ok = all(c["within_tolerance"] for c in parity["cases"])
    if args.output:
        settings = {k: getattr(args, k) for k in ("input_size", "batch_size", "num_classes", "preset_model_ids",
                                                  "random", "random_model_ids")}  # fmt: skip
        figures = {
            "settings": settings,
            "seeds": {"architectures": random_seeds(args), "weights": args.weight_seed, "input": args.input_seed},
            "reference": bench_model.REFERENCE_PACKAGE,
            "reference_note": note,
            "relative_tolerance": RELATIVE_TOLERANCE,
            "parity": parity,
        }
        print(f"wrote {results_io.write(args.output, run, figures)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
