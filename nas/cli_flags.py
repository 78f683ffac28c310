"""The flags of ``nas-search`` and ``nas-train``, one set shared by every command.

The flags several commands take are defined here; a command module defines
the flags only it takes on ``FLAGS`` at import time, and lists every flag it
accepts in its ``FLAGS_USED`` (``nas.cli`` refuses the others).
"""

from __future__ import annotations

from absl import flags

from search_space.errors import UserError

FLAGS = flags.FlagValues()

flags.DEFINE_string("experiment", None, "Registered experiment name.", flag_values=FLAGS)
flags.DEFINE_string("config_file", None, "YAML file of config overrides.", flag_values=FLAGS)
flags.DEFINE_string(
    "params_override", None, "Comma-separated dotted overrides, e.g. search_space.parent_window=4.", flag_values=FLAGS
)
flags.DEFINE_bool("json", False, "Print machine-readable JSON.", flag_values=FLAGS)
flags.DEFINE_string("workdir", None, "The search's directory, or train's (created, or continued).", flag_values=FLAGS)
flags.DEFINE_string("ray_address", None, "Address of a Ray cluster (default: a local Ray).", flag_values=FLAGS)
flags.DEFINE_integer(
    "max_trials", None, "Trials to run in all (overrides search.max_trials).", flag_values=FLAGS, lower_bound=1
)
flags.DEFINE_string(
    "evaluator", None, "module:function evaluating an architecture (default: the proxy).", flag_values=FLAGS
)
flags.DEFINE_bool("quiet", False, "No progress output.", flag_values=FLAGS)
flags.DEFINE_bool(
    "rebuild_controller",
    False,
    "Ignore the controller snapshots and rebuild the controller by replaying the whole trial log "
    "(when a snapshot is refused or disagrees with the log; the snapshots are set aside, not deleted).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "arch",
    None,
    "Architecture JSON file, or preset:NAME (spinenet49, resnet_like, spinenet_mobile49, spinenet_mobile49S, spinenet_mobile49XS).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "model_id",
    None,
    "Published scaling and head size: 49S, 49, 96, 143, 190 or proxy; mobile49, mobile49S or mobile49XS for a SpineNet-Mobile.",
    flag_values=FLAGS,
)
flags.DEFINE_integer("seed", 0, "Random seed of the trial.", flag_values=FLAGS, lower_bound=0)
flags.DEFINE_integer(
    "cpu_threads",
    0,
    "TensorFlow threads on a machine without a GPU (0: one per core). A search's trial runs "
    "ceil(search.trial_cpus) threads; the same number here reproduces its reward exactly.",
    flag_values=FLAGS,
    lower_bound=0,
)
flags.DEFINE_integer(
    "top",
    None,
    "How many of the best architectures to list (status: 5, export: 1, report: 5).",
    flag_values=FLAGS,
    lower_bound=1,
)
flags.DEFINE_string(
    "output",
    None,
    "Where to write. export: a file (--top=1) or directory (default WORKDIR/export); "
    "report: the HTML file (default WORKDIR/report.html).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "proxy_check",
    None,
    "A proxy check's workdir (nas-search proxy-check): show the reward's noise between seeds it measured.",
    flag_values=FLAGS,
)


HELP_FLAGS = ("-h", "--help", "--helpshort", "--helpfull")


def describe_flags(flag_values: flags.FlagValues, names) -> str:
    """One block per flag: ``--name=TYPE`` (or ``--[no]name``), its help and its default."""
    lines = []
    for name in names:
        flag = flag_values[name]
        kind = flag.flag_type()
        spec = f"--[no]{name}" if kind == "bool" else f"--{name}={kind.upper()}"
        default = "" if flag.default is None else f" (default: {flag.default_as_str.strip(chr(39))})"
        lines.append(f"  {spec}")
        lines.append(f"      {flag.help}{default}")
    return "\n".join(lines)


class UsageError(UserError):
    """A problem with the command line or its inputs: one line, exit 2."""


def load_experiment_config(extra_overrides: dict | None = None):
    """The experiment config after --config_file, --params_override and flag overrides.

    Raises:
      UsageError: --experiment missing.
      ConfigError, UnknownExperimentError: bad overrides or name.
    """
    from experiments.registry import configure_experiment

    if not FLAGS.experiment:
        raise UsageError("--experiment is required")
    return configure_experiment(
        FLAGS.experiment,
        config_file=FLAGS.config_file,
        params_override=FLAGS.params_override,
        extra_overrides=extra_overrides,
    )
