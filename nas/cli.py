"""``nas-search``: the command line of the architecture search (and, as ``nas-train``, of one training).

Usage: ``nas-search COMMAND [--flag=value ...]``; ``nas-search COMMAND
--help`` lists a command's flags. Every failure a user can cause (unknown
command or flag, bad value, missing file: a ``search_space.UserError`` or a
path error) ends in one line on stderr, ``nas-search COMMAND: error: ...``,
and exit status 2 (1 for a trial that failed in training), through the one
error ladder ``nas.user_errors.run_reporting_errors``.

Each command lives in ``nas/commands/NAME.py`` with a ``cmd_NAME()`` function
and a ``FLAGS_USED`` tuple; add it to ``COMMANDS`` below (a command named
with a hyphen, ``proxy-check``, has an underscore in its module and function).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys

from absl import flags

from nas.cli_flags import FLAGS, HELP_FLAGS, UsageError, describe_flags
from nas.quiet_tf import DEFAULT_TF_LOG_LEVEL
from nas.user_errors import run_reporting_errors


@dataclasses.dataclass(frozen=True)
class Command:
    """A subcommand: the module that implements it and one line of help."""

    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "space": Command("nas.commands.space", "size of an experiment's search space"),
    "data": Command("nas.commands.data", "check an experiment's dataset and build its preprocessing cache once"),
    "search": Command("nas.commands.search", "start a search, or continue the one in --workdir"),
    "resume": Command("nas.commands.resume", "continue the search in --workdir"),
    "status": Command("nas.commands.status", "progress, best architectures and controller statistics"),
    "export": Command("nas.commands.export", "write the best architectures as JSON or block specs"),
    "plot": Command("nas.commands.plot", "PNG plots: rewards, and a diagram of the best architecture"),
    "report": Command("nas.commands.report", "one self-contained HTML report of a search (opens from disk)"),
    "describe": Command("nas.commands.describe", "parameters, multiply-adds and shapes of one architecture"),
    "train": Command("nas.commands.train", "train and evaluate one architecture (also installed as nas-train)"),
    "proxy-check": Command(
        "nas.commands.proxy_check", "does the reward rank architectures as longer training does, and how noisy is it"
    ),
}
# Commands that train or search need TensorFlow: it is imported first, quietly.
# (report: it asks the controller for its policy's distributions.)
TENSORFLOW_COMMANDS = ("search", "resume", "train", "proxy-check", "report")


def _load(name: str):
    return importlib.import_module(COMMANDS[name].module)


def _usage() -> str:
    lines = ["usage: nas-search COMMAND [--flag=value ...]", "", "commands:"]
    for name, cmd in COMMANDS.items():
        flags_used = " ".join(f"--{f}" for f in _load(name).FLAGS_USED)
        lines.append(f"  {name:<11} {cmd.help}")
        lines.append(f"  {'':<11} {flags_used}")
    return "\n".join(lines)


def _command_help(usage: str, name: str, module) -> str:
    lines = [f"usage: {usage} [--flag=value ...]", "", COMMANDS[name].help, "", "flags:"]
    lines.append(describe_flags(FLAGS, module.FLAGS_USED))
    if "experiment" in module.FLAGS_USED:
        from experiments.registry import experiment_names

        lines += ["", "experiments: " + ", ".join(experiment_names())]
    return "\n".join(lines)


def main(argv: list[str], prog: str | None = None) -> int:
    """Runs one command; returns the exit status.

    Args:
      argv: ``[program, COMMAND, --flag=value, ...]``.
      prog: the name in messages instead of ``nas-search COMMAND`` (``nas-train``).
    """
    if len(argv) > 1 and argv[1] in TENSORFLOW_COMMANDS:
        from nas.quiet_tf import import_tensorflow_quietly

        import_tensorflow_quietly()
    args = argv[1:]
    if not args or args[0] in ("-h", "--help", "help", "--helpshort", "--helpfull"):
        print(_usage())
        return 0 if args else 2
    name = args[0]
    if name not in COMMANDS:
        print(f"nas-search: error: unknown command {name!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    label = prog or f"nas-search {name}"
    module = _load(name)
    if any(a in HELP_FLAGS for a in args[1:]):
        print(_command_help(prog or f"nas-search {name}", name, module))
        return 0
    FLAGS.unparse_flags()  # main() may run more than once in a process (tests)
    try:
        rest = FLAGS([argv[0]] + args[1:])
    except flags.Error as e:
        print(f"{label}: error: {e}", file=sys.stderr)
        return 2

    def command() -> int | None:
        if len(rest) > 1:
            raise UsageError(f"unexpected argument {rest[1]!r}")
        for flag_name in FLAGS:
            if FLAGS[flag_name].present and flag_name not in module.FLAGS_USED:
                allowed = " ".join(f"--{f}" for f in module.FLAGS_USED)
                raise UsageError(f"--{flag_name} does not apply to '{name}'; it takes {allowed}")
        return getattr(module, f"cmd_{name.replace('-', '_')}")()

    return run_reporting_errors(label, command)


def run(main_fn=main) -> None:
    """Console-script entry point (of ``nas-train`` too, with its ``main``)."""
    # TensorFlow's C++ start-up chatter is not for users; errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_TF_LOG_LEVEL)
    try:
        status = main_fn(sys.argv)
    except BrokenPipeError:  # output piped into e.g. head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 0
    sys.exit(status)


if __name__ == "__main__":
    run()
