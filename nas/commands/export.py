"""``nas-search export``: the best architectures, ready for nas-train or the reference implementation."""

from __future__ import annotations

import json
import os

from absl import flags

from nas.cli_flags import FLAGS, UsageError
from nas.commands.search import require_workdir
from nas.export_formats import FORMATS

flags.DEFINE_enum(
    "format",
    "json",
    list(FORMATS),
    "json: the project's schema; block_specs: reference tuples.",
    flag_values=FLAGS,
)

FLAGS_USED = ("workdir", "top", "output", "format", "json")


def export_best(workdir_path: str, top: int, output: str | None, fmt: str) -> list[str]:
    """Writes the ``top`` best architectures; returns the paths written.

    Raises:
      WorkdirError: no search, or no completed trial yet.
      UsageError: --output is an existing file while several are exported.
    """
    from nas.export_formats import export_filename, export_text
    from nas.trial_store import TrialStore
    from nas.workdir import Workdir, WorkdirError
    from search_space import architecture_from_dict, write_file_atomically

    workdir = Workdir(workdir_path)
    workdir.config()
    with TrialStore(workdir.log_path, readonly=True) as store:
        best = store.best(top)
    if not best:
        raise WorkdirError(f"{workdir.path}: no completed trial to export yet")
    search_id = workdir.search_id()
    single_file = output is not None and top == 1 and not os.path.isdir(output)
    if output is not None and not single_file and os.path.isfile(output):
        raise UsageError(f"--output={output} is a file; exporting {top} architectures needs a directory")
    directory = os.path.dirname(os.path.abspath(output)) if single_file else (output or workdir.join("export"))
    os.makedirs(directory, exist_ok=True)
    paths = []
    for rank, trial in enumerate(best, start=1):
        arch, _ = architecture_from_dict(trial.architecture)
        path = output if single_file else os.path.join(directory, export_filename(rank, trial.trial_id, fmt))
        text = export_text(arch, fmt, trial_id=trial.trial_id, reward=trial.reward, search_id=search_id)
        write_file_atomically(path, text)
        paths.append(os.path.abspath(path))
    return paths


def cmd_export() -> int:
    """Exports the best architectures."""
    paths = export_best(require_workdir(), FLAGS.top or 1, FLAGS.output, FLAGS.format)
    if FLAGS.json:
        print(json.dumps({"files": paths}, indent=2))
    else:
        for p in paths:
            print(p)
    return 0
