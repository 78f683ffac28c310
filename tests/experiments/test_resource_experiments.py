"""The resource-distribution experiments: a found topology kept, its blocks' resources searched within its cost."""

import dataclasses
import json
import math
import random

import pytest

from experiments.overrides import ConfigError, apply_overrides, config_to_dict
from experiments.registry import experiment_from_dict, experiment_names, get_experiment
from search_space import (
    Architecture,
    DecisionEncoding,
    sample_architecture,
    save_architecture,
    spinenet49,
    spinenet_mobile49,
)

CASES = {
    "synthetic_resource_smoke": ("synthetic_smoke", spinenet49()),
    "spinenet_mobile_resource_coco_proxy": ("spinenet_mobile_coco_proxy", spinenet_mobile49()),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_resource_experiments_keep_a_topology_and_spend_its_cost(name):
    assert name in experiment_names()
    config = get_experiment(name)
    base_name, topology = CASES[name]
    base = get_experiment(base_name)
    space = config.search_space
    assert space.fixed_blocks() == topology.blocks and space.stem() == topology.stem
    assert space.width_multipliers == (0.5, 0.75, 1.0, 1.25, 1.5) and space.block_repeats == (1, 2, 3)
    assert [p.kind for p in DecisionEncoding(space).points] == ["width_multiplier", "block_repeats"] * len(
        topology.blocks
    )
    uniform = Architecture(topology.blocks, topology.stem, space.scaling)
    r = config.reward
    assert (r.cost, r.cost_target) == ("multiply_adds", config.model.cost(uniform).multiply_adds)
    assert (r.exponent_within_budget, r.exponent_over_budget) == (0.0, -1.0)  # MnasNet's hard constraint
    # Everything else is the base experiment's.
    same = dataclasses.replace(config, name=base.name, description=base.description)
    assert dataclasses.replace(same, search_space=base.search_space, reward=base.reward) == base
    assert dataclasses.replace(space, fixed_topology=None, width_multipliers=(), block_repeats=()) == base.search_space


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_config_round_trips_as_a_frozen_search_keeps_it(name):
    config = get_experiment(name)
    frozen = json.loads(json.dumps(config_to_dict(config)))
    first = CASES[name][1].blocks[0]
    assert frozen["search_space"]["fixed_topology"][0] == [first.level, first.block_fn, list(first.parents), False]
    assert experiment_from_dict(frozen) == config
    assert apply_overrides(get_experiment(name), frozen) == config


def test_the_kept_topology_can_be_a_found_architecture_file(tmp_path):
    found = sample_architecture(DecisionEncoding(get_experiment("synthetic_smoke").search_space), random.Random(5))
    path = tmp_path / "best.json"
    save_architecture(path, found)
    config = apply_overrides(get_experiment("synthetic_resource_smoke"), {"search_space.fixed_topology": str(path)})
    assert config.search_space.fixed_blocks() == found.blocks
    preset = apply_overrides(config, {"search_space.fixed_topology": "preset:resnet_like"})
    assert preset.search_space.fixed_blocks()[0].parents == (0, 1) and preset.search_space != config.search_space
    assert experiment_from_dict(config_to_dict(config)) == config  # the file is no longer needed
    with pytest.raises(ConfigError, match="search space: block_repeats: 0 is not an integer >= 1"):
        apply_overrides(config, {"search_space.block_repeats": [0, 1]})
    with pytest.raises(ConfigError, match="fixed_topology is not a member of the space"):
        apply_overrides(config, {"search_space.fixed_topology": "preset:spinenet_mobile49"})


def test_the_synthetic_resource_experiment_trains_a_distribution_on_cpu(tmp_path):
    from proxy_trainer.detector.retinanet import build_model
    from proxy_trainer.training.trainer import train_and_evaluate
    from tests.proxy_trainer.graph_cost import graph_flops

    config = apply_overrides(
        get_experiment("synthetic_resource_smoke"),
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
    arch = sample_architecture(DecisionEncoding(config.search_space), random.Random(0))
    assert arch.has_resources and config.search_space.contains(arch)
    cost = config.model.cost(arch)
    model = build_model(config.model, arch)
    assert model.count_params() == cost.params and graph_flops(model) == cost.flops
    metrics = train_and_evaluate(arch, config, str(tmp_path / "trial"), seed=0)
    assert metrics["steps"] == 3 and math.isfinite(metrics["final_loss"])
    assert (metrics["params"], metrics["multiply_adds"]) == (cost.params, cost.multiply_adds)
