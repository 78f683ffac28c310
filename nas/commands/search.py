"""``nas-search search``: start a search, or continue the one in --workdir."""

from __future__ import annotations

import json

from nas.cli_flags import FLAGS, UsageError, load_experiment_config

FLAGS_USED = (
    "experiment",
    "workdir",
    "config_file",
    "params_override",
    "ray_address",
    "max_trials",
    "evaluator",
    "rebuild_controller",
    "quiet",
    "json",
)


def require_workdir() -> str:
    """--workdir, or a usage error."""
    if not FLAGS.workdir:
        raise UsageError("--workdir is required")
    return FLAGS.workdir


def print_summary(summary: dict) -> None:
    """The end-of-run summary, as JSON or one line."""
    if FLAGS.json:
        print(json.dumps(summary, indent=2))
        return
    best = summary["best_reward"]
    best_text = f"best reward {best:.4f} (trial {summary['best_trial']})" if best is not None else "no completed trial"
    print(
        f"{summary['workdir']}: {summary['completed']} completed, {summary['failed']} failed, "
        f"{summary['reused']} reused; {best_text}"
    )


def cmd_search() -> int:
    """Starts or continues a search."""
    from nas.search_runner import start_or_resume

    workdir = require_workdir()
    flags_given = {"search.evaluator": FLAGS.evaluator, "search.max_trials": FLAGS.max_trials}
    config = load_experiment_config(extra_overrides={k: v for k, v in flags_given.items() if v is not None} or None)
    summary = start_or_resume(
        config,
        workdir,
        ray_address=FLAGS.ray_address,
        quiet=FLAGS.quiet,
        rebuild_controller=FLAGS.rebuild_controller,
    )
    print_summary(summary)
    return 130 if summary["stopped"] else 0
