"""The embedded default: a search on generated shapes that runs anywhere in minutes."""

from __future__ import annotations

from controller.config import ControllerConfig, PolicyGradientConfig
from experiments.config import ExperimentConfig
from experiments.search_config import SearchConfig
from proxy_trainer.data.config import DataConfig, SyntheticConfig
from proxy_trainer.detector.config import ModelConfig
from proxy_trainer.training.config import TrainerConfig
from search_space import Scaling, SearchSpace

# Proxy-like but smaller than the paper's proxy (0.25 / 0.25 / 64, head 4 x 64):
# narrow endpoints and a 2 x 32 head, so a trial trains at 64 px on one CPU core
# in about 30 s.
SMOKE_SCALING = Scaling(filter_size_scale=0.25, resample_alpha=0.25, endpoints_num_filters=32, block_repeats=1)
SMOKE_INPUT_SIZE = 64


def synthetic_smoke() -> ExperimentConfig:
    """SpineNet-49 space on the synthetic shapes dataset (proxy_trainer.data.synthetic).

    384 generated images of 4 classes, 64 held out for the reward; a tiny
    proxy at 64 px trained for 10 epochs (400 steps of 8 images) with the
    recipe's optimizer and schedule shape, at half its learning rate (the
    batch is 8 times smaller) and with gradients clipped at norm 10 as the
    reference SpineNet configs do (at 0.08 without clipping one seed in three
    diverged to AP ~0.01). What it rewards (SpineNet-49 over seeds, random
    architectures) is measured by bench/bench_synthetic_ap.py and shown in
    the README. One trial takes about 30 s on one core.
    """
    return ExperimentConfig(
        name="synthetic_smoke",
        description="SpineNet-49 space on generated shapes: a tiny proxy at 64 px, about 30 s per trial on a CPU core",
        search_space=SearchSpace(parent_window=5, scaling=SMOKE_SCALING),
        model=ModelConfig(
            model_id=None, input_size=SMOKE_INPUT_SIZE, num_classes=4, head_num_convs=2, head_num_filters=32
        ),
        data=DataConfig(source="synthetic", synthetic=SyntheticConfig(num_images=384, num_classes=4), holdout_size=64),
        trainer=TrainerConfig(
            batch_size=8,
            epochs=10.0,
            learning_rate=0.04,
            warmup_steps=50,
            gradient_clip_norm=10.0,
            checkpoint_interval=100,
            log_interval=20,
            eval_batch_size=16,
        ),
        # A short search: 36 trials, two at a time on 2 cores, in worker
        # processes that stay up between trials (on CPU nothing is held back;
        # a new process would cost the TensorFlow start-up every trial). For
        # a 36-trial budget the RNN controller learns every 2 results, with a
        # baseline over the last few rewards and Adam's step at 0.05 (NAS-RL's
        # 6e-4 is set for ~12,800 trials); chosen with
        # bench/bench_short_search.py. What the quick start's search reaches
        # over seeds is measured by bench/bench_quickstart.py (stored in
        # bench/results/quickstart.json, rendered in the README).
        controller=ControllerConfig(
            policy_gradient=PolicyGradientConfig(learning_rate=0.05, update_every=2, baseline_decay=0.8)
        ),
        # A trial takes about 30 s on one core (up to a minute or two on a busy
        # machine): one still running after 10 minutes is hung, and killing it
        # frees its core for the rest of the search.
        search=SearchConfig(max_trials=36, trial_cpus=1.0, fresh_worker_per_trial=False, trial_timeout_s=600.0),
    )
