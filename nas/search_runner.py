"""Starting and continuing a search: the workdir, the frozen config, Ray, the loop.

``start_or_resume`` is what ``nas-search search`` and ``nas-search resume``
call; everything it builds comes from the experiment config (factories), and
everything it knows comes from the workdir.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from typing import Any

from experiments.config import ExperimentConfig
from experiments.overrides import ConfigError, apply_overrides, build_config, config_to_dict, diff_configs
from experiments.registry import get_experiment
from experiments.search_config import RUNTIME_KEYS
from nas.workdir import Workdir, WorkdirError


class SearchError(RuntimeError):
    """A search cannot start or continue; the message says why."""


def frozen_config(workdir: Workdir) -> ExperimentConfig:
    """The config a workdir's search was started with.

    Raises:
      WorkdirError: no search here, or its config is unreadable.
    """
    if not workdir.exists():
        raise WorkdirError(f"{workdir.path} holds no search (no config.json); start one with nas-search search")
    data = workdir.load_config()
    if not isinstance(data, dict) or "name" not in data:
        raise WorkdirError(f"{workdir.config_path}: not a search config")
    try:
        get_experiment(data["name"])  # the experiment must still be registered
        return build_config(ExperimentConfig, data)
    except (ConfigError, KeyError) as e:
        raise WorkdirError(f"{workdir.config_path}: {e}") from None


def reconcile(workdir: Workdir, config: ExperimentConfig | None) -> ExperimentConfig:
    """The config to run: the frozen one, with runtime keys from ``config``.

    Raises:
      SearchError: ``config`` differs from the frozen config outside runtime keys.
    """
    frozen = frozen_config(workdir)
    if config is None:
        return frozen
    differing = [k for k in diff_configs(frozen, config) if k not in RUNTIME_KEYS]
    if differing:
        shown = ", ".join(differing[:8]) + (" ..." if len(differing) > 8 else "")
        raise SearchError(
            f"{workdir.path} holds a search with a different config (keys that differ: {shown}); "
            "use another --workdir, or resume without changing the config"
        )
    runtime = {k: v for k, v in _flat(config).items() if k in RUNTIME_KEYS}
    return apply_overrides(frozen, runtime)


def _flat(config: Any) -> dict[str, Any]:
    from experiments.overrides import flatten

    return flatten(config_to_dict(config))


def start_or_resume(
    config: ExperimentConfig | None,
    workdir_path: str,
    *,
    ray_address: str | None = None,
    max_trials: int | None = None,
    quiet: bool = False,
    rebuild_controller: bool = False,
) -> dict[str, Any]:
    """Runs a search in ``workdir_path``: a new one, or the one already there.

    Args:
      config: the experiment config (None: continue the workdir's search).
      workdir_path: the search's directory.
      ray_address: a Ray cluster to use instead of a local Ray.
      max_trials: overrides ``search.max_trials`` (runtime: may grow on
        resume). None: the config's, or with ``config=None`` the target of
        the previous run.
      quiet: no progress output.
      rebuild_controller: ignore the controller snapshots and replay the whole
        trial log into a fresh controller (the way out when a snapshot is
        refused or disagrees with the log; exact on an intact log).

    Returns:
      A summary (counts, best reward, workdir).

    Raises:
      SearchError, WorkdirError, ConfigError: with a message for the user.
    """
    from controller import build_controller
    from nas.evaluators import PROXY_EVALUATOR, load_evaluator
    from nas.events import SearchEvents
    from nas.progress import Reporter
    from nas.rewards import build_reward_fn
    from nas.search_loop import SearchLoop, summarize
    from nas.trial_store import TrialStore
    from search_space import DecisionEncoding

    resuming_only = config is None
    workdir = Workdir(workdir_path)
    if config is not None and config.search.evaluator != PROXY_EVALUATOR:
        load_evaluator(config.search.evaluator)  # a typo fails here, not in every trial
    if config is None and not workdir.exists():
        raise WorkdirError(f"{workdir.path} holds no search (no config.json); start one with nas-search search")
    dir_existed = os.path.isdir(workdir.path)
    lock_existed = os.path.exists(workdir.join(".lock"))
    if config is not None and not workdir.exists():
        config.validate()  # a bad new search is refused before anything is created
    workdir.lock()
    try:
        is_new = not workdir.exists()
        if not is_new:
            config = reconcile(workdir, config)
        search = config.search
        encoding = DecisionEncoding(config.search_space)
        controller = build_controller(config.controller, encoding, seed=search.seed)
        reward_fn = build_reward_fn(config)
        with TrialStore(workdir.log_path) as store:
            loop = SearchLoop(
                workdir=workdir,
                store=store,
                controller=controller,
                encoding=encoding,
                search_config=search,
                reward_fn=reward_fn,
            )
            # Nothing is written before the controller is restored: a restore
            # that fails leaves the workdir exactly as it was.
            warnings = loop.restore(rebuild=rebuild_controller)
            _check_data(config)
            executor = _build_executor(config, ray_address)  # before anything is written: Ray may be unreachable
            if is_new:
                workdir.create(config_to_dict(config))
            for warning in warnings:
                print(f"warning: {warning}", file=sys.stderr, flush=True)
            events = SearchEvents(workdir.join("tensorboard"))
            reporter = None if quiet else Reporter(metric=config.reward.metric)
            if max_trials is None and resuming_only and store.runs:
                max_trials = store.runs[-1]["max_trials"]  # `resume`: continue to the last run's target
            if max_trials is not None:
                search = dataclasses.replace(search, max_trials=max_trials)
            if reporter is not None:
                done = sum(1 for t in store.trials.values() if t.status in ("completed", "failed"))
                print(
                    f"search {workdir.search_id()} in {workdir.path}: {config.name}, {config.controller.algorithm}, "
                    f"{done} of {search.max_trials} trials done, {executor.capacity} at a time "
                    "(Ctrl-C stops; the same command continues)",
                    file=sys.stderr,
                    flush=True,
                )
            loop.attach(executor=executor, events=events, reporter=reporter)
            try:
                loop.run(search.max_trials)
            finally:
                executor.shutdown()
                events.close()
            best = store.best(1)
            summary = summarize(store)
            summary.update(
                workdir=workdir.path,
                search_id=workdir.search_id(),
                best_reward=best[0].reward if best else None,
                best_trial=best[0].trial_id if best else None,
                stopped=loop._stop,
                warnings=loop.warnings,
            )
            return summary
    finally:
        workdir.unlock()
        if not workdir.exists():  # refused before the search was created: leave no trace of this attempt
            _remove_lock_and_directory(workdir, lock_existed, dir_existed)


def _remove_lock_and_directory(workdir: Workdir, lock_existed: bool, dir_existed: bool) -> None:
    with contextlib.suppress(OSError):
        if not lock_existed:
            os.remove(workdir.join(".lock"))
        if not dir_existed:
            os.rmdir(workdir.path)  # only if empty


def _check_data(config: ExperimentConfig) -> None:
    """Fails early when the built-in evaluator's dataset is missing, and prepares it once.

    The synthetic dataset is generated and the preprocessing cache built here,
    in the driver, so that trials do not each build their own.

    Raises:
      ConfigError: COCO paths not given.
      DataError: a path that does not exist, or data that does not load.
    """
    if config.search.evaluator != "proxy":
        return
    config.require_data()
    from proxy_trainer.coco_data import DataError
    from proxy_trainer.input_pipeline import prepare_data

    if config.data.source == "coco":
        import tensorflow as tf

        for key in ("annotation_file", "image_dir"):
            path = getattr(config.data, key)
            if not tf.io.gfile.exists(path):
                raise DataError(f"data.{key}: {path} does not exist")
    prepare_data(config.data, config.model.input_size, log=lambda msg: print(msg, flush=True))


def _build_executor(config: ExperimentConfig, ray_address: str | None):
    from nas.executors import LocalExecutor, RayExecutor

    search = config.search
    config_dict = config_to_dict(config)
    if search.executor == "local":
        if ray_address:
            raise SearchError("--ray_address needs search.executor=ray")
        return LocalExecutor(search.evaluator, config_dict)
    return RayExecutor(
        search.evaluator,
        config_dict,
        address=ray_address,
        num_cpus=search.trial_cpus,
        num_gpus=None if search.trial_gpus == -1 else search.trial_gpus,
        max_concurrent=search.max_concurrent or None,
        fresh_worker=search.fresh_worker_per_trial,
    )
