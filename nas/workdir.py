"""A search's working directory: layout, lock, frozen config and controller snapshots.

Layout::

    WORKDIR/
      config.json            the frozen experiment config (only its runtime keys may change, on resume)
      search.json            search id, creation time, schema version, checksum of the fixed part of the config
      trials.jsonl           the append-only trial log (nas.trial_store)
      snapshots/ctrl-NNNNNNNN.json   controller snapshots (atomic; last few kept)
      trials/NNNNNN/         one directory per trial (the evaluator's workdir)
      tensorboard/           events: reward, baseline, entropy, best so far
      export/, plots/        what `export` and `plot` write
      .lock                  held by the process driving the search
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import time
import uuid
from typing import Any

from experiments.search_config import RUNTIME_KEYS
from search_space.errors import UserError
from search_space.serialization import write_file_atomically

SCHEMA_VERSION = 1
_KEEP_SNAPSHOTS = 3
# The file that marks a proxy check's directory (nas.proxy_check): such a directory is not a search's.
PROXY_CHECK_FILE = "check.json"


class WorkdirError(UserError, RuntimeError):
    """The workdir cannot be used as asked (locked, another search, corrupt)."""


def config_checksum(config: Any) -> str:
    """SHA-256 of a config's canonical JSON: what it says, not how the file is laid out."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def fixed_part(config_dict: dict[str, Any]) -> dict[str, Any]:
    """A config's plain form without its runtime keys (``RUNTIME_KEYS``: they may change on resume)."""
    fixed = json.loads(json.dumps(config_dict))
    for key in RUNTIME_KEYS:
        *parents, leaf = key.split(".")
        section = fixed
        for part in parents:
            section = section.get(part, {}) if isinstance(section, dict) else {}
        if isinstance(section, dict):
            section.pop(leaf, None)
    return fixed


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

    def holds_proxy_check(self) -> bool:
        """Whether this directory holds a proxy check (``nas-search proxy-check``), which is not a search."""
        return os.path.exists(self.join(PROXY_CHECK_FILE))

    def refuse_proxy_check(self) -> None:
        """Raises WorkdirError if this directory holds a proxy check: a search and a check never share one."""
        if self.holds_proxy_check():
            raise WorkdirError(
                f"{self.path} holds a proxy check (nas-search proxy-check), not a search; use another --workdir"
            )

    # ----- lock ------------------------------------------------------------------

    def lock(self) -> None:
        """Takes the workdir's lock for this process.

        The lock is an ``flock`` on ``.lock``, whose text names the holder
        (``pid N host H``) while it is held and is emptied on release, so a
        reader can tell who drives the search without taking the lock.

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
        os.pwrite(fd, f"pid {os.getpid()} host {socket.gethostname()}".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        """Releases the lock (and empties the holder's name)."""
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def holder(self) -> str | None:
        """Who drives the search now (``"pid N host H"``), or None; takes no lock, writes nothing.

        On Linux the kernel's lock table (``/proc/locks``) shows a held
        ``flock`` on ``.lock``. Otherwise the name in ``.lock`` is used: a
        process killed with -9 leaves its name behind, so a holder on this host
        that no longer exists does not count; one on another host cannot be
        checked from here and is reported.
        """
        path = self.join(".lock")
        try:
            with open(path, "rb") as f:
                text = f.read(128).decode(errors="replace").strip()
            st = os.stat(path)
        except OSError:
            return None
        if _flock_held(st.st_dev, st.st_ino):
            return text or "another process"
        # Not listed (or no /proc/locks; some file systems are not listed):
        # the holder's name, unless it is a process of this host that is gone.
        if not text:
            return None
        parts = text.split()
        if len(parts) >= 4 and parts[0] == "pid" and parts[2] == "host" and parts[3] == socket.gethostname():
            try:
                os.kill(int(parts[1]), 0)
            except ProcessLookupError:
                return None
            except (PermissionError, ValueError):
                pass
        return text

    # ----- frozen config and identity --------------------------------------------

    def create(self, config_dict: dict[str, Any]) -> str:
        """Initialises a new search; returns its id."""
        os.makedirs(self.snapshot_dir, exist_ok=True)
        search_id = uuid.uuid4().hex[:12]
        meta = {
            "schema_version": SCHEMA_VERSION,
            "search_id": search_id,
            "created": time.time(),
            "fixed_config_sha256": config_checksum(fixed_part(config_dict)),
        }
        atomic_write_json(self.meta_path, meta)
        atomic_write_json(self.config_path, config_dict)  # last: its presence marks a search
        return search_id

    def load_config(self) -> dict[str, Any]:
        """The frozen config's plain form, checked against the checksum written when the search began.

        The checksum covers all but the runtime keys (``RUNTIME_KEYS``), which
        a resumed search may change (``update_runtime``).

        Raises:
          WorkdirError: no search here, unreadable, or edited since (searches
            of older versions carry no checksum and are not checked).
        """
        if not self.exists():
            self.refuse_proxy_check()
            raise WorkdirError(f"{self.path} holds no search (no config.json); start one with nas-search search")
        config = read_json(self.config_path, "the frozen config")
        meta = self._meta()
        if "fixed_config_sha256" in meta:
            ok = isinstance(config, dict) and config_checksum(fixed_part(config)) == meta["fixed_config_sha256"]
        elif "config_sha256" in meta:  # written before runtime keys could change: covers the whole config
            ok = config_checksum(config) == meta["config_sha256"]
        else:
            ok = True
        if not ok:
            raise WorkdirError(
                f"{self.config_path}: the frozen config was edited after the search began (its checksum differs "
                f"from the one in {os.path.basename(self.meta_path)}); a search's config cannot change: put "
                "config.json back as it was, or start a new search in another --workdir with the new settings"
            )
        return config

    def config(self):
        """The frozen ``ExperimentConfig``, rebuilt as every worker rebuilds it (``experiment_from_dict``).

        Raises:
          WorkdirError: no search here, or its config is unreadable, edited or
            no longer valid (naming the file).
        """
        from experiments.registry import experiment_from_dict

        data = self.load_config()
        try:
            config = experiment_from_dict(data)
        except UserError as e:
            raise WorkdirError(f"{self.config_path}: {e}") from None
        # A multi-fidelity search created before its rungs were frozen at creation left them to the default
        # of that time, 1/5, 2/5 and all of the schedule: it keeps them.
        epochs = float(config.trainer.epochs)
        return config.with_rungs((epochs / 5, 2 * epochs / 5, epochs))

    def update_runtime(self, config_dict: dict[str, Any]) -> None:
        """Records the runtime keys (``RUNTIME_KEYS``) of ``config_dict`` in the frozen config, atomically.

        Only those keys are copied; the rest of the file stays exactly as the
        search began (a config of an older version may lack keys added since,
        which ``config()`` fills with their defaults), so its checksum holds.
        """
        current = self.load_config()
        updated = json.loads(json.dumps(current))
        for key in RUNTIME_KEYS:
            *parents, leaf = key.split(".")
            source, target = config_dict, updated
            for part in parents:
                source, target = source.get(part, {}), target.setdefault(part, {})
            if leaf in source:
                target[leaf] = source[leaf]
        if updated == current:
            return
        meta = self._meta()
        if "fixed_config_sha256" not in meta:  # an older search: its checksum covers the runtime keys too
            meta = {k: v for k, v in meta.items() if k != "config_sha256"}
            atomic_write_json(self.meta_path, {**meta, "fixed_config_sha256": config_checksum(fixed_part(current))})
        atomic_write_json(self.config_path, updated)

    def _meta(self) -> dict[str, Any]:
        meta = read_json(self.meta_path, "search metadata") if os.path.exists(self.meta_path) else {}
        return meta if isinstance(meta, dict) else {}

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

    def latest_snapshot(self) -> tuple[dict[str, Any] | None, str | None, list[tuple[str, str]]]:
        """The newest readable snapshot; reads only.

        Returns:
          (snapshot or None, its path or None, [(path, problem)] for each
          newer snapshot that cannot be read). Unreadable snapshots are left in
          place: a search sets them aside with ``set_aside`` only once it has
          restored its controller, so a failed restore changes nothing.
        """
        problems: list[tuple[str, str]] = []
        for path in reversed(self._snapshot_files()):
            try:
                data = read_json(path, "controller snapshot")
                if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
                    raise WorkdirError(f"{path}: controller snapshot has an unknown schema")
                if not isinstance(data.get("log_seq"), int) or not isinstance(data.get("controller"), dict):
                    raise WorkdirError(f"{path}: controller snapshot is incomplete")
                return data, path, problems
            except WorkdirError as e:
                problems.append((path, str(e)))
        return None, None, problems

    def snapshot_paths(self) -> list[str]:
        """The snapshots in the rotation, oldest first."""
        return self._snapshot_files()

    def set_aside(self, path: str, suffix: str) -> str:
        """Moves a snapshot out of the rotation (kept for inspection as ``path + suffix``); returns the new name."""
        target = path + suffix
        n = 1
        while os.path.exists(target):
            n += 1
            target = f"{path}{suffix}.{n}"
        os.replace(path, target)
        return target


def _flock_held(dev: int, ino: int) -> bool:
    """Whether the kernel lists an ``flock`` on the file (dev, ino) in ``/proc/locks``.

    ``/proc/locks`` lines read ``1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF``
    (the major and minor numbers in hex).
    """
    try:
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    want = f"{os.major(dev):02x}:{os.minor(dev):02x}:{ino}"
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a waiter, not a holder
            continue
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == want:
            return True
    return False
