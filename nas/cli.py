"""``nas-search``: the command line of the architecture search.

Usage: ``nas-search COMMAND [--flag=value ...]``. Every failure a user can
cause (unknown command or flag, bad value, missing file) ends in one line on
stderr, ``nas-search: error: ...``, and exit status 2.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable

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


@dataclasses.dataclass(frozen=True)
class Command:
    """A subcommand: its function, the flags it accepts, one line of help."""

    fn: Callable[[], int | None]
    flags: tuple[str, ...]
    help: str


def _load_config():
    """The experiment config after --config_file and --params_override."""
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


def _cmd_space() -> int:
    """Prints the size of an experiment's search space."""
    from search_space import DecisionEncoding, space_size

    config = _load_config()
    space = config.search_space
    size = space_size(space)
    encoding = DecisionEncoding(space)
    if FLAGS.json:
        out = dataclasses.asdict(size)
        out["experiment"] = config.name
        out["num_decisions"] = len(encoding)
        print(json.dumps(out, indent=2))
        return 0
    alloc = ", ".join(f"L{lv}:{c}" for lv, c in space.level_allocation)
    print(f"experiment {config.name}: {size.num_blocks} scale-permuted blocks")
    print(f"  intermediate allocation {alloc}; outputs L{', L'.join(map(str, space.output_levels))}")
    print(
        f"  parent window {space.parent_window}; level shifts {list(space.level_shifts)}; block types {list(space.block_fns)}"
    )
    rows = [
        ("scale permutations", size.permutations),
        ("cross-scale connections", size.connections),
        ("block adjustments", size.adjustments),
        ("total", size.total),
        (f"connections, window {space.parent_window}", size.connections_windowed),
        (f"total, window {space.parent_window}", size.total_windowed),
    ]
    for name, value in rows:
        print(f"  {name:<28} {value:.3e}  ({value})")
    print(f"  decision points             {len(encoding)}")
    return 0


COMMANDS: dict[str, Command] = {
    "space": Command(_cmd_space, ("experiment", "config_file", "params_override", "json"), "size of a search space"),
}


def _usage() -> str:
    lines = ["usage: nas-search COMMAND [--flag=value ...]", "", "commands:"]
    for name, cmd in COMMANDS.items():
        lines.append(f"  {name:<10} {cmd.help}   flags: " + " ".join(f"--{f}" for f in cmd.flags))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Runs one command; returns the exit status."""
    from experiments.overrides import ConfigError
    from experiments.registry import UnknownExperimentError
    from search_space import ArchitectureError

    args = argv[1:]
    if not args or args[0] in ("-h", "--help", "help", "--helpshort"):
        print(_usage())
        return 0 if args else 2
    name = args[0]
    if name not in COMMANDS:
        print(f"nas-search: error: unknown command {name!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    command = COMMANDS[name]
    try:
        rest = FLAGS([argv[0]] + args[1:])
    except flags.Error as e:
        print(f"nas-search {name}: error: {e}", file=sys.stderr)
        return 2
    try:
        if len(rest) > 1:
            raise UsageError(f"unexpected argument {rest[1]!r}")
        for flag_name in FLAGS:
            if FLAGS[flag_name].present and flag_name not in command.flags:
                raise UsageError(
                    f"--{flag_name} does not apply to '{name}'; it takes " + " ".join(f"--{f}" for f in command.flags)
                )
        return command.fn() or 0
    except (UsageError, ConfigError, ArchitectureError, UnknownExperimentError) as e:
        print(f"nas-search {name}: error: {e}", file=sys.stderr)
        return 2


def run() -> None:
    """Console-script entry point."""
    sys.exit(main(sys.argv))


if __name__ == "__main__":
    run()
