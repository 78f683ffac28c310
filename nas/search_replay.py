"""Restoring a search's controller from its workdir: the newest good snapshot, then the trial log after it.

On a restart the search loop (``nas.search_loop.SearchLoop.restore``) brings
the controller to exactly where it was: the latest readable snapshot is
restored and the log records after it are replayed (proposals re-drawn and
checked against the log, results fed back the way the running loop feeds
them, ``feed_back``). Nothing is written here: snapshots to set aside are
returned, and the loop sets them aside once the search runs. A controller
that cannot be brought to the log's state is a ``ReplayError`` whose message
says what the user does next.
"""

from __future__ import annotations

import os
from typing import Any

from controller.base import Controller, ControllerStateError, FeedbackError, Proposal
from nas.fidelity import skip_message
from nas.trial_store import TrialStore
from nas.workdir import Workdir, WorkdirError
from search_space import DecisionEncoding


class ReplayError(WorkdirError):
    """The controller cannot be brought to the state the trial log describes.

    Raised before the search writes anything: the workdir is left as it was,
    and every later attempt fails the same way until the user acts.
    """


def rebuild_hint(workdir: Workdir) -> str:
    """What the user runs to rebuild the controller from the whole trial log."""
    return (
        f"run `nas-search resume --workdir={workdir.path} --rebuild_controller` to rebuild the controller "
        "from the whole trial log (the snapshots are then set aside, not deleted)"
    )


def feed_back(
    controller: Controller,
    proposal: Proposal,
    reward: float | None = None,
    failure: str | None = None,
    fidelity: dict[str, Any] | None = None,
) -> None:
    """Tells the controller a trial's result: its reward, or its failure.

    A trial with neither was stopped at a rung under ``reward.low_fidelity=skip``:
    the controller is told it failed (``nas.fidelity.skip_message``).
    """
    if failure is None and reward is None:  # a trial stopped at a rung, reward.low_fidelity=skip
        failure = skip_message(fidelity or {})
    if failure is not None:
        controller.feedback(proposal, failure=failure)
    else:
        controller.feedback(proposal, reward)


def restore_controller(
    *,
    workdir: Workdir,
    store: TrialStore,
    controller: Controller,
    encoding: DecisionEncoding,
    proposals: dict[int, Proposal],
    rebuild: bool = False,
) -> tuple[list[tuple[str, str]], list[str]]:
    """Brings ``controller`` to the state the trial log describes; writes nothing.

    The newest readable snapshot is restored and the log records after it
    are replayed (proposals re-drawn and checked against the log, results
    fed back). Unreadable newer snapshots are skipped (set aside once the
    search runs). With ``rebuild`` every snapshot is ignored and the whole
    log is replayed into a fresh controller: on an intact log that gives
    exactly the controller the snapshots hold.

    Args:
      proposals: filled with the proposal of every trial in the log, by trial id.

    Returns:
      (snapshots to set aside once the search runs, as (path, suffix);
      warnings for the user: snapshots skipped, hyperparameters filled in).

    Raises:
      ReplayError: a snapshot is refused, or the re-drawn proposals differ
        from the log; the message says what to do.
    """
    snapshot, snapshot_path, problems = workdir.latest_snapshot()
    warnings = []
    start = 0
    if rebuild:
        set_aside = [(p, ".replaced") for p in workdir.snapshot_paths()]
        if set_aside:
            warnings.append(
                f"controller rebuilt from the whole trial log; {len(set_aside)} snapshot(s) set aside "
                "as snapshots/*.replaced"
            )
    else:
        set_aside = [(p, ".corrupt") for p, _ in problems]
        warnings += [
            f"{msg}; using an older snapshot (set aside as {os.path.basename(p)}.corrupt)" for p, msg in problems
        ]
        if snapshot is not None and snapshot["log_seq"] <= len(store.records):
            try:
                warnings += controller.set_state(snapshot["controller"]) or []
            except ControllerStateError as e:
                raise ReplayError(
                    f"{snapshot_path}: the controller snapshot is refused ({e}); nothing was changed; "
                    + rebuild_hint(workdir)
                ) from None
            start = snapshot["log_seq"]
    for record in store.records[:start]:
        if record["event"] == "proposed":
            proposals[record["trial_id"]] = Proposal.from_dict(record["proposal"], encoding)
    replay = _Replay(workdir, store, controller, proposals, rebuilding=rebuild or start == 0)
    for record in store.iter_since(start):
        replay.record(record)
    return set_aside, warnings


class _Replay:
    """Feeds the log records after a snapshot into the controller, checking its proposals against the log."""

    def __init__(
        self,
        workdir: Workdir,
        store: TrialStore,
        controller: Controller,
        proposals: dict[int, Proposal],
        rebuilding: bool,
    ):
        self.workdir, self.store, self.controller = workdir, store, controller
        self.proposals, self.rebuilding = proposals, rebuilding

    def record(self, record: dict[str, Any]) -> None:
        event, tid = record["event"], record.get("trial_id")
        try:
            if event == "proposed":
                proposal = self.controller.propose()
                if list(proposal.decisions) != list(record["proposal"]["decisions"]):
                    raise self._disagreement(
                        f"replaying trial {tid}, the controller proposed a different architecture than the log records"
                    )
                self.proposals[tid] = proposal
            elif event == "completed":
                feed_back(
                    self.controller, self.proposals[tid], reward=record.get("reward"), fidelity=record.get("fidelity")
                )
            elif event == "failed":
                feed_back(self.controller, self.proposals[tid], failure=record.get("error") or "failed")
        except (FeedbackError, KeyError) as e:
            what = f"replaying record {record.get('seq')} ({event} of trial {tid}), the controller refused it ({e})"
            raise self._disagreement(what) from None

    def _disagreement(self, what: str) -> ReplayError:
        if self.rebuilding:
            return ReplayError(
                f"{self.store.path}: {what}, replaying from the start of the log: the log was edited, or the "
                "controller's code or config changed since the search began; nothing was changed. Restore "
                "trials.jsonl from a backup, or export what it holds (nas-search export) and start a new search "
                "in another --workdir"
            )
        return ReplayError(
            f"{self.store.path}: {what} after the newest controller snapshot; the snapshot and the log disagree; "
            "nothing was changed; " + rebuild_hint(self.workdir)
        )
