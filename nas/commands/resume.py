"""``nas-search resume``: continue the search in --workdir with its frozen config."""

from __future__ import annotations

from nas.cli_flags import FLAGS
from nas.commands.search import print_summary, require_workdir

FLAGS_USED = ("workdir", "ray_address", "max_trials", "rebuild_controller", "quiet", "json")


def cmd_resume() -> int:
    """Continues a search."""
    from nas.search_runner import start_or_resume

    summary = start_or_resume(
        None,
        require_workdir(),
        runtime_overrides={"search.max_trials": FLAGS.max_trials} if FLAGS.max_trials else None,
        ray_address=FLAGS.ray_address,
        quiet=FLAGS.quiet,
        rebuild_controller=FLAGS.rebuild_controller,
    )
    print_summary(summary)
    return 130 if summary["stopped"] else 0
