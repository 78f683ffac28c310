"""Search algorithms over the decision encoding: one protocol, registered by name.

Asking the registry (``controller_names``, ``controller_class``,
``build_controller``) registers every algorithm: ``reinforce`` (the NAS-RL
controller SpineNet used), ``ppo``, ``evolution`` (regularized evolution) and
``random``. Build one from config with ``build_controller``.
"""

from controller.base import (
    FAILURE_FIXED,
    FAILURE_POLICIES,
    FAILURE_SKIP,
    STATE_SCHEMA_VERSION,
    BaseController,
    Controller,
    ControllerStateError,
    FeedbackError,
    Proposal,
    is_usable_reward,
)
from controller.config import (
    ControllerConfig,
    ControllerConfigError,
    EvolutionConfig,
    PolicyGradientConfig,
    PolicyNetworkConfig,
    PPOConfig,
)
from controller.factory import build_controller, controller_class, controller_names
from controller.registry import register_controller
from controller.reward import COST_MEASURES, COST_NONE, RewardConfig, RewardError, compute_reward, reward_or_failure

# The algorithms and the policy network need TensorFlow: imported on first use.
_LAZY = {
    "RegularizedEvolution": "controller.evolution",
    "PPOController": "controller.ppo",
    "RandomSearch": "controller.random_search",
    "ReinforceController": "controller.reinforce",
    "LSTMPolicy": "controller.rnn_policy",
    "SampledSequence": "controller.rnn_policy",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'controller' has no attribute {name!r}")


__all__ = [
    "COST_MEASURES",
    "COST_NONE",
    "FAILURE_FIXED",
    "FAILURE_POLICIES",
    "FAILURE_SKIP",
    "STATE_SCHEMA_VERSION",
    "BaseController",
    "Controller",
    "ControllerConfig",
    "ControllerConfigError",
    "ControllerStateError",
    "EvolutionConfig",
    "FeedbackError",
    "LSTMPolicy",
    "PPOConfig",
    "PPOController",
    "PolicyGradientConfig",
    "PolicyNetworkConfig",
    "Proposal",
    "RandomSearch",
    "RegularizedEvolution",
    "ReinforceController",
    "RewardConfig",
    "RewardError",
    "SampledSequence",
    "build_controller",
    "compute_reward",
    "controller_class",
    "controller_names",
    "is_usable_reward",
    "register_controller",
    "reward_or_failure",
]
