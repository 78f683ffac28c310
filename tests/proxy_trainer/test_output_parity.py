"""Weights copied by dataflow order (proxy_trainer/detector/weight_order.py) and output parity with the reference.

The first tests need no reference: weights move between two of our models that compute the same network
but build and name their layers differently, and the outputs must then be equal bit for bit; a model of
another structure must be refused. The last test runs ``bench/bench_output_parity.py``'s comparison on one
random architecture against tf-models-official where its virtual environment is installed
(``NAS_REFERENCE_PYTHON``, default ``/tmp/nas_ref_venv/bin/python``) and is skipped elsewhere.
"""

import dataclasses
import os

import numpy as np
import pytest

from bench.bench_output_parity import RELATIVE_TOLERANCE, ours_outputs, parse_args, randomize, run_parity
from proxy_trainer.detector.retinanet import build_retinanet
from proxy_trainer.detector.weight_order import WeightOrderError, export_weights, import_weights, weighted_layers
from search_space import model_preset, resnet_like, spinenet49

REFERENCE_PYTHON = os.environ.get("NAS_REFERENCE_PYTHON", "/tmp/nas_ref_venv/bin/python")
SIZE = 128
SHAPE = (1, SIZE, SIZE, 3)


def _model(arch):
    return build_retinanet(
        arch.with_scaling(model_preset("proxy").scaling),
        input_size=SIZE,
        num_classes=3,
        head_num_convs=2,
        head_num_filters=16,
    )


def _outputs(model, images):
    return [np.asarray(o) for o in ours_outputs(model, images)]


@pytest.fixture(scope="module")
def source():
    """SpineNet-49 (proxy scaling) with random weights, its weights by dataflow order, an input and its outputs."""
    model = _model(spinenet49())
    layers = weighted_layers(model, SHAPE, ours_outputs)
    randomize(layers, np.random.default_rng(0))
    images = np.random.default_rng(1).normal(0.0, 1.0, SHAPE).astype(np.float32)
    return model, export_weights(layers), images, _outputs(model, images)


def _swapped(arch, i, j):
    """``arch`` with blocks ``i`` and ``j`` (running indices, independent of each other) listed the other way round."""
    m = arch.num_stem
    label = {k: k for k in range(m + arch.num_blocks)}
    label[i], label[j] = j, i
    blocks = list(arch.blocks)
    blocks[i - m], blocks[j - m] = blocks[j - m], blocks[i - m]
    blocks = [dataclasses.replace(b, parents=tuple(label[p] for p in b.parents)) for b in blocks]
    return dataclasses.replace(arch, blocks=tuple(blocks))


def test_weights_follow_the_dataflow_not_the_names_or_the_build_order(source):
    model, weights, images, expected = source
    # The same network with independent blocks listed in another order (the P4 and P3 outputs, the P7
    # and P6 outputs): other layer names (they carry the block's index) and another build order; each
    # block still adds its parents in the same order (the walk follows the order of an addition's inputs).
    arch = spinenet49()
    other = _swapped(_swapped(arch, 12, 13), 15, 16)
    assert other.fingerprint() == arch.fingerprint() and other.blocks != arch.blocks
    target = _model(other)
    names = {layer.name for layer in model.backbone.layers}
    assert names != {layer.name for layer in target.backbone.layers}
    layers = weighted_layers(target, SHAPE, ours_outputs)
    before = _outputs(target, images)
    assert not any(np.array_equal(a, b) for a, b in zip(before, expected))  # its own init differs everywhere

    assert import_weights(layers, weights) == len(weights)
    after = _outputs(target, images)
    for a, b in zip(after, expected):  # P3-P7, class and box outputs of every level
        np.testing.assert_array_equal(a, b)
    # Every variable that the computation reads was assigned (the readback equals the export).
    readback = export_weights(layers)
    assert readback.keys() == weights.keys()
    assert all(np.array_equal(readback[k], weights[k]) for k in weights)
    # Both batch-norm moving statistics moved with the other weights (inference mode uses them).
    roles = {k.split(".", 1)[1] for k in weights}
    assert {"kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance"} == roles


def test_a_model_of_another_structure_is_refused(source):
    _, weights, _, _ = source
    target = _model(resnet_like())
    layers = weighted_layers(target, SHAPE, ours_outputs)
    with pytest.raises(WeightOrderError, match=r"the weights hold \d+ layers, the model \d+"):
        import_weights(layers, weights)
    n = min(len(layers), len({k.split(".")[0] for k in weights}))
    kept = {k: v for k, v in weights.items() if int(k.split(".")[0]) < n}
    with pytest.raises(WeightOrderError, match=r"layer \d+ \((conv|batch_norm) .*\): the model has"):
        import_weights(layers[:n], kept)


@pytest.mark.skipif(
    not os.path.exists(REFERENCE_PYTHON),
    reason=f"the reference implementation's Python ({REFERENCE_PYTHON}, or NAS_REFERENCE_PYTHON) is not here; "
    "bench/bench_model.py installs it",
)
def test_the_reference_gives_our_outputs_with_our_weights():
    args = parse_args(["--preset_model_ids=", "--random=1", "--first_seed=7", "--batch_size=1", "--num_classes=5"])
    try:
        parity = run_parity(REFERENCE_PYTHON, args)
    except RuntimeError as e:
        if "No module named 'official'" in str(e):
            pytest.skip(f"tf-models-official is not installed for {REFERENCE_PYTHON}")
        raise
    [case] = parity["cases"]
    assert case["params"]["ours"] == case["params"]["reference"]
    assert case["assigned"] == case["variables"] > 0
    assert len(case["outputs"]) == 15  # P3-P7, class and box outputs on 5 levels
    for key, o in case["outputs"].items():
        assert o["max_rel_diff"] <= RELATIVE_TOLERANCE, (key, o)
        assert o["max_abs_reference"] > 0 and o["control_max_abs_diff"] > 0, (key, o)  # not trivially equal
