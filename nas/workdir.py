"""A search's working directory: layout, lock, frozen config and controller snapshots.

Layout::

    WORKDIR/
      config.json            the frozen experiment config (written once)
      search.json            search id, creation time, schema version
      trials.jsonl           the append-only trial log (nas.trial_store)
      snapshots/ctrl-NNNNNNNN.json   controller snapshots (atomic; last few kept)
      trials/NNNNNN/         one directory per trial (the evaluator's workdir)
      tensorboard/           events: reward, baseline, entropy, best so far
      export/, plots/        what `export` and `plot` write
      .lock                  held by the process driving the search
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from typing import Any

from search_space.serialization import write_file_atomically

SCHEMA_VERSION = 1
_KEEP_SNAPSHOTS = 3


class WorkdirError(RuntimeError):
    """The workdir cannot be used as asked (locked, another search, corrupt)."""


def atomic_write_json(path: str, data: Any) -> None:
    """Writes ``data`` as JSON atomically (``search_space.write_file_atomically``); an OSError names ``path``."""
    write_file_atomically(path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def read_json(path: str, what: str) -> Any:
    """Reads a JSON file the search wrote.

    Raises:
      WorkdirError: unreadable or malformed, naming the file.
    """
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise WorkdirError(f"{path}: cannot read {what}: {e.strerror or e}") from None
    except ValueError as e:
        raise WorkdirError(f"{path}: {what} is corrupt: {e}") from None


class Workdir:
    """Paths and state files of one search."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self._lock_fd: int | None = None

    # ----- paths -----------------------------------------------------------------

    def join(self, *parts: str) -> str:
        """A path inside the workdir."""
        return os.path.join(self.path, *parts)

    @property
    def config_path(self) -> str:
        return self.join("config.json")

    @property
    def meta_path(self) -> str:
        return self.join("search.json")

    @property
    def log_path(self) -> str:
        return self.join("trials.jsonl")

    @property
    def snapshot_dir(self) -> str:
        return self.join("snapshots")

    def trial_dir(self, trial_id: int) -> str:
        """The directory of one trial (created)."""
        path = self.join("trials", f"{trial_id:06d}")
        os.makedirs(path, exist_ok=True)
        return path

    def exists(self) -> bool:
        """Whether a search was started here."""
        return os.path.exists(self.config_path)

    # ----- lock ------------------------------------------------------------------

    def lock(self) -> None:
        """Takes the workdir's lock for this process.

        Raises:
          WorkdirError: another process holds it.
        """
        os.makedirs(self.path, exist_ok=True)
        fd = os.open(self.join(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise WorkdirError(f"{self.path} is in use by {holder}; one process drives a search at a time") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        """Releases the lock."""
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # ----- frozen config and identity --------------------------------------------

    def create(self, config_dict: dict[str, Any]) -> str:
        """Initialises a new search; returns its id."""
        os.makedirs(self.snapshot_dir, exist_ok=True)
        search_id = uuid.uuid4().hex[:12]
        atomic_write_json(
            self.meta_path, {"schema_version": SCHEMA_VERSION, "search_id": search_id, "created": time.time()}
        )
        atomic_write_json(self.config_path, config_dict)  # last: its presence marks a search
        return search_id

    def load_config(self) -> dict[str, Any]:
        """The frozen config."""
        return read_json(self.config_path, "the frozen config")

    def search_id(self) -> str:
        """The id of the search in this workdir."""
        meta = read_json(self.meta_path, "search metadata")
        if not isinstance(meta, dict) or meta.get("schema_version") != SCHEMA_VERSION:
            raise WorkdirError(f"{self.meta_path}: not a search of this version (schema_version {SCHEMA_VERSION})")
        return meta["search_id"]

    # ----- controller snapshots --------------------------------------------------

    def write_snapshot(self, log_seq: int, state: dict[str, Any], stats: dict[str, float] | None = None) -> str:
        """Writes a controller snapshot reflecting log records ``< log_seq``; keeps the last few."""
        os.makedirs(self.snapshot_dir, exist_ok=True)
        path = os.path.join(self.snapshot_dir, f"ctrl-{log_seq:08d}.json")
        payload = {"schema_version": SCHEMA_VERSION, "log_seq": log_seq, "time": time.time(), "stats": stats or {}}
        payload["controller"] = state
        atomic_write_json(path, payload)
        for old in self._snapshot_files()[:-_KEEP_SNAPSHOTS]:
            os.remove(old)
        return path

    def _snapshot_files(self) -> list[str]:
        if not os.path.isdir(self.snapshot_dir):
            return []
        names = sorted(n for n in os.listdir(self.snapshot_dir) if n.startswith("ctrl-") and n.endswith(".json"))
        return [os.path.join(self.snapshot_dir, n) for n in names]

    def latest_snapshot(self) -> tuple[dict[str, Any] | None, list[str]]:
        """The newest readable snapshot, and warnings about corrupt newer ones.

        A corrupt snapshot is never deleted: it is reported and the previous
        good one is used (the trial log replays what came after).
        """
        warnings = []
        for path in reversed(self._snapshot_files()):
            try:
                data = read_json(path, "controller snapshot")
                if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
                    raise WorkdirError(f"{path}: controller snapshot has an unknown schema")
                if not isinstance(data.get("log_seq"), int) or not isinstance(data.get("controller"), dict):
                    raise WorkdirError(f"{path}: controller snapshot is incomplete")
                return data, warnings
            except WorkdirError as e:
                # Kept for inspection under another name, out of the rotation.
                os.replace(path, path + ".corrupt")
                warnings.append(f"{e}; moved aside to {os.path.basename(path)}.corrupt, using an older snapshot")
        return None, warnings
