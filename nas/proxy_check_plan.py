"""A proxy check's plan: which architectures, how many seeds, the two recipes, and its projected cost.

See ``nas.proxy_check`` for what a check is and how it runs; ``nas.proxy_check_result`` for its figures.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from typing import Any

from experiments.config import ExperimentConfig
from experiments.overrides import (
    ConfigError,
    apply_overrides,
    config_to_dict,
    diff_configs,
    flatten,
    parse_override_string,
)
from experiments.search_config import RUNTIME_KEYS
from nas.trial_store import COMPLETED, FAILED, TrialStore
from nas.workdir import Workdir
from search_space import (
    Architecture,
    DecisionEncoding,
    architecture_from_dict,
    architecture_preset,
    architecture_to_dict,
    load_architecture,
    sample_architecture,
)
from search_space.errors import UserError

SCHEMA_VERSION = 1
RESULT_FILE = "proxy_check.json"
RECIPES = ("proxy", "reference")
REFERENCE_LENGTH_FACTOR = 4
# The reference trains with other seeds than the proxy (1000 + k), so the two recipes share no
# initialisation or data order and their agreement is not inflated by it.
REFERENCE_SEED_OFFSET = 1000
PRESETS = ("spinenet49", "resnet_like")
# COCO train2017 has 118,287 images (docs/proxy_recipe.md#reward-split); the dry run's step counts assume all of it.
COCO_TRAIN2017_IMAGES = 118_287


class ProxyCheckError(UserError, RuntimeError):
    """A proxy check cannot start or continue as asked; the message says why."""


# ----- the plan: what is checked ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CheckArch:
    """One architecture of the check: a label, where it came from, and the network."""

    label: str
    source: str
    architecture: Architecture


@dataclasses.dataclass
class CheckPlan:
    """Everything a check computes: its architectures, seeds and the two recipes' configs."""

    experiment: str
    archs: list[CheckArch]
    seeds: int
    configs: dict[str, ExperimentConfig]  # recipe -> config
    reference_overrides: dict[str, Any]

    def trials(self) -> list[dict[str, Any]]:
        """The trials in the order they run (trial id = position): seed by seed, the proxy before the reference.

        A check cut short therefore has whole seeds of both recipes first.
        """
        out = []
        for k in range(self.seeds):
            for recipe in RECIPES:
                for i, _ in enumerate(self.archs):
                    seed = k if recipe == "proxy" else REFERENCE_SEED_OFFSET + k
                    out.append({"arch": i, "recipe": recipe, "seed_index": k, "seed": seed})
        return out

    def to_dict(self) -> dict[str, Any]:
        """The plan's plain form, as ``check.json`` keeps it."""
        return {
            "experiment": self.experiment,
            "seeds": self.seeds,
            "reference_overrides": self.reference_overrides,
            "archs": [
                {
                    "label": a.label,
                    "source": a.source,
                    "fingerprint": a.architecture.fingerprint(),
                    "architecture": architecture_to_dict(a.architecture),
                }
                for a in self.archs
            ],
            "recipes": {name: config_to_dict(config) for name, config in self.configs.items()},
        }


def fixed_plan(plan_dict: dict[str, Any]) -> dict[str, Any]:
    """A plan's plain form less what may change when a check continues (the recipes' runtime keys)."""
    flat = flatten(json.loads(json.dumps(plan_dict)))
    return {
        k: v for k, v in flat.items() if not any(k == f"recipes.{r}.{key}" for r in RECIPES for key in RUNTIME_KEYS)
    }


def reference_config(proxy: ExperimentConfig, overrides: str | None) -> tuple[ExperimentConfig, dict[str, Any]]:
    """The reference recipe: ``overrides`` applied to the proxy's config (default: training 4x longer).

    Raises:
      ConfigError: a bad override (unknown key, wrong type), or one that leaves the recipe unchanged.
    """
    if overrides:
        parsed = parse_override_string(overrides)
        if not parsed:
            raise ConfigError("--reference is empty; give overrides, e.g. --reference=trainer.epochs=20")
    elif proxy.trainer.train_steps > 0:
        parsed = {"trainer.train_steps": proxy.trainer.train_steps * REFERENCE_LENGTH_FACTOR}
    else:
        parsed = {"trainer.epochs": proxy.trainer.epochs * REFERENCE_LENGTH_FACTOR}
    try:
        reference = apply_overrides(proxy, parsed)
    except ConfigError as e:
        raise ConfigError(f"--reference: {e}") from None
    if "search.trial_timeout_s" not in flatten(parsed) and proxy.search.trial_timeout_s:
        # A longer recipe gets a proportionally longer time limit (a trial past it is killed as hung).
        factor = max(1.0, _length(reference) / _length(proxy)) if _length(proxy) else 1.0
        reference = apply_overrides(reference, {"search.trial_timeout_s": proxy.search.trial_timeout_s * factor})
    if not [k for k in diff_configs(proxy, reference) if k not in RUNTIME_KEYS]:
        raise ConfigError(f"--reference={overrides}: the reference recipe is the proxy's own; change what it trains")
    return reference, flatten(parsed)


def _length(config: ExperimentConfig) -> float:
    """Training length in steps (``train_steps``) or epochs, whichever the recipe uses."""
    t = config.trainer
    return float(t.train_steps) if t.train_steps > 0 else float(t.epochs)


def with_epoch_evaluation(config: ExperimentConfig) -> ExperimentConfig:
    """The proxy recipe as a check runs it: also evaluated after every epoch (its learning curve)."""
    return apply_overrides(config, {"trainer.eval_every_epoch": True})


def sample_archs(config: ExperimentConfig, count: int, seed: int, taken: set[str]) -> list[CheckArch]:
    """``count`` distinct random members of the experiment's space (``random.Random(seed)``), none in ``taken``."""
    encoding = DecisionEncoding(config.search_space)
    rng = random.Random(seed)
    out: list[CheckArch] = []
    for _ in range(100 * max(count, 1)):
        if len(out) == count:
            break
        arch = sample_architecture(encoding, rng).with_scaling(config.search_space.scaling)
        if arch.fingerprint() in taken:
            continue
        taken.add(arch.fingerprint())
        out.append(CheckArch(f"random_{len(out)}", f"random (sample seed {seed})", arch))
    return out


def search_top(search_path: str, top: int) -> tuple[list[CheckArch], ExperimentConfig]:
    """The ``top`` best distinct architectures of a finished search, and its frozen config.

    Raises:
      ProxyCheckError: not a finished search (still running, or short of its target, or trials in flight).
      WorkdirError: no search there.
    """
    search = Workdir(search_path)
    config = search.config()
    with TrialStore(search.log_path, readonly=True) as store:
        done = sum(1 for t in store.trials.values() if t.status in (COMPLETED, FAILED))
        target = config.search.max_trials
        holder = search.holder()
        if holder is not None or store.in_flight() or done < target:
            state = f"driven by {holder}" if holder else f"{done} of {target} trials finished"
            raise ProxyCheckError(
                f"--from_search={search_path}: not a finished search ({state}); finish it with "
                f"nas-search resume --workdir={search_path}, or check given architectures with --arch_file"
            )
        archs, seen = [], set()
        for trial in store.best(len(store.trials)):
            if trial.fingerprint in seen:
                continue
            seen.add(trial.fingerprint)
            arch, _ = architecture_from_dict(trial.architecture)
            source = f"search {search.search_id()} trial {trial.trial_id} (reward {trial.reward:.4f})"
            archs.append(CheckArch(f"search_rank{len(archs) + 1}", source, arch))
            if len(archs) == top:
                break
    if not archs:
        raise ProxyCheckError(f"--from_search={search_path}: the search has no completed trial")
    return archs, config


def make_plan(
    config: ExperimentConfig | None,
    *,
    archs: int | None = None,
    arch_files: list[str] | None = None,
    from_search: str | None = None,
    top: int | None = None,
    seeds: int = 3,
    reference: str | None = None,
    sample_seed: int = 0,
) -> CheckPlan:
    """The architectures and recipes of a check.

    The set: the given files, else the presets (``spinenet49``,
    ``resnet_like``) unless ``from_search`` gives the ``top`` best of a
    finished search; then ``archs`` random members of the space (default
    10, or ``top`` with ``from_search``, 0 with files). Architectures that
    build the same network are checked once. With ``from_search`` and no
    ``config``, the search's frozen config is the proxy recipe.

    Raises:
      ProxyCheckError, WorkdirError, ConfigError, ArchitectureError: with a message for the user.
    """
    if seeds < 1:
        raise ProxyCheckError(f"--seeds={seeds}; allowed >= 1")
    search_archs: list[CheckArch] = []
    if from_search:
        search_archs, search_config = search_top(from_search, top or 5)
        config = config or search_config
    if config is None:
        raise ProxyCheckError("--experiment is required (or --from_search, to check with the search's own recipe)")
    scaling = config.search_space.scaling
    search_archs = [dataclasses.replace(a, architecture=a.architecture.with_scaling(scaling)) for a in search_archs]
    chosen: list[CheckArch] = []
    if arch_files:
        for path in arch_files:
            arch, _ = load_architecture(path)
            chosen.append(
                CheckArch(os.path.splitext(os.path.basename(path))[0], f"file {path}", arch.with_scaling(scaling))
            )
    elif not from_search:
        chosen += [
            CheckArch(name, f"preset:{name}", architecture_preset(name).with_scaling(scaling)) for name in PRESETS
        ]
    chosen += search_archs
    unique, taken = [], set()
    for a in chosen:
        if a.architecture.fingerprint() not in taken:
            taken.add(a.architecture.fingerprint())
            unique.append(a)
    count = archs if archs is not None else (len(search_archs) if from_search else (0 if arch_files else 10))
    unique += sample_archs(config, count, sample_seed, taken)
    if len(unique) < 2:
        raise ProxyCheckError(f"a check needs at least 2 distinct architectures; this one has {len(unique)}")
    proxy = with_epoch_evaluation(config)
    ref, overrides = reference_config(config, reference)
    return CheckPlan(config.name, unique, seeds, {"proxy": proxy, "reference": ref}, overrides)


# ----- the plan's projected cost (--dry_run) ---------------------------------------------------


def train_images(config: ExperimentConfig) -> tuple[int, str]:
    """Training images of the experiment's data, and how that number is known."""
    data = config.data
    if data.source == "synthetic":
        return data.synthetic.num_images - data.holdout_size, "generated"
    return COCO_TRAIN2017_IMAGES - data.holdout_size, "assuming all of COCO train2017 (118,287 images)"


def measured_step_seconds(*paths: str | None) -> tuple[float | None, str]:
    """The median training seconds per step of the completed trials in the given check or search directories."""
    import statistics

    values = []
    where = []
    for path in paths:
        if not path or not os.path.exists(os.path.join(path, "trials.jsonl")):
            continue
        with TrialStore(os.path.join(path, "trials.jsonl"), readonly=True) as store:
            for t in store.completed():
                m = t.metrics or {}
                if t.reused_from is None and m.get("steps_run") and m.get("train_s"):
                    values.append(m["train_s"] / m["steps_run"])
        where.append(path)
    if not values:
        return None, ""
    return statistics.median(values), f"median of {len(values)} trials in {', '.join(where)}"


def dry_run_plan(plan: CheckPlan, step_seconds: float | None, source: str) -> dict[str, Any]:
    """The plan of a check: trials, recipes, steps and projected trial-hours; writes nothing."""
    recipes = {}
    total_steps = 0
    n = len(plan.archs) * plan.seeds
    for name, config in plan.configs.items():
        images, how = train_images(config)
        steps = config.trainer.total_steps(images)
        total_steps += steps * n
        recipes[name] = {
            "trials": n,
            "epochs": config.trainer.epochs if config.trainer.train_steps == 0 else None,
            "steps_per_trial": steps,
            "train_images": images,
            "train_images_from": how,
            "eval_every_epoch": config.trainer.eval_every_epoch,
            "trial_hours": steps * step_seconds / 3600 if step_seconds else None,
        }
    return {
        "experiment": plan.experiment,
        "archs": [
            {"label": a.label, "source": a.source, "fingerprint": a.architecture.fingerprint()} for a in plan.archs
        ],
        "seeds": plan.seeds,
        "reference_overrides": plan.reference_overrides,
        "trials": 2 * n,
        "recipes": recipes,
        "total_steps": total_steps,
        "step_seconds": step_seconds,
        "step_seconds_from": source,
        "projected_trial_hours": total_steps * step_seconds / 3600 if step_seconds else None,
    }
