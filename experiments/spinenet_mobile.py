"""SpineNet-Mobile searches: the published Mobile space on COCO, and a quick synthetic variant.

docs/proxy_recipe.md#spinenet-mobile-proxy says where each setting comes from
and which are this project's choices. Both rewards are cost-aware, MnasNet
style (``controller.reward``): AP x (multiply-adds / target) ** -0.07, so a
cheaper backbone is preferred at equal AP, as a Mobile search asks.
"""

from __future__ import annotations

import dataclasses

from controller.config import SAMPLE_EFFICIENT_REINFORCE
from controller.reward import RewardConfig
from experiments.config import ExperimentConfig
from experiments.search_config import SearchConfig
from experiments.synthetic import SMOKE_INPUT_SIZE, synthetic_smoke
from proxy_trainer.data.config import COCO_HOLDOUT_SIZE, PROXY_SCALE_JITTER, DataConfig
from proxy_trainer.detector.config import ModelConfig
from proxy_trainer.training.config import TrainerConfig
from search_space import MBCONV, Scaling, SearchSpace, model_preset, spinenet_mobile49
from search_space.space import SPINENET_MOBILE49_INTERMEDIATE_ALLOCATION

# The Mobile space (docs/search_space.md#spinenet-mobile): the published Mobile topology's level
# allocation, MBConv blocks only (no block-type decision), the paper's parent window and shifts.
MOBILE_BLOCK_FNS = (MBCONV,)
# docs/proxy_recipe.md#spinenet-mobile-proxy: Mobile-49 costs about 1.0B multiply-adds at 384 px
# (1.01B with swish); the target of the cost-aware reward.
MOBILE_COST_TARGET = 1.0e9
# A Mobile model as small as synthetic_smoke's proxy: half the Mobile widths (L2 12 ... L5-L7 56),
# 16 endpoint filters, a head of 2 separable convs of 16.
MOBILE_SMOKE_SCALING = Scaling(filter_size_scale=0.5, resample_alpha=0.5, endpoints_num_filters=16, block_repeats=1)


def mobile_space(scaling: Scaling) -> SearchSpace:
    """The SpineNet-Mobile-49 space with ``scaling``: the published Mobile topology is a member."""
    return SearchSpace(
        level_allocation=SPINENET_MOBILE49_INTERMEDIATE_ALLOCATION,
        block_fns=MOBILE_BLOCK_FNS,
        parent_window=5,
        scaling=scaling,
    )


def spinenet_mobile_coco_proxy() -> ExperimentConfig:
    """The Mobile space on COCO: SpineNet-Mobile-49 itself at 384 px as the proxy, a cost-aware reward.

    docs/proxy_recipe.md#spinenet-mobile-proxy: model id ``mobile49`` (widths
    x1.0, 48 endpoint filters, a head of 4 separable convs of 48) with swish,
    384 px, 90 classes (Model Garden's ``retinanet_mobile_coco``); 5 epochs of
    the public proxy recipe (batch 64, lr 0.08 = the Mobile recipe's 0.32 per
    256 images, 500 warmup steps, step decay) with the Mobile recipe's weight
    decay 3e-5, horizontal flip and scale jitter [0.5, 2.0]; reward = box AP
    on 7,392 images held out from train2017, times (multiply-adds / 1.0B) **
    -0.07. The COCO paths are the user's (``data.annotation_file``,
    ``data.image_dir``).
    """
    return ExperimentConfig(
        name="spinenet_mobile_coco_proxy",
        description="SpineNet-Mobile-49 space: Mobile-49 RetinaNet at 384 on held-out COCO train2017, cost-aware",
        search_space=mobile_space(model_preset("mobile49").scaling),
        model=ModelConfig(model_id="mobile49", input_size=384, num_classes=90, activation="swish"),
        data=DataConfig(source="coco", holdout_size=COCO_HOLDOUT_SIZE, hflip=True, scale_jitter=PROXY_SCALE_JITTER),
        trainer=TrainerConfig(batch_size=64, epochs=5.0, learning_rate=0.08, warmup_steps=500, weight_decay=3e-5),
        controller=SAMPLE_EFFICIENT_REINFORCE,
        reward=RewardConfig(cost="multiply_adds", cost_target=MOBILE_COST_TARGET),
        search=SearchConfig(max_trials=1000, trial_timeout_s=6 * 3600.0),
    )


def synthetic_mobile_smoke() -> ExperimentConfig:
    """The Mobile space on the synthetic shapes, as small and quick as ``synthetic_smoke``.

    The same data, recipe, controller and search settings as
    ``synthetic_smoke``; a Mobile model at half the Mobile widths with swish;
    the cost-aware reward's target is what the published Mobile topology costs
    at this scale, so the pressure on cost is the COCO experiment's.
    """
    model = ModelConfig(
        model_id=None,
        input_size=SMOKE_INPUT_SIZE,
        num_classes=4,
        head_num_convs=2,
        head_num_filters=16,
        head_separable=True,
        activation="swish",
    )
    target = model.cost(spinenet_mobile49(MOBILE_SMOKE_SCALING)).multiply_adds
    return dataclasses.replace(
        synthetic_smoke(),  # its data, recipe, controller and search settings
        name="synthetic_mobile_smoke",
        description="SpineNet-Mobile-49 space on generated shapes: a tiny Mobile proxy at 64 px, cost-aware reward",
        search_space=mobile_space(MOBILE_SMOKE_SCALING),
        model=model,
        reward=RewardConfig(cost="multiply_adds", cost_target=float(target)),
    )
