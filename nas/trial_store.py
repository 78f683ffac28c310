"""The append-only trial log: the search's source of truth.

One JSON record per line, each flushed and fsynced before the search acts on
it. A torn last line (the process was killed while writing) is ignored on
reading and cut off before the next append; a malformed line anywhere else
is corruption and stops the search with a clear error.

Record kinds (field ``event``):

- ``proposed``: a new trial (trial_id, proposal, architecture, fingerprint, seed)
- ``started``: an attempt was dispatched (trial_id, attempt)
- ``completed``: the trial's result (trial_id, metrics, reward, timings, worker;
  ``reused_from`` when an identical architecture's result was reused)
- ``rung``: a multi-fidelity search (``nas.fidelity``) promoted the trial
  from a rung: (trial_id, rung, epochs, metrics, metric, reward, decision
  ``"promoted"``, timings, worker); the trial runs again to the next rung.
  Its last rung is in its ``completed`` record, under ``fidelity`` (rung,
  epochs, metric, raw_reward, decision ``"stopped"`` or ``"final"``,
  reward_source ``final``/``calibrated``/``raw``/``skip``, calibrated,
  calibration_pairs); ``reward`` is null with ``skip``. Logs without these
  records are full-fidelity searches.
- ``attempt_failed``: an attempt failed and will be retried (trial_id, attempt, error)
- ``failed``: the trial failed for good (trial_id, error)
- ``run``: a process started (or continued) the search (max_trials, pid,
  ray_address); no trial id

Every record carries ``seq`` (its position in the log) and ``time``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from typing import Any

from search_space.errors import UserError

PENDING, RUNNING, COMPLETED, FAILED = "pending", "running", "completed", "failed"
TERMINAL_EVENTS = ("completed", "failed")


class TrialLogError(UserError, RuntimeError):
    """The trial log is corrupt (not merely torn at its end)."""


@dataclasses.dataclass
class Trial:
    """What the log says about one trial."""

    trial_id: int
    proposal: dict[str, Any]
    architecture: dict[str, Any]
    fingerprint: str
    seed: int
    status: str = PENDING
    attempts: int = 0
    metrics: dict[str, Any] | None = None
    reward: float | None = None
    error: str | None = None
    reused_from: int | None = None
    worker: str | None = None
    proposed_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    # Multi-fidelity: one entry per rung evaluated (seq, rung, epochs, metric, reward, decision).
    rungs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    fidelity: dict[str, Any] | None = None

    @property
    def rung(self) -> int:
        """The rung the trial runs to next (multi-fidelity): the number of its promotions."""
        return sum(1 for e in self.rungs if e["decision"] == "promoted")

    @property
    def full_fidelity(self) -> bool:
        """Whether its result is of the whole schedule (always, outside a multi-fidelity search)."""
        return self.fidelity is None or self.fidelity.get("decision") != "stopped"


def read_records(path: str) -> tuple[list[dict[str, Any]], int]:
    """Reads a log.

    Returns:
      (records, number of bytes of intact lines): bytes after that are a torn
      last line.

    Raises:
      TrialLogError: a malformed line that is not the last one.
    """
    if not os.path.exists(path):
        return [], 0
    with open(path, "rb") as f:
        data = f.read()
    records: list[dict[str, Any]] = []
    good = 0
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if not line:
            if not last:
                good += 1
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "event" not in record:
                raise ValueError("not a log record")
        except ValueError as e:
            # Only the final line may be torn (no newline after it, or garbage).
            if last or all(not rest for rest in lines[i + 1 :]):
                break
            raise TrialLogError(f"{path}: line {i + 1} is corrupt ({e}); the trial log cannot be trusted") from None
        if last:  # complete JSON without its newline: still a torn write
            break
        records.append(record)
        good += len(line) + 1
    return records, good


class TrialStore:
    """The trial log of one workdir, replayed into ``Trial`` objects."""

    def __init__(self, path: str, readonly: bool = False):
        """Opens (and replays) a log.

        Args:
          path: the log file.
          readonly: only read; never truncate a torn tail or append. Readers
            such as ``status`` use this while another process may be writing.
        """
        self.path = path
        self.readonly = readonly
        records, self._intact_bytes = read_records(path)
        self.records: list[dict[str, Any]] = []
        self.trials: dict[int, Trial] = {}
        self.runs: list[dict[str, Any]] = []
        for record in records:
            self._apply(record)
        # Opened on the first append, not here: a search that fails to restore
        # its controller must leave the log (torn tail included) as it found it.
        self._file = None

    def close(self) -> None:
        """Closes the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open_for_append(self) -> None:
        if os.path.exists(self.path) and os.path.getsize(self.path) != self._intact_bytes:
            with open(self.path, "r+b") as f:  # drop the torn tail before appending
                f.truncate(self._intact_bytes)
                f.flush()
                os.fsync(f.fileno())
        self._file = open(self.path, "a", buffering=1)

    def __enter__(self) -> TrialStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----- writing ---------------------------------------------------------------

    def append(self, event: str, durable: bool = True, **fields: Any) -> dict[str, Any]:
        """Appends one record and applies it.

        Args:
          event: the record kind.
          durable: fsync before returning. Only records whose loss changes
            nothing on resume (``started``: the trial is in flight either way)
            skip it; the next durable record syncs them too.
          **fields: the record's fields.
        """
        if self.readonly:
            raise TrialLogError(f"{self.path}: opened read-only")
        if self._file is None:
            self._open_for_append()
        record = {"event": event, "seq": len(self.records), "time": time.time(), **fields}
        line = json.dumps(record, separators=(",", ":"), allow_nan=False)
        size = self._file.tell()
        try:
            self._file.write(line + "\n")
            self._file.flush()
            if durable:
                os.fsync(self._file.fileno())
        except OSError as e:
            self._undo_partial_write(size)
            raise TrialLogError(
                f"{self.path}: cannot append to the trial log ({e.strerror or e}); the search stopped with "
                "everything recorded so far intact: free space (or fix the file system) and run the same command again"
            ) from None
        self._apply(record)
        return record

    def _undo_partial_write(self, size: int) -> None:
        """Cuts a record that was written in part (a full disk), so the log ends on a whole line.

        If even that fails, the next start cuts the torn line (``read_records``).
        """
        try:
            self._file.close()
        except OSError:
            pass
        self._file = None
        try:
            with open(self.path, "r+b") as f:
                f.truncate(size)
        except OSError:
            pass
        self._intact_bytes = size

    # ----- reading ---------------------------------------------------------------

    def _apply(self, r: dict[str, Any]) -> None:
        self.records.append(r)
        event = r["event"]
        if event == "proposed":
            self.trials[r["trial_id"]] = Trial(
                trial_id=r["trial_id"],
                proposal=r["proposal"],
                architecture=r["architecture"],
                fingerprint=r["fingerprint"],
                seed=r["seed"],
                proposed_at=r["time"],
            )
            return
        if event == "run":
            self.runs.append(r)
            return
        trial = self.trials.get(r.get("trial_id"))
        if trial is None:
            raise TrialLogError(f"{self.path}: record {r.get('seq')} names unknown trial {r.get('trial_id')}")
        if event == "started":
            trial.status = RUNNING
            trial.attempts = r["attempt"]
            trial.started_at = r["time"]
        elif event == "rung":
            trial.status = PENDING
            trial.rungs.append(_rung_entry(r, r))
        elif event == "attempt_failed":
            trial.status = PENDING
            trial.error = r.get("error")
        elif event == "completed":
            trial.status = COMPLETED
            trial.metrics = r.get("metrics")
            trial.reward = r.get("reward")
            trial.reused_from = r.get("reused_from")
            trial.worker = r.get("worker")
            trial.timings = r.get("timings") or {}
            trial.finished_at = r["time"]
            trial.error = None
            trial.fidelity = r.get("fidelity")
            if trial.fidelity and "rung" in trial.fidelity:
                trial.rungs.append(_rung_entry(r, trial.fidelity))
        elif event == "failed":
            trial.status = FAILED
            trial.error = r.get("error")
            trial.finished_at = r["time"]

    def next_trial_id(self) -> int:
        """The id the next proposed trial gets."""
        return max(self.trials, default=-1) + 1

    def in_flight(self) -> list[Trial]:
        """Trials proposed but not finished, oldest first."""
        return [t for t in self.trials.values() if t.status in (PENDING, RUNNING)]

    def completed(self) -> list[Trial]:
        """Completed trials, in id order."""
        return [t for t in self.trials.values() if t.status == COMPLETED]

    def by_fingerprint(self, fingerprint: str) -> Trial | None:
        """The first completed, trained (not reused) trial of an architecture."""
        for t in self.trials.values():
            if t.fingerprint == fingerprint and t.status == COMPLETED and t.reused_from is None:
                return t
        return None

    def best(self, k: int = 1) -> list[Trial]:
        """The k completed trials with the highest reward (ties: earlier first).

        In a multi-fidelity search the trials trained to the end come first:
        a stopped trial's reward is an estimate, never the best found.
        """
        done = [t for t in self.completed() if t.reward is not None]
        return sorted(done, key=lambda t: (not t.full_fidelity, -t.reward, t.trial_id))[:k]

    def rung_history(self) -> list[Trial]:
        """Trials with rung results (multi-fidelity), in id order."""
        return [t for t in self.trials.values() if t.rungs]

    def iter_since(self, seq: int) -> Iterator[dict[str, Any]]:
        """Records with ``seq >= seq``."""
        return iter(self.records[seq:])


def _rung_entry(record: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """A trial's result at one rung, from a ``rung`` record or a ``completed`` record's ``fidelity``."""
    reward = fields.get("raw_reward", fields.get("reward"))
    return {
        "seq": record["seq"],
        "rung": fields["rung"],
        "epochs": fields.get("epochs"),
        "metric": fields.get("metric"),
        "reward": reward,
        "decision": fields.get("decision", "promoted"),
    }
