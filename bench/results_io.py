"""The common header of every stored benchmark result (``bench/results/NAME.json``), and writing it.

A benchmark calls :func:`start` before it measures anything and :func:`write` at the end::

    run = results_io.start()
    ...                                           # measure
    results_io.write("name", run, {"seeds": [0, 1], "figures": ...})

The file then holds, besides the benchmark's own figures, what a reader needs to trust or redo them:
the exact command line, the git commit (and whether the tree had uncommitted changes), the machine's
cores, the load average at the start and at the end, the Python and TensorFlow versions, the date and
the wall time. ``bench/readme_results.py`` renders the README's figures from these files.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")


@dataclasses.dataclass(frozen=True)
class Run:
    """What is known when a benchmark starts: its command line, the time, the load and the code it runs
    (the commit and the uncommitted changes then: a commit made while a long benchmark runs is not its code)."""

    command: tuple[str, ...]
    started: float
    load_average_start: tuple[float, float, float]
    commit: str = ""
    uncommitted_changes: tuple[str, ...] = ()


def start(argv: list[str] | None = None) -> Run:
    """Call before measuring: notes the command line (``sys.argv`` by default), the time and the load."""
    argv = sys.argv if argv is None else argv
    return Run(
        command=("python", *_relative(argv)),
        started=time.time(),
        load_average_start=os.getloadavg(),
        commit=_git("rev-parse", "HEAD"),
        uncommitted_changes=tuple(_git("status", "--porcelain", "--untracked-files=no").splitlines()),
    )


def _relative(argv: list[str]) -> list[str]:
    """The script path relative to the repository, so the stored command is the one to type in it."""
    out = list(argv)
    if out and os.path.isabs(out[0]) and out[0].startswith(ROOT + os.sep):
        out[0] = os.path.relpath(out[0], ROOT)
    return out


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str | None:
    """The processor's model name (Linux), which with the TensorFlow version decides which kernels run."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def header(run: Run) -> dict[str, Any]:
    """The common fields: the code as of the start, the load at both ends, the rest as of now (the end)."""
    return {
        "command": list(run.command),
        "commit": run.commit,
        "uncommitted_changes": list(run.uncommitted_changes),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "load_average_start": [round(x, 2) for x in run.load_average_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow"),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017 (3.10)
        "wall_s": round(time.time() - run.started, 1),
    }


def path(name: str) -> str:
    """Where the result called ``name`` is stored."""
    return os.path.join(RESULTS, f"{name}.json")


def write(name_or_path: str, run: Run, figures: dict[str, Any]) -> str:
    """Writes the header plus ``figures`` (which must name the seeds it rests on, where any) atomically.

    ``name_or_path``: a result name (stored as ``bench/results/NAME.json``) or a path ending in ``.json``.
    Returns the path written.
    """
    out = name_or_path if name_or_path.endswith(".json") else path(name_or_path)
    result = {**header(run), **figures}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = f"{out}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1, default=str)  # tuples, paths and the like as text
        f.write("\n")
    os.replace(tmp, out)
    return out


def load(name: str) -> dict[str, Any]:
    """The stored result called ``name``."""
    with open(path(name)) as f:
        return json.load(f)
