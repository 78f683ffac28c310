"""Progress of a running search: a live line on a terminal, log lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from nas.trial_store import COMPLETED, FAILED, TrialStore


def eta_seconds(store: TrialStore, max_trials: int, started: float) -> float | None:
    """Seconds left, from the pace of the trials finished since ``started`` (this run's start).

    The one ETA of the live display and of ``status``; None until a trial of this run has finished.
    """
    finished = [
        t
        for t in store.trials.values()
        if t.status in (COMPLETED, FAILED) and t.finished_at and t.finished_at >= started
    ]
    if not finished:
        return None
    pace = (time.time() - started) / len(finished)
    done = sum(1 for t in store.trials.values() if t.status in (COMPLETED, FAILED))
    return max(0.0, (max_trials - done) * pace)


def format_duration(seconds: float | None) -> str:
    """``3725`` -> ``"1h02m"``."""
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Reporter:
    """Shows trials done/total, running, failed, best reward and ETA."""

    def __init__(self, stream: TextIO | None = None, metric: str = "AP", interval: float = 0.5):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.metric = metric
        self.interval = interval
        self.started = time.time()
        self._last_draw = 0.0
        self._reported: set[int] = set()

    def _line(self, store: TrialStore, max_trials: int, running: int) -> str:
        done = sum(1 for t in store.trials.values() if t.status == COMPLETED)
        failed = sum(1 for t in store.trials.values() if t.status == FAILED)
        best = store.best(1)
        best_text = f"{best[0].reward:.4f} (trial {best[0].trial_id})" if best else "-"
        eta = format_duration(eta_seconds(store, max_trials, self.started))
        return (
            f"trials {done + failed}/{max_trials}  running {running}  failed {failed}  "
            f"best reward {best_text}  elapsed {format_duration(time.time() - self.started)}  eta {eta}"
        )

    def _newly_finished(self, store: TrialStore) -> list[str]:
        """One line per trial finished since the last call: its reward or its error."""
        lines = []
        for t in store.trials.values():
            if t.status in (COMPLETED, FAILED) and t.trial_id not in self._reported:
                self._reported.add(t.trial_id)
                if t.status == COMPLETED:
                    extra = f" (reused trial {t.reused_from})" if t.reused_from is not None else ""
                    lines.append(f"trial {t.trial_id}: reward {t.reward:.4f}{extra}")
                else:
                    lines.append(f"trial {t.trial_id}: FAILED: {t.error}")
        return lines

    def update(self, store: TrialStore, max_trials: int, running: int) -> None:
        """Logs newly finished trials; on a terminal, below them, redraws the live status line."""
        finished = self._newly_finished(store)
        if self.tty:
            now = time.time()
            if finished or now - self._last_draw >= self.interval:
                above = "".join(f"{line}\n" for line in finished)
                self.stream.write("\r\033[K" + above + self._line(store, max_trials, running))
                self.stream.flush()
                self._last_draw = now
            return
        for line in finished:
            self.stream.write(f"{line} | {self._line(store, max_trials, running)}\n")
        self.stream.flush()

    def finish(self, store: TrialStore, max_trials: int, stopped: bool, failed: bool = False) -> None:
        """Final line (after an error: only the trials that finished, and the live line cleared)."""
        if self.tty:
            self.stream.write("\r\033[K" + "".join(f"{line}\n" for line in self._newly_finished(store)))
        else:
            self.update(store, max_trials, 0)
        if failed:
            self.stream.flush()
            return
        state = "stopped; resume to continue" if stopped else "finished"
        self.stream.write(f"search {state}: {self._line(store, max_trials, 0)}\n")
        self.stream.flush()
