"""Search algorithms at the quick start's budget: 36 trials on a stand-in for the synthetic reward.

Measured trials of ``synthetic_smoke`` split in two: about half of the
architectures reach AP 0.2-0.4, the rest stay near 0.01 whatever the seed,
mostly those whose L3 output block takes no parent at L2 or L3. This bench
scores architectures by that rule alone (0.3 or 0.01), so that a controller
setting can be judged over many seeds in seconds instead of 10 minutes per
search, and prints, per setting: the mean reward in each third of a 36-trial
search (2 proposals in flight, as the quick start runs), how many seeds
improved from the first third to the last, and how many distinct
architectures a search tried (a policy that collapses onto one architecture
only repeats it).

Usage::

    python bench/bench_short_search.py [--seeds 16] [--trials 36]

Writes ``bench/results/short_search.json`` (``--output``; ``--output=`` writes nothing), from which
the README's figures are rendered (``bench/readme_results.py``).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench_controllers import REWARDS, VARIANTS, run_search  # noqa: E402

from bench import results_io  # noqa: E402
from search_space import Architecture, SearchSpace  # noqa: E402

GOOD, BAD = 0.3, 0.01


def l3_output_rule(arch: Architecture, space: SearchSpace) -> float:
    """0.3 if the L3 output block has a parent at L2 or L3 (stem blocks are L2), else 0.01."""

    def level(index: int) -> int:
        return 2 if index < space.num_stem else arch.blocks[index - space.num_stem].level

    output = next(b for b in arch.blocks if b.is_output and b.level == 3)
    return GOOD if any(level(p) <= 3 for p in output.parents) else BAD


# label -> (registered algorithm, ControllerConfig overrides)
SETTINGS = {
    "reinforce, synthetic_smoke's (lr 0.05, m 2, decay 0.8)": (
        "reinforce",
        "policy_gradient.learning_rate=0.05,policy_gradient.update_every=2,policy_gradient.baseline_decay=0.8",
    ),
    "reinforce, lr 0.03, m 4": ("reinforce", "policy_gradient.learning_rate=0.03,policy_gradient.update_every=4"),
    "reinforce, NAS-RL (lr 6e-4, m 8)": ("reinforce", ""),
    "evolution, population 18": ("evolution", "evolution.population_size=18,evolution.tournament_size=6"),
    "random": ("random", ""),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--trials", type=int, default=36)
    parser.add_argument("--output", default=results_io.path("short_search"), help="result file ('': none)")
    args = parser.parse_args(argv)
    started = results_io.start(None if argv is None else [sys.argv[0], *argv])
    stored = {}

    REWARDS["l3_output_rule"] = l3_output_rule
    print(f"{args.trials} trials, 2 in flight, {args.seeds} seeds; reward {GOOD} or {BAD} by the L3-output rule")
    print(f"{'setting':<56}{'mean by thirds':>22}{'improved':>10}{'distinct':>10}")
    for label, (algorithm, overrides) in SETTINGS.items():
        VARIANTS[label] = (algorithm, overrides)
        thirds, improved, distinct = [], 0, []
        for seed in range(args.seeds):
            run = run_search("l3_output_rule", label, seed, args.trials, 2, "")
            parts = [float(np.mean(p)) for p in np.array_split(np.asarray(run.rewards), 3)]
            thirds.append(parts)
            improved += parts[2] > parts[0]
            distinct.append(len(set(run.fingerprints)))
        mean = " ".join(f"{v:.3f}" for v in np.mean(thirds, axis=0))
        print(f"{label:<56}{mean:>22}{improved:>6}/{args.seeds:<3}{np.mean(distinct):>10.1f}")
        stored[label] = {
            "algorithm": algorithm,
            "overrides": overrides,
            "mean_reward_by_thirds": [float(v) for v in np.mean(thirds, axis=0)],
            "improved": int(improved),
            "distinct_mean": float(np.mean(distinct)),
            "by_seed": thirds,
        }
    if args.output:
        figures = {"settings": {"trials": args.trials, "in_flight": 2, "good": GOOD, "bad": BAD},
                   "seeds": list(range(args.seeds)), "settings_measured": stored}  # fmt: skip
        print(f"wrote {results_io.write(args.output, started, figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
