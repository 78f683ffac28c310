"""Sample efficiency of the search algorithms on cheap rewards over the real SpineNet-49 space.

Each reward is a function of the architecture with a known optimum of 1.0,
cheap enough to run thousands of trials:

- ``match_spinenet49``: the fraction of block attributes (level, type, each
  parent) equal to the published SpineNet-49's; 1.0 only at SpineNet-49.
- ``level_profile``: closeness of every block's level to an hourglass profile
  (intermediate blocks L2 up to L7 and back to L4, outputs L7 down to L3);
  the connections do not matter.
- ``connection_pattern``: every block should take the block just before it
  and the oldest one it may reach (the window start; the stem for outputs);
  levels and types do not matter.

For each reward, algorithm and seed the bench records the best reward after
each trial. The threshold is random search's best-of-``--trials`` (the median
over its seeds); the bench reports how many trials each algorithm needs to
reach it (goal: a third of random search's budget), and the time per proposal
and per policy update. Results may arrive out of order: with ``--workers W``
the bench keeps W proposals in flight and answers a random one each time.

Usage (6 minutes of wall time on 2 cores shared with other work, 20 when they were
busier; 1.9 GB peak memory)::

    python bench/bench_controllers.py --seeds 5 --trials 1000 --jobs 2
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from search_space import Architecture, DecisionEncoding, SearchSpace, spinenet49  # noqa: E402

# label -> (registered algorithm, ControllerConfig overrides). The first four run with the
# defaults (NAS-RL's for the LSTM policy); the last quadruples Adam's step, which suits a
# budget of a thousand trials (NAS-RL's 6e-4 was set for runs of about 12,800).
VARIANTS = {
    "random": ("random", ""),
    "evolution": ("evolution", ""),
    "reinforce": ("reinforce", ""),
    "ppo": ("ppo", ""),
    "reinforce_lr4x": ("reinforce", "policy_gradient.learning_rate=0.0024"),
}
POLICY_GRADIENT = ("reinforce", "ppo")
# Intermediate blocks climb L2..L7 and come back down to L4; outputs run L7 down to L3.
HOURGLASS = (2, 3, 4, 5, 6, 7, 7, 6, 5, 4, 7, 6, 5, 4, 3)


def match_spinenet49(arch: Architecture, space: SearchSpace) -> float:
    """Fraction of (level, block type, parent, parent) equal to SpineNet-49's, over all blocks."""
    target = spinenet49()
    hits = 0
    for got, want in zip(arch.blocks, target.blocks):
        hits += (got.level == want.level) + (got.block_fn == want.block_fn)
        hits += len(set(got.parents) & set(want.parents))
    return hits / (4 * len(target.blocks))


def level_profile(arch: Architecture, space: SearchSpace) -> float:
    """1 - mean |level - hourglass level| / 5 (1.0 for the hourglass, reachable with the shifts)."""
    span = space.max_level - space.min_level
    return 1.0 - float(np.mean([abs(b.level - t) for b, t in zip(arch.blocks, HOURGLASS)])) / span


def connection_pattern(arch: Architecture, space: SearchSpace) -> float:
    """Half a point per block for parent ``idx - 1``, half for the oldest reachable parent."""
    m = space.num_stem
    score = 0.0
    for k, b in enumerate(arch.blocks):
        idx = m + k
        oldest = 0 if b.is_output else space.window_start(idx)
        score += 0.5 * (b.parents[1] == idx - 1) + 0.5 * (b.parents[0] == oldest)
    return score / len(arch.blocks)


REWARDS = {f.__name__: f for f in (match_spinenet49, level_profile, connection_pattern)}


@dataclasses.dataclass
class Run:
    """One (reward, algorithm, seed) search."""

    reward: str
    algorithm: str
    seed: int
    rewards: list[float]
    propose_ms: list[float]
    update_ms: list[float]
    feedback_ms: list[float]
    fingerprints: list[str] = dataclasses.field(default_factory=list)

    @property
    def best(self) -> np.ndarray:
        return np.maximum.accumulate(np.asarray(self.rewards))


def run_search(reward: str, label: str, seed: int, trials: int, workers: int, overrides: str) -> Run:
    """Runs one search of variant ``label`` in this process (a worker of the pool)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from controller import ControllerConfig, build_controller
    from experiments.overrides import apply_overrides, parse_override_string

    space = SearchSpace()
    encoding = DecisionEncoding(space)
    algorithm, own = VARIANTS[label]
    config = ControllerConfig(algorithm=algorithm)
    for text in (own, overrides):
        config = apply_overrides(config, parse_override_string(text))
    controller = build_controller(config, encoding, seed)
    score = REWARDS[reward]
    order = random.Random(f"bench:{seed}")
    run = Run(reward, label, seed, [], [], [], [])
    flying = []

    def propose():
        t0 = time.perf_counter()
        flying.append(controller.propose())
        run.propose_ms.append(1e3 * (time.perf_counter() - t0))

    for _ in range(min(workers, trials)):
        propose()
    while flying:
        p = flying.pop(order.randrange(len(flying)))
        r = score(p.architecture, space)
        version = controller.stats()["policy_version"]
        t0 = time.perf_counter()
        controller.feedback(p, r)
        ms = 1e3 * (time.perf_counter() - t0)
        updated = algorithm in POLICY_GRADIENT and controller.stats()["policy_version"] != version
        (run.update_ms if updated else run.feedback_ms).append(ms)
        run.rewards.append(r)
        run.fingerprints.append(p.architecture.fingerprint())
        if len(run.propose_ms) < trials:
            propose()
    return run


def time_calls(label: str, proposals: int) -> tuple[list[float], list[float]]:
    """Times ``propose`` and the policy update alone in this process (default TF threads), after warm-up."""
    from controller import ControllerConfig, build_controller
    from experiments.overrides import apply_overrides, parse_override_string

    space = SearchSpace()
    algorithm, own = VARIANTS[label]
    config = apply_overrides(ControllerConfig(algorithm=algorithm), parse_override_string(own))
    controller = build_controller(config, DecisionEncoding(space), 0)
    propose_ms, update_ms = [], []
    for i in range(proposals + config.policy_gradient.update_every):  # the first update compiles: not timed
        t0 = time.perf_counter()
        p = controller.propose()
        if i:
            propose_ms.append(1e3 * (time.perf_counter() - t0))
        version = controller.stats()["policy_version"]
        t0 = time.perf_counter()
        controller.feedback(p, match_spinenet49(p.architecture, space))
        if version and controller.stats()["policy_version"] != version:
            update_ms.append(1e3 * (time.perf_counter() - t0))
    return propose_ms, update_ms


def trials_to_reach(run: Run, threshold: float) -> int | None:
    """1-based trial at which the best reward first reaches ``threshold``; None if never."""
    hit = np.nonzero(run.best >= threshold - 1e-12)[0]
    return int(hit[0]) + 1 if len(hit) else None


def _median(values):
    return statistics.median(values) if values else float("nan")


def report(runs: list[Run], trials: int, seeds: int, plot_path: str) -> None:
    """Prints the table and writes the plot."""
    by = {}
    for r in runs:
        by.setdefault((r.reward, r.algorithm), []).append(r)
    print(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores)")
    print(f"threshold = random search's best-of-{trials} (median over {seeds} seeds); goal: <= {trials // 3} trials")
    header = f"{'reward':<20} {'algorithm':<15} {'best@100':>8} {'best@333':>8} {'best@' + str(trials):>9} "
    header += f"{'trials to threshold (median; per seed)':<52} {'reached':>7}"
    print(header)
    print("-" * len(header))
    thresholds = {}
    for reward in REWARDS:
        randoms = by.get((reward, "random"))
        if not randoms:
            continue
        thresholds[reward] = statistics.median(float(r.best[-1]) for r in randoms)
        print(f"{reward} threshold {thresholds[reward]:.4f}")
        for algorithm in VARIANTS:
            group = by.get((reward, algorithm), [])
            if not group:
                continue
            needed = [trials_to_reach(r, thresholds[reward]) for r in group]
            reached = [n for n in needed if n is not None]
            # A seed that never reaches it counts as more than the budget in the median.
            med = _median([n if n is not None else trials + 1 for n in needed])
            med_text = f">{trials}" if med > trials else f"{med:.0f}"
            per_seed = ",".join("-" if n is None else str(n) for n in needed)

            def at(k, group=group):
                return np.mean([r.best[min(k, len(r.best)) - 1] for r in group])

            print(
                f"{reward:<20} {algorithm:<15} {at(100):8.4f} {at(333):8.4f} {at(trials):9.4f} "
                f"{med_text + ' (' + per_seed + ')':<52} {len(reached)}/{len(group)}"
            )
    print("\ntime per call, ms: median / 95th percentile over all runs, without each run's first call")
    print("(the first sample traces the graph and the first update compiles it with XLA: shown apart)")
    for algorithm in VARIANTS:
        group = [r for r in runs if r.algorithm == algorithm]
        if not group:
            continue
        prop = np.concatenate([r.propose_ms[1:] for r in group])
        first = np.median([r.propose_ms[0] for r in group])
        line = f"  {algorithm:<15} propose {np.median(prop):6.2f} / {np.percentile(prop, 95):6.2f}"
        if any(len(r.update_ms) > 1 for r in group):
            upd = np.concatenate([r.update_ms[1:] for r in group])
            first_update = np.median([r.update_ms[0] for r in group])
            line += f"   update {np.median(upd):6.2f} / {np.percentile(upd, 95):6.2f}"
            line += f"   first sample {first:5.0f}, first update {first_update:5.0f}"
        print(line)
    _plot(by, thresholds, trials, plot_path)


def _plot(by, thresholds, trials, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rewards = [r for r in REWARDS if r in thresholds]
    fig, axes = plt.subplots(1, len(rewards), figsize=(5 * len(rewards), 4), squeeze=False)
    x = np.arange(1, trials + 1)
    for ax, reward in zip(axes[0], rewards):
        for algorithm in VARIANTS:
            group = by.get((reward, algorithm))
            if not group:
                continue
            best = np.stack([r.best for r in group])
            line = ax.plot(x, best.mean(0), label=algorithm)[0]
            ax.fill_between(x, best.min(0), best.max(0), color=line.get_color(), alpha=0.15)
        ax.axhline(thresholds[reward], color="gray", ls="--", lw=1, label=f"random best-of-{trials}")
        ax.axvline(trials / 3, color="gray", ls=":", lw=1)
        ax.set_title(reward)
        ax.set_xlabel("trials")
        ax.set_ylabel("best reward so far (mean, min-max over seeds)")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=80)
    print(f"\nplot written to {os.path.relpath(path, ROOT)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per (reward, algorithm)")
    parser.add_argument("--trials", type=int, default=1000, help="trials per search (random's budget)")
    parser.add_argument("--workers", type=int, default=1, help="proposals in flight (results come back out of order)")
    parser.add_argument("--jobs", type=int, default=2, help="searches run in parallel processes")
    parser.add_argument("--algorithms", default=",".join(VARIANTS), help=f"among {', '.join(VARIANTS)}")
    parser.add_argument("--rewards", default=",".join(REWARDS))
    parser.add_argument(
        "--params_override",
        default="",
        help="ControllerConfig overrides for every algorithm, e.g. 'policy_gradient.learning_rate=0.005'",
    )
    parser.add_argument(
        "--timing", type=int, default=400, help="proposals per policy-gradient variant in the solo timing (0: skip)"
    )
    parser.add_argument("--plot", default=os.path.join(ROOT, "bench", "results", "controllers.png"))
    args = parser.parse_args(argv)
    algorithms = [a for a in args.algorithms.split(",") if a]
    rewards = [r for r in args.rewards.split(",") if r]
    unknown = sorted(set(algorithms) - set(VARIANTS)) + sorted(set(rewards) - set(REWARDS))
    if unknown:
        parser.error(f"unknown {', '.join(unknown)}; algorithms: {', '.join(VARIANTS)}; rewards: {', '.join(REWARDS)}")
    if "random" not in algorithms:
        parser.error("--algorithms must include random: its best-of-trials is the threshold")
    # The slow policy-gradient searches first, so that the processes finish together.
    order = sorted(algorithms, key=lambda a: VARIANTS[a][0] not in POLICY_GRADIENT)
    jobs = [
        (rw, a, s, args.trials, args.workers, args.params_override)
        for a in order
        for rw in rewards
        for s in range(args.seeds)
    ]
    print(
        f"{len(jobs)} searches: {args.trials} trials, {args.seeds} seeds, {args.workers} in flight, "
        f"{args.jobs} processes; overrides {args.params_override or 'none'}"
    )
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(run_search, *zip(*jobs)))
    print(f"ran in {time.time() - t0:.0f} s")
    report(runs, args.trials, args.seeds, args.plot)
    timed = [a for a in algorithms if VARIANTS[a][0] in POLICY_GRADIENT] if args.timing > 0 else []
    if timed:
        print(f"\nsolo timing, ms: one process, nothing else of the bench running, {args.timing} proposals each")
        with ProcessPoolExecutor(max_workers=1) as pool:
            for label, (prop, upd) in zip(timed, pool.map(time_calls, timed, [args.timing] * len(timed))):
                print(
                    f"  {label:<15} propose median {np.median(prop):6.2f}, p95 {np.percentile(prop, 95):6.2f}; "
                    f"update median {np.median(upd):6.2f}, p95 {np.percentile(upd, 95):6.2f} ({len(upd)} updates)"
                )
        print(f"  load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores, shared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
