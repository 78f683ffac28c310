"""``trial.json``: what a training workdir holds, so that a rerun resumes only the same trial.

A trial is the scaled architecture, the seed and the model, data and trainer
config; fields that only change how it runs (``RUNTIME_FIELDS``) may differ
when it is resumed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import tensorflow as tf

from proxy_trainer.training.errors import TrainingError
from search_space import Architecture, write_file_atomically

TRIAL_FILE = "trial.json"
CHECKPOINT_DIR = "checkpoints"

# trial.json fields that may change when a trial is resumed: they change how it
# runs (or where the same data lives), not what it computes.
RUNTIME_FIELDS = {
    "trainer": (
        "checkpoint_interval",
        "max_checkpoints",
        "log_interval",
        "eval_batch_size",
        "eval_every_epoch",  # evaluations between epochs do not change what training computes (tested)
        "jit_compile",
        "graph_optimizer",
        "anchor_labeling",
        "stop_at_epoch",  # where a run stops, not what it computes: the schedule is the whole run's (tested)
    ),
    "data": (
        "annotation_file",
        "image_dir",
        "cache_dir",
        "use_cache",
        "cache_image_format",
        "cache_shard_size",
        "num_parallel_calls",
        "autotune",
    ),  # fmt: skip
}


def trial_identity(architecture: Architecture, config: Any, seed: int) -> dict[str, Any]:
    """What a trial computes: the scaled architecture's fingerprint, the seed and the config sections
    (less ``RUNTIME_FIELDS``), as plain JSON."""
    sections = {}
    for name in ("model", "data", "trainer"):
        values = dataclasses.asdict(getattr(config, name))
        for key in RUNTIME_FIELDS.get(name, ()):
            values.pop(key, None)
        sections[name] = values
    ident = {"fingerprint": config.model.scaled(architecture).fingerprint(), "seed": seed, **sections}
    return json.loads(json.dumps(ident))


def check_trial_file(workdir: str, ident: dict[str, Any]) -> None:
    """Refuses a workdir whose checkpoints belong to another trial.

    Raises:
      TrainingError: naming up to five fields that differ.
    """
    path = os.path.join(workdir, TRIAL_FILE)
    if not (os.path.exists(path) and tf.train.latest_checkpoint(os.path.join(workdir, CHECKPOINT_DIR))):
        return  # nothing to resume: the trial file is (re)written when training starts
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError) as e:
        raise TrainingError(f"{path}: unreadable trial file ({e}); use a new workdir") from None
    if saved != ident:
        raise TrainingError(
            f"workdir {workdir} holds another trial (differs in {', '.join(_diff(saved, ident)[:5])}); "
            "use a new workdir, or the same architecture, seed and config to resume"
        )


def write_trial_file(workdir: str, ident: dict[str, Any]) -> None:
    """Writes ``trial.json`` atomically (``search_space.write_file_atomically``)."""
    write_file_atomically(os.path.join(workdir, TRIAL_FILE), json.dumps(ident, indent=2, sort_keys=True))


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _diff(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]
