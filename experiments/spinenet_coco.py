"""The paper's search on COCO (SpineNet paper section 5.1)."""

from __future__ import annotations

from experiments.config import ExperimentConfig
from experiments.registry import register
from proxy_trainer.data_config import COCO_HOLDOUT_SIZE, PROXY_SCALE_JITTER, DataConfig
from proxy_trainer.model_config import ModelConfig
from proxy_trainer.train_config import TrainerConfig
from search_space import SearchSpace, model_preset


@register("spinenet49_coco_proxy")
def spinenet49_coco_proxy() -> ExperimentConfig:
    """SpineNet-49 space, parent window 5, proxy RetinaNet at 512 on held-out COCO train2017.

    SPINENET.md sections 2, 4 and 7: proxy scaling (0.25 / 0.25 / 64, head
    4 x 64), 512 px, 5 epochs of the public proxy recipe (SGD momentum 0.9,
    batch 64, lr 0.08 with 500 warmup steps, step decay), horizontal flip and
    scale jitter [0.5, 2.0]; reward = box AP on 7,392 images held out from
    train2017. The COCO paths are the user's: ``data.annotation_file``
    (instances_train2017.json) and ``data.image_dir`` (train2017/).
    """
    return ExperimentConfig(
        name="spinenet49_coco_proxy",
        description="The paper's SpineNet-49 search: proxy RetinaNet at 512 on held-out COCO train2017",
        search_space=SearchSpace(parent_window=5, scaling=model_preset("proxy").scaling),
        model=ModelConfig(model_id="proxy", input_size=512, num_classes=90),
        data=DataConfig(source="coco", holdout_size=COCO_HOLDOUT_SIZE, hflip=True, scale_jitter=PROXY_SCALE_JITTER),
        trainer=TrainerConfig(batch_size=64, epochs=5.0, learning_rate=0.08, warmup_steps=500),
    )
