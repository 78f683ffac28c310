"""The paper's search on COCO (SpineNet paper section 5.1)."""

from __future__ import annotations

from experiments.config import ExperimentConfig
from experiments.registry import register
from search_space import SearchSpace, model_preset


@register("spinenet49_coco_proxy")
def spinenet49_coco_proxy() -> ExperimentConfig:
    """SpineNet-49 space, parent window 5, proxy scaling (SPINENET.md sections 2, 4, 7)."""
    return ExperimentConfig(
        name="spinenet49_coco_proxy",
        description="The paper's SpineNet-49 search: proxy RetinaNet at 512 on held-out COCO train2017",
        search_space=SearchSpace(parent_window=5, scaling=model_preset("proxy").scaling),
    )
