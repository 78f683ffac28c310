"""Starting and continuing a search: opening it (workdir, frozen config, controller), then running it.

``open_search`` reads and builds without writing; ``run_search`` starts the
executor and the loop; ``start_or_resume`` (what ``nas-search search`` and
``resume`` call) is the two in turn. Everything built comes from the
experiment config (factories), everything known from the workdir. The
target, ``search.max_trials``, has one source: the config (a runtime key,
recorded in the frozen config when a resumed search changes it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator
from typing import Any

from experiments.config import ExperimentConfig
from experiments.overrides import apply_overrides, config_to_dict, diff_configs, flatten
from experiments.search_config import RUNTIME_KEYS
from nas.search_loop import SearchLoop, summarize
from nas.trial_store import TrialStore
from nas.workdir import Workdir, WorkdirError
from search_space import DecisionEncoding
from search_space.errors import UserError


class SearchError(UserError, RuntimeError):
    """A search cannot start or continue; the message says why."""


def reconcile(workdir: Workdir, config: ExperimentConfig | None) -> ExperimentConfig:
    """The config to run: the frozen one, with runtime keys from ``config``.

    Raises:
      WorkdirError: no search in the workdir, or its config is unreadable.
      SearchError: ``config`` differs from the frozen config outside runtime keys.
    """
    frozen = workdir.config()
    if config is None:
        return frozen
    config = config.with_rungs(frozen.search.rungs or None)  # default rungs: the ones the search froze
    differing = [k for k in diff_configs(frozen, config) if k not in RUNTIME_KEYS]
    if differing:
        shown = ", ".join(differing[:8]) + (" ..." if len(differing) > 8 else "")
        raise SearchError(
            f"{workdir.path} holds a search with a different config (keys that differ: {shown}); "
            "use another --workdir, or resume without changing the config"
        )
    runtime = {k: v for k, v in flatten(config_to_dict(config)).items() if k in RUNTIME_KEYS}
    return apply_overrides(frozen, runtime)


@dataclasses.dataclass
class OpenSearch:
    """A search opened for running: its workdir locked, its controller restored, nothing written yet."""

    workdir: Workdir
    config: ExperimentConfig
    is_new: bool
    store: TrialStore
    loop: SearchLoop
    warnings: list[str]


@contextlib.contextmanager
def open_search(
    config: ExperimentConfig | None,
    workdir_path: str,
    *,
    runtime_overrides: dict[str, Any] | None = None,
    rebuild_controller: bool = False,
) -> Iterator[OpenSearch]:
    """Opens a new search, or the one in ``workdir_path``, without writing anything to it.

    Takes the workdir's lock, settles the config (the frozen one, with the
    runtime keys of ``config`` and then of ``runtime_overrides``), builds the
    controller and the reward function, opens the trial log and restores the
    controller from it. A failure on the way leaves the workdir exactly as it
    was (and a refused new search leaves no directory or lock behind).

    Args:
      config: the experiment config (None: continue the workdir's search).
      workdir_path: the search's directory.
      runtime_overrides: dotted runtime keys (``RUNTIME_KEYS``), e.g.
        ``{"search.max_trials": 100}`` from ``resume --max_trials``.
      rebuild_controller: ignore the controller snapshots and replay the whole
        trial log into a fresh controller (the way out when a snapshot is
        refused or disagrees with the log; exact on an intact log).

    Raises:
      SearchError, WorkdirError, ConfigError: with a message for the user.
    """
    from controller import build_controller
    from nas.evaluators import PROXY_EVALUATOR, accepts_epochs, load_evaluator
    from nas.fidelity import Asha
    from nas.reward_fn import build_reward_fn

    workdir = Workdir(workdir_path)
    workdir.refuse_proxy_check()
    if config is not None and config.search.evaluator != PROXY_EVALUATOR:
        fn = load_evaluator(config.search.evaluator)  # a typo fails here, not in every trial
        if config.search.fidelity == "asha" and not accepts_epochs(fn):
            raise SearchError(
                f"search.fidelity=asha calls the evaluator with epochs=E (train to epoch E and report there), but "
                f"{config.search.evaluator} takes no 'epochs' argument; add one, or use search.fidelity=full"
            )
    if config is None and not workdir.exists():
        raise WorkdirError(f"{workdir.path} holds no search (no config.json); start one with nas-search search")
    unknown = sorted(set(runtime_overrides or {}) - set(RUNTIME_KEYS))
    if unknown:
        raise SearchError(f"{', '.join(unknown)} cannot change when a search continues; runtime keys: {RUNTIME_KEYS}")
    dir_existed = os.path.isdir(workdir.path)
    lock_existed = os.path.exists(workdir.join(".lock"))
    if config is not None and not workdir.exists():
        config.validate()  # a bad new search is refused before anything is created
    workdir.lock()
    try:
        is_new = not workdir.exists()
        if is_new:
            config = config.with_rungs()  # frozen: a later change of the default leaves this search as it is
        else:
            config = reconcile(workdir, config)
        if runtime_overrides:
            config = apply_overrides(config, runtime_overrides)
        encoding = DecisionEncoding(config.search_space)
        controller = build_controller(config.controller, encoding, seed=config.search.seed)
        with TrialStore(workdir.log_path) as store:
            reward_fn = build_reward_fn(config)
            loop = SearchLoop(
                workdir=workdir,
                store=store,
                controller=controller,
                encoding=encoding,
                search_config=config.search,
                reward_fn=reward_fn,
                asha=Asha.of(config, store, reward_fn),
            )
            warnings = loop.restore(rebuild=rebuild_controller)  # reads only
            yield OpenSearch(workdir, config, is_new, store, loop, warnings)
    finally:
        workdir.unlock()
        if not workdir.exists():  # refused before the search was created: leave no trace of this attempt
            _remove_lock_and_directory(workdir, lock_existed, dir_existed)


def run_search(search: OpenSearch, *, ray_address: str | None = None, quiet: bool = False) -> dict[str, Any]:
    """Runs an opened search to its ``search.max_trials`` (or a stop); returns a summary.

    Checks the data and starts the executor (Ray may be unreachable) before
    the first write: creating the workdir of a new search, or recording the
    runtime keys a resumed one changed in its frozen config.

    Raises:
      SearchError, WorkdirError, DataError, ExecutorError: with a message for the user.
    """
    from nas.events import SearchEvents
    from nas.progress import Reporter

    workdir, config, store, loop = search.workdir, search.config, search.store, search.loop
    check_data(config)
    executor = build_executor(config, ray_address)
    config_dict = config_to_dict(config)
    if search.is_new:
        workdir.create(config_dict)
    else:
        workdir.update_runtime(config_dict)
    for warning in search.warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    events = SearchEvents(workdir.join("tensorboard"))
    reporter = None if quiet else Reporter(metric=config.reward.metric)
    max_trials = config.search.max_trials
    if reporter is not None:
        done = sum(1 for t in store.trials.values() if t.status in ("completed", "failed"))
        print(
            f"search {workdir.search_id()} in {workdir.path}: {config.name}, {config.controller.algorithm}, "
            f"{done} of {max_trials} trials done, {executor.capacity} at a time "
            "(Ctrl-C stops; the same command continues)",
            file=sys.stderr,
            flush=True,
        )
    report = None
    if config.search.report_every > 0:
        from nas.report import PeriodicReport

        report = PeriodicReport(workdir.path, config, config.search.report_every)
    loop.attach(executor=executor, events=events, reporter=reporter, report=report)
    try:
        loop.run(max_trials)
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
        stopped=loop.stopped,
        warnings=loop.warnings,
    )
    return summary


def start_or_resume(
    config: ExperimentConfig | None,
    workdir_path: str,
    *,
    runtime_overrides: dict[str, Any] | None = None,
    ray_address: str | None = None,
    quiet: bool = False,
    rebuild_controller: bool = False,
) -> dict[str, Any]:
    """``open_search`` then ``run_search``: what ``nas-search search`` and ``resume`` do."""
    with open_search(
        config, workdir_path, runtime_overrides=runtime_overrides, rebuild_controller=rebuild_controller
    ) as search:
        return run_search(search, ray_address=ray_address, quiet=quiet)


def _remove_lock_and_directory(workdir: Workdir, lock_existed: bool, dir_existed: bool) -> None:
    with contextlib.suppress(OSError):
        if not lock_existed:
            os.remove(workdir.join(".lock"))
        if not dir_existed:
            os.rmdir(workdir.path)  # only if empty


def check_data(config: ExperimentConfig) -> None:
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
    from proxy_trainer.data.coco_files import DataError
    from proxy_trainer.data.pipeline import prepare_data

    if config.data.source == "coco":
        import tensorflow as tf

        for key in ("annotation_file", "image_dir"):
            path = getattr(config.data, key)
            if not tf.io.gfile.exists(path):
                raise DataError(f"data.{key}: {path} does not exist")
    prepare_data(config.data, config.model.input_size, log=lambda msg: print(msg, flush=True))


def build_executor(config: ExperimentConfig, ray_address: str | None):
    """The executor ``config.search`` asks for (a local Ray without ``ray_address``).

    Raises:
      SearchError: ``--ray_address`` with the local executor.
      ExecutorError: Ray cannot be reached or lacks the resources of a trial.
    """
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
