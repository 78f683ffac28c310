"""Search algorithms over the decision encoding: one protocol, registered by name.

Importing this package registers every algorithm: ``reinforce`` (the NAS-RL
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
    controller_class,
    controller_names,
    is_usable_reward,
    register_controller,
)
from controller.config import (
    ControllerConfig,
    ControllerConfigError,
    EvolutionConfig,
    PolicyGradientConfig,
    PolicyNetworkConfig,
    PPOConfig,
    build_controller,
)
from controller.evolution import RegularizedEvolution
from controller.ppo import PPOController
from controller.random_search import RandomSearch
from controller.reinforce import ReinforceController
from controller.reward import COST_MEASURES, COST_NONE, RewardConfig, RewardError, compute_reward, reward_or_failure
from controller.rnn_policy import LSTMPolicy, SampledSequence

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
