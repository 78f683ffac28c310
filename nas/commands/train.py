"""``nas-search train`` (also installed as ``nas-train``): train and evaluate one architecture.

Usage::

    nas-train --arch=FILE_OR_PRESET --experiment=NAME --workdir=DIR \\
        [--model_id=ID] [--params_override=a.b=v,...] [--config_file=FILE] [--seed=N] \\
        [--cpu_threads=N]

``--arch=preset:spinenet49`` selects a published topology
(``search_space.architecture_preset``); anything else is an architecture
JSON file (``search_space.load_architecture``). The network is built with the
experiment's scaling and head (``search_space.scaling``, ``model.*``), the
ones its search trains, unless ``--model_id`` (49S, 49, 96, 143, 190, proxy)
selects a published scaling and head size, e.g. to train a discovered
architecture at full size (with a longer schedule through --params_override or
--config_file).

The workdir receives ``trial.json`` (what is trained; a rerun with another
architecture, seed or config is refused), checkpoints (training resumes from
the latest when the same command is run again), TensorBoard events under
``tensorboard/``, and at the end ``config.yaml`` (the frozen config),
``architecture.json`` (with the scaling trained) and ``metrics.json``, whose
metrics are also printed as JSON on stdout.
On a machine without a GPU, ``--cpu_threads=N`` caps TensorFlow at N threads:
the summation order, and so a short training's AP, depends on it, and a
search's trial runs ``ceil(search.trial_cpus)`` threads, so the same N (1 in
the built-in experiments) reproduces a search's reward for the same seed.
Progress is a bar on a terminal and log lines otherwise. Bad input ends in one
line ``nas-train: error: ...`` on stderr and exit status 2; a trial that fails
while training (e.g. a non-finite loss) ends in one such line and status 1.

This module must not import Ray (directly or through its imports).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

from nas.cli_flags import FLAGS, UsageError

FLAGS_USED = (
    "arch",
    "experiment",
    "workdir",
    "model_id",
    "params_override",
    "config_file",
    "seed",
    "cpu_threads",
    "quiet",
)
METRICS_FILE = "metrics.json"


def load_arch(spec: str, model_id: str | None, experiment_scaling):
    """The architecture of ``--arch`` with the scaling of ``--model_id`` or the experiment.

    Raises:
      ArchitectureError: unknown preset or model id, or a bad architecture file.
    """
    from search_space import resolve_architecture
    from search_space.presets import scaling_for

    arch = resolve_architecture(spec)
    return arch.with_scaling(scaling_for(arch, model_id) if model_id else experiment_scaling)


def load_config(model_id: str | None):
    """The experiment config after --config_file, --params_override and --model_id.

    Raises:
      UsageError, ConfigError, UnknownExperimentError, ArchitectureError.
    """
    from experiments.registry import configure_experiment
    from search_space import model_preset

    extra = None
    if model_id:
        # The model id's scaling and head replace the experiment's (ModelConfig.model_id semantics).
        extra = {
            "search_space.scaling": dataclasses.asdict(model_preset(model_id).scaling),
            "model.model_id": model_id,
            "model.head_num_convs": None,
            "model.head_num_filters": None,
            "model.head_separable": None,
        }
    config = configure_experiment(
        FLAGS.experiment,
        config_file=FLAGS.config_file,
        params_override=FLAGS.params_override,
        extra_overrides=extra,
    )
    config.require_data()
    return config


class _Progress:
    """A one-line bar on a terminal; a log line every ``log_interval`` steps otherwise."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.start = time.time()

    def __call__(self, event: dict) -> None:
        if self.quiet:
            return
        kind = event.get("event")
        if kind == "train":
            step, total = event["step"], event["total_steps"]
            text = f"step {step}/{total} loss {event['loss']:.4f} lr {event['learning_rate']:.4g}"
            if event.get("images_per_s"):
                text += f" {event['images_per_s']:.1f} img/s"
            if self.tty:
                width = 30
                done = int(width * step / max(total, 1))
                print(f"\r[{'#' * done}{'.' * (width - done)}] {text}", end="", file=sys.stderr, flush=True)
                if step >= total:
                    print(file=sys.stderr)
            else:
                print(f"nas-train: {text}", file=sys.stderr, flush=True)
        elif kind in ("resume", "evaluate", "info"):
            print(f"nas-train: {event['message']}", file=sys.stderr, flush=True)


def cmd_train() -> int:
    """Trains and evaluates ``--arch``; prints its metrics as JSON."""
    import yaml

    from experiments.overrides import config_to_dict
    from proxy_trainer.training.runtime import cpu_threads_in_use, limit_cpu_threads
    from proxy_trainer.training.trainer import train_and_evaluate
    from search_space import architecture_to_json

    for name in ("arch", "experiment", "workdir"):
        if not FLAGS[name].value:
            raise UsageError(f"--{name} is required")
    config = load_config(FLAGS.model_id)
    arch = load_arch(FLAGS.arch, FLAGS.model_id, config.search_space.scaling)
    workdir = FLAGS.workdir
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise UsageError(f"--workdir={workdir}: exists and is not a directory")
    os.makedirs(workdir, exist_ok=True)
    if FLAGS.cpu_threads:
        # Before TensorFlow runs its first op; a search's slot does the same (nas/evaluators.py).
        limit_cpu_threads(FLAGS.cpu_threads)
    progress = _Progress(FLAGS.quiet)
    if not FLAGS.quiet:
        scaling = arch.scaling
        print(
            f"nas-train: {FLAGS.arch} in experiment {config.name}, scaling "
            f"(filter_size_scale {scaling.filter_size_scale}, resample_alpha {scaling.resample_alpha}, "
            f"endpoints {scaling.endpoints_num_filters}, repeats {scaling.block_repeats}), seed {FLAGS.seed}",
            file=sys.stderr,
        )
    metrics = train_and_evaluate(arch, config, workdir, FLAGS.seed, progress=progress)
    _write_text(os.path.join(workdir, "architecture.json"), architecture_to_json(config.model.scaled(arch)))
    _write_text(os.path.join(workdir, "config.yaml"), yaml.safe_dump(config_to_dict(config), sort_keys=False))
    result = {
        "experiment": config.name,
        "arch": FLAGS.arch,
        "seed": FLAGS.seed,
        "cpu_threads": cpu_threads_in_use(),
        "fingerprint": config.model.scaled(arch).fingerprint(),
        "metrics": metrics,
        "config": config_to_dict(config),
    }
    _write_text(os.path.join(workdir, METRICS_FILE), json.dumps(result, indent=2, sort_keys=True))
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


def _write_text(path: str, text: str) -> None:
    from search_space.serialization import write_file_atomically

    write_file_atomically(path, text if text.endswith("\n") else text + "\n")
