"""TensorBoard events of a search: reward, baseline, entropy, best so far, per-trial metrics."""

from __future__ import annotations

import os
import struct
import time
from typing import Any

from nas.trial_store import COMPLETED, Trial, TrialStore


class SearchEvents:
    """Writes scalar events to ``WORKDIR/tensorboard`` (step = trial id)."""

    def __init__(self, logdir: str):
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._event_pb2 = event_pb2
        self._summary_pb2 = summary_pb2
        self._writer = EventFileWriter(logdir)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Writes several scalars at one step."""
        summary_value = self._summary_pb2.Summary.Value
        items = [summary_value(tag=tag, simple_value=float(v)) for tag, v in values.items() if v is not None]
        if items:
            event = self._event_pb2.Event(
                wall_time=time.time(), step=step, summary=self._summary_pb2.Summary(value=items)
            )
            self._writer.add_event(event)

    def trial_finished(self, store: TrialStore, trial: Trial, controller_stats: dict[str, Any]) -> None:
        """Events for one finished trial."""
        values: dict[str, float] = {
            f"controller/{k}": v for k, v in controller_stats.items() if isinstance(v, (int, float))
        }
        if trial.status == COMPLETED and trial.reward is not None:
            values["search/reward"] = trial.reward
            best = store.best(1)
            if best:
                values["search/best_reward"] = best[0].reward
            for key, value in (trial.metrics or {}).items():
                if isinstance(value, (int, float)):
                    values[f"trial/{key}"] = value
        else:
            values["search/failed"] = 1.0
        self.scalars(trial.trial_id, values)
        self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the file."""
        self._writer.close()


def read_scalars(logdir: str) -> dict[str, dict[int, float]]:
    """The scalars ``SearchEvents`` wrote to ``logdir``: ``{tag: {step: value}}``; reads only.

    Event files are TFRecord files (a little-endian uint64 length, its
    4-byte CRC, the serialized ``Event``, the data's 4-byte CRC), read here
    without TensorFlow; files are read in name order (each run of a search
    starts a new one, named by its start time), so a later run's value for a
    step replaces an earlier one. A record cut short (a file being written,
    or a killed writer) ends that file; the CRCs are not checked.
    """
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import event_pb2

    out: dict[str, dict[int, float]] = {}
    if not os.path.isdir(logdir):
        return out
    for name in sorted(n for n in os.listdir(logdir) if n.startswith("events.out.tfevents")):
        with open(os.path.join(logdir, name), "rb") as f:
            data = f.read()
        pos = 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack_from("<Q", data, pos)
            end = pos + 12 + length + 4
            if end > len(data):
                break
            event = event_pb2.Event()
            try:
                event.ParseFromString(data[pos + 12 : pos + 12 + length])
            except DecodeError:  # a damaged record ends the file, as a torn one does
                break
            for value in event.summary.value:
                if value.WhichOneof("value") == "simple_value":
                    out.setdefault(value.tag, {})[int(event.step)] = float(value.simple_value)
            pos = end
    return out
