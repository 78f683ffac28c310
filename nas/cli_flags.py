"""The flags of ``nas-search``, shared by every command module.

Command modules define the flags they add on ``FLAGS`` at import time; the
command table in ``nas.cli`` lists, per command, which flags it accepts.
"""

from __future__ import annotations

from absl import flags

FLAGS = flags.FlagValues()

flags.DEFINE_string("experiment", None, "Registered experiment name.", flag_values=FLAGS)
flags.DEFINE_string("config_file", None, "YAML file of config overrides.", flag_values=FLAGS)
flags.DEFINE_string(
    "params_override", None, "Comma-separated dotted overrides, e.g. search_space.parent_window=4.", flag_values=FLAGS
)
flags.DEFINE_bool("json", False, "Print machine-readable JSON.", flag_values=FLAGS)


class UsageError(Exception):
    """A problem with the command line or its inputs: one line, exit 2."""


def load_experiment_config():
    """The experiment config after --config_file and --params_override.

    Raises:
      UsageError: --experiment missing.
      ConfigError, UnknownExperimentError: bad overrides or name.
    """
    from experiments.overrides import apply_overrides, load_config_file, parse_override_string
    from experiments.registry import get_experiment

    if not FLAGS.experiment:
        raise UsageError("--experiment is required")
    config = get_experiment(FLAGS.experiment)
    if FLAGS.config_file:
        config = apply_overrides(config, load_config_file(FLAGS.config_file))
    if FLAGS.params_override:
        config = apply_overrides(config, parse_override_string(FLAGS.params_override))
    config.validate()
    return config
