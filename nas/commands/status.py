"""``nas-search status``: where a search stands.

Read-only: it takes no lock and writes or renames nothing, so it is safe
while a search runs and on a damaged workdir (it reports what it finds).
"""

from __future__ import annotations

import json
import time

from nas.cli_flags import FLAGS
from nas.commands.search import require_workdir

FLAGS_USED = ("workdir", "top", "proxy_check", "json")


def search_status(workdir_path: str, top: int = 5, proxy_check: str | None = None) -> dict:
    """Everything `status` shows, as plain data.

    With ``proxy_check`` (a proxy check's directory) it also gives the
    reward's std between seeds that the check measured (``reward_noise``),
    and marks each of the best whose reward is within one std of the best
    (``within_noise_of_best``): differences the seed alone could make.

    Raises:
      WorkdirError: no search in the directory, its files are corrupt, or
        no proxy-check result in ``proxy_check``.
    """
    from nas.progress import eta_seconds, format_duration
    from nas.search_loop import summarize
    from nas.trial_store import TrialStore
    from nas.workdir import Workdir

    workdir = Workdir(workdir_path)
    config = workdir.config()
    with TrialStore(workdir.log_path, readonly=True) as store:
        counts = summarize(store)
        records = store.records
        first = records[0]["time"] if records else None
        last = records[-1]["time"] if records else None
        holder = workdir.holder()
        running_now = holder is not None
        elapsed = ((time.time() if running_now else last) - first) if first else 0.0
        max_trials = config.search.max_trials
        run_started = store.runs[-1]["time"] if store.runs else None
        eta = eta_seconds(store, max_trials, run_started) if running_now and run_started else None
        from nas.reward_fn import architecture_costs
        from search_space import architecture_from_dict

        best = []
        for rank, t in enumerate(store.best(top), start=1):
            metrics = t.metrics or {}
            if "params" not in metrics or "multiply_adds" not in metrics:
                metrics = {**architecture_costs(config, architecture_from_dict(t.architecture)[0]), **metrics}
            best.append(
                {
                    "rank": rank,
                    "trial_id": t.trial_id,
                    "reward": t.reward,
                    "metrics": metrics,
                    "params": metrics.get("params"),
                    "multiply_adds": metrics.get("multiply_adds"),
                    "fingerprint": t.fingerprint,
                    "reused_from": t.reused_from,
                }
            )
        failures = [{"trial_id": t.trial_id, "error": t.error} for t in store.trials.values() if t.status == "failed"]
        from nas.fidelity import RungPlan, summary

        plan = RungPlan.of(config)
        fidelity = summary(store, plan) if plan is not None else None
        from nas.pareto import search_front

        front = search_front(config, store.trials.values())
    noise = None
    if proxy_check:
        from nas.proxy_check_result import load_result, reward_noise

        noise = reward_noise(load_result(proxy_check), proxy_check)
        if noise["experiment"] != config.name:
            noise["text"] += f"; measured on {noise['experiment']}, this search is {config.name}"
        std = noise["seed_std"]
        for b in best:
            b["within_noise_of_best"] = std is not None and best[0]["reward"] - b["reward"] < std
    snapshot, _, problems = workdir.latest_snapshot()
    warnings = [f"{msg} (a search will set it aside and use an older snapshot)" for _, msg in problems]
    return {
        "workdir": workdir.path,
        "search_id": workdir.search_id(),
        "experiment": config.name,
        "algorithm": config.controller.algorithm,
        "max_trials": max_trials,
        "proposed": len(store.trials),
        **counts,
        "running_now": running_now,
        "driven_by": holder,
        "best": best,
        "recent_failures": failures[-5:],
        "controller": (snapshot or {}).get("stats", {}),
        "elapsed_s": elapsed,
        "eta_s": eta,
        "elapsed": format_duration(elapsed),
        "eta": format_duration(eta) if eta is not None else ("-" if not running_now else "?"),
        "warnings": warnings,
        "reward_noise": noise,
        "fidelity": fidelity,
        "pareto_front": {
            **{k: v for k, v in front.items() if k not in ("points", "front")},
            "trials": [front["points"][i] for i in front["front"]],
        },
        "cost_aware": config.reward.cost != "none",
    }


def cmd_status() -> int:
    """Prints the status of a search."""
    status = search_status(require_workdir(), FLAGS.top or 5, FLAGS.proxy_check)
    if FLAGS.json:
        print(json.dumps(status, indent=2))
        return 0
    state = f"running ({status['driven_by']})" if status["running_now"] else "not running"
    print(
        f"search {status['search_id']} ({status['experiment']}, {status['algorithm']}) in {status['workdir']}: {state}"
    )
    print(
        f"  trials: {status['completed']} completed ({status['reused']} reused), {status['failed']} failed, "
        f"{status['running']} in flight; {status['proposed']}/{status['max_trials']} proposed"
    )
    print(f"  elapsed {status['elapsed']}, eta {status['eta']}")
    if status["controller"]:
        stats = ", ".join(
            f"{k} {v:.4g}" for k, v in sorted(status["controller"].items()) if isinstance(v, (int, float))
        )
        print(f"  controller: {stats}")
    if status["fidelity"]:
        from nas.fidelity import summary_lines

        for line in summary_lines(status["fidelity"]):
            print(f"  {line}")
    noise = status["reward_noise"]
    if noise:
        print(f"  {noise['text']}")
    front = status["pareto_front"]
    if status["cost_aware"] and front["trials"]:
        from nas.pareto import COSTS

        unit, scale = COSTS[front["cost"]]
        print(f"  Pareto front ({front['metric']} against {unit}, no trial better on both; cheapest first):")
        for p in front["trials"]:
            print(
                f"    trial {p['trial_id']:>6}: {front['metric']} {p['value']:.4f} at {p['cost'] / scale:.4g}, "
                f"reward {p['reward']:.4f}"
            )
    if status["best"]:
        marked = noise is not None and noise["seed_std"] is not None
        note = "; ~ = within 1 std of the best (the seed alone could make the difference)" if marked else ""
        print(f"  best architectures{note}:")
        print(f"    {'rank':>4} {'trial':>6} {'reward':>8} {'params':>12} {'mult-adds':>14}  fingerprint")
        for b in status["best"]:
            params = f"{b['params']:,}" if b["params"] is not None else "-"
            madds = f"{b['multiply_adds']:,}" if b["multiply_adds"] is not None else "-"
            mark = "~" if b.get("within_noise_of_best") and b["rank"] > 1 else " "
            reward = f"{b['reward']:>8.4f}" if b["reward"] is not None else f"{'-':>8}"
            print(f"    {b['rank']:>4} {b['trial_id']:>6} {reward}{mark}{params:>12} {madds:>14}  {b['fingerprint']}")
    for f in status["recent_failures"]:
        print(f"  failed trial {f['trial_id']}: {f['error']}")
    for w in status["warnings"]:
        print(f"  warning: {w}")
    return 0
