"""``nas-search report``: the search as one self-contained HTML file.

Read-only: it takes no lock and writes nothing but the report (by default
``WORKDIR/report.html``, atomically), so it is safe while a search runs.
"""

from __future__ import annotations

import json

from nas.cli_flags import FLAGS
from nas.commands.search import require_workdir

FLAGS_USED = ("workdir", "output", "top", "json")


def cmd_report() -> int:
    """Writes the report and prints its path."""
    from nas.report import write_report

    path = write_report(require_workdir(), FLAGS.output, top=FLAGS.top or 5)
    print(json.dumps({"file": path}) if FLAGS.json else path)
    return 0
