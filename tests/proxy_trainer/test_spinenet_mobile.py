"""SpineNet-Mobile in Keras: the published models' sizes, exact agreement with the cost model, training.

The preset figures are Model Garden's SpineNetMobile as the reference measures it (issue 16;
tests/search_space/test_mobile.py holds them with the cost model). One test builds the reference
itself when its virtual environment is there (bench/bench_mobile.py does the full comparison).
"""

import dataclasses
import math
import os
import random
import subprocess
import sys

import pytest

from experiments.overrides import apply_overrides
from experiments.registry import get_experiment
from proxy_trainer.detector.config import LayerSpec
from proxy_trainer.detector.retinanet import build_model, build_retinanet
from proxy_trainer.detector.spinenet import SpineNet
from search_space import (
    MBCONV,
    MODEL_PRESETS,
    SPINENET_MOBILE,
    DecisionEncoding,
    Scaling,
    SearchSpace,
    architecture_preset,
    sample_architecture,
    spinenet_mobile49,
)
from search_space.cost_model import model_cost
from search_space.space import SPINENET_MOBILE49_INTERMEDIATE_ALLOCATION
from tests.proxy_trainer.graph_cost import graph_flops
from tests.search_space.test_mobile import PUBLISHED

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REFERENCE_PYTHON = "/tmp/nas_ref_venv/bin/python"


def retinanet_and_cost(arch, input_size, activation, convs, filters, num_classes=90):
    model = build_retinanet(
        arch,
        input_size=input_size,
        num_classes=num_classes,
        head_num_convs=convs,
        head_num_filters=filters,
        spec=LayerSpec(activation=activation),
        head_separable=True,
    )
    cost = model_cost(
        arch,
        input_size=input_size,
        num_classes=num_classes,
        head_num_convs=convs,
        head_num_filters=filters,
        activation=activation,
        head_separable=True,
    )
    return model, cost


@pytest.mark.parametrize("model_id", sorted(PUBLISHED))
def test_the_published_mobile_models_have_the_references_size(model_id):
    size, backbone_params, _, params, _ = PUBLISHED[model_id]
    preset = MODEL_PRESETS[model_id]
    arch = architecture_preset("spinenet_mobile49", model_id)
    model, cost = retinanet_and_cost(arch, size, preset.activation, preset.head_num_convs, preset.head_num_filters)
    assert (model.backbone.count_params(), model.count_params()) == (backbone_params, params)
    # Multiply-adds within 0.5% of the published ones: tests/search_space/test_mobile.py; here the
    # built graph's float ops equal the cost model's.
    assert (graph_flops(model.backbone), graph_flops(model)) == (cost.backbone_flops, cost.flops)
    assert model.backbone.name == SPINENET_MOBILE
    shapes = {k: tuple(v.shape[1:]) for k, v in model.backbone.output.items()}
    assert shapes == {str(lv): (h, w, c) for lv, h, w, c in cost.endpoint_shapes}


def random_mobile_architectures(count=4, seed=16):
    """Random members of the Mobile space at two tiny scalings, 64 or 128 px, each activation in turn."""
    space = SearchSpace(level_allocation=SPINENET_MOBILE49_INTERMEDIATE_ALLOCATION, block_fns=(MBCONV,))
    scalings = (Scaling(0.25, 0.5, 8, 1), Scaling(0.5, 0.5, 16, 1))
    rng = random.Random(seed)
    activations = ("relu", "swish", "hard_swish")
    return [
        (sample_architecture(DecisionEncoding(space), rng).with_scaling(scalings[i % 2]), 64 * (1 + i % 2), act)
        for i, act in zip(range(count), activations * count)
    ]


@pytest.mark.parametrize("arch, input_size, activation", random_mobile_architectures())
def test_random_mobile_architectures_match_the_cost_model(arch, input_size, activation):
    model, cost = retinanet_and_cost(arch, input_size, activation, 2, arch.scaling.endpoints_num_filters, 4)
    assert (model.count_params(), model.backbone.count_params()) == (cost.params, cost.backbone_params)
    assert (graph_flops(model), graph_flops(model.backbone)) == (cost.flops, cost.backbone_flops)


def test_get_config_round_trip_rebuilds_the_mobile_graph():
    arch = spinenet_mobile49(Scaling(0.25, 0.5, 8, 1))
    model = SpineNet(arch, 64, LayerSpec(activation="hard_swish"))
    rebuilt = SpineNet.from_config(model.get_config())
    assert rebuilt.architecture == arch and rebuilt.count_params() == model.count_params()
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]


def test_the_synthetic_mobile_experiment_trains_on_cpu(tmp_path):
    from proxy_trainer.training.trainer import train_and_evaluate

    config = get_experiment("synthetic_mobile_smoke")
    config = apply_overrides(
        config,
        {
            "data.cache_dir": str(tmp_path / "cache"),
            "data.synthetic.num_images": 40,
            "data.holdout_size": 8,
            "trainer.train_steps": 3,
            "trainer.batch_size": 4,
            "trainer.warmup_steps": 1,
            "trainer.eval_batch_size": 8,
        },
    )
    arch = spinenet_mobile49(config.search_space.scaling)
    assert config.search_space.contains(arch)
    model = build_model(config.model, arch)
    cost = config.model.cost(arch)
    assert model.count_params() == cost.params and graph_flops(model) == cost.flops
    # The cost-aware reward's target is the published topology's cost at this scale.
    assert config.reward.cost == "multiply_adds" and config.reward.cost_target == cost.multiply_adds
    metrics = train_and_evaluate(arch, config, str(tmp_path / "trial"), seed=0)
    assert metrics["steps"] == 3 and math.isfinite(metrics["final_loss"])
    assert (metrics["params"], metrics["multiply_adds"]) == (cost.params, cost.multiply_adds)
    assert 0.0 <= metrics["AP"] <= 1.0


def test_the_coco_experiment_is_the_mobile_proxy():
    config = get_experiment("spinenet_mobile_coco_proxy")
    assert config.search_space.family == SPINENET_MOBILE and config.search_space.parent_window == 5
    assert config.search_space.contains(spinenet_mobile49())
    m = config.model
    assert (m.model_id, m.input_size, m.num_classes, m.activation) == ("mobile49", 384, 90, "swish")
    assert m.head_size() == (4, 48) and m.separable_head()
    assert (config.reward.cost, config.reward.cost_target, config.reward.exponent_over_budget) == (
        "multiply_adds", 1.0e9, -0.07,
    )  # fmt: skip
    cost = m.cost(spinenet_mobile49())
    assert abs(cost.multiply_adds / 1.0e9 - 1) < 0.02  # Mobile-49 with swish: about the target
    t = config.trainer
    assert (t.batch_size, t.epochs, t.learning_rate, t.weight_decay) == (64, 5.0, 0.08, 3e-5)


def test_a_model_id_of_the_other_family_is_refused():
    from search_space import ArchitectureError

    config = dataclasses.replace(get_experiment("synthetic_mobile_smoke").model, model_id="proxy")
    with pytest.raises(ArchitectureError, match="model id 'proxy' scales a spinenet"):
        build_model(config, spinenet_mobile49())


@pytest.mark.skipif(
    not os.path.exists(REFERENCE_PYTHON),
    reason=f"the reference implementation's virtual environment ({REFERENCE_PYTHON}) is not here; "
    "bench/bench_model.py installs it and bench/bench_mobile.py compares against it",
)
def test_a_random_mobile_architecture_matches_the_reference_build():
    from bench.bench_mobile import run_parity

    try:
        parity = run_parity(REFERENCE_PYTHON, random_count=1, seed=3, presets="")
    except RuntimeError as e:
        if "No module named 'official'" in str(e):
            pytest.skip(f"tf-models-official is not installed in {REFERENCE_PYTHON}")
        raise
    # One random Mobile architecture (backbone, ReLU) and SpineNet-49 with swish, both exact.
    assert parity["checked"] == 2 and parity["mismatches"] == []


def test_bench_mobile_runs_here_without_a_reference_and_says_so(tmp_path):
    code = (
        "import sys; sys.argv = ['bench_mobile.py', '--reference_venv=" + str(tmp_path / "none") + "', '--output=']\n"
        "from bench import bench_model\n"
        "bench_model._reference_python = lambda venv: (None, 'not installed (test)')\n"
        "from bench import bench_mobile\n"
        "sys.exit(bench_mobile.main())\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 1 and "reference unavailable: not installed (test)" in r.stdout
