"""Cheap, deterministic evaluators for testing the search machinery.

Each takes (architecture dict, seed, trial_dir) like any user evaluator.
"""

import hashlib
import json
import os
import time


def _score(architecture):
    """A known-optimum reward: bottlenecks at L4/L5, plus a small deterministic tie-breaker."""
    blocks = architecture["blocks"]
    score = sum(1 for b in blocks if b["level"] in (4, 5) and b["block_fn"] == "bottleneck") / len(blocks)
    digest = int(hashlib.sha256(json.dumps(blocks).encode()).hexdigest()[:8], 16) / 2**32
    return score + 0.01 * digest


def _mark(trial_dir):
    # One file per call: lets tests count how often an architecture was trained.
    with open(os.path.join(trial_dir, f"called-{os.getpid()}-{time.time_ns()}"), "w") as f:
        f.write("1")


def deterministic(architecture, seed, trial_dir):
    _mark(trial_dir)
    return {"AP": _score(architecture), "AP50": 0.5, "seed": seed}


def slow(architecture, seed, trial_dir):
    _mark(trial_dir)
    time.sleep(float(os.environ.get("TOY_SLEEP", "0.3")))
    return {"AP": _score(architecture), "seed": seed}


def raises(architecture, seed, trial_dir):
    raise RuntimeError("evaluator exploded on purpose")


def returns_nan(architecture, seed, trial_dir):
    return {"AP": float("nan")}


def chaos(architecture, seed, trial_dir):
    """Dies, raises, returns NaN or succeeds, by the trial's seed."""
    kind = seed % 4
    if kind == 0:
        os._exit(3)  # the worker process dies
    if kind == 1:
        raise ValueError(f"chaos: trial with seed {seed} raised")
    if kind == 2:
        return {"AP": float("nan")}
    return {"AP": _score(architecture)}


def trivial(architecture, seed, trial_dir):
    return {"AP": 0.5}


def waits_for_file(architecture, seed, trial_dir):
    """Blocks until the file named by TOY_WAIT_FOR exists (a test holds a trial in flight)."""
    path = os.environ["TOY_WAIT_FOR"]
    deadline = time.time() + 300
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.05)
    return {"AP": _score(architecture), "seed": seed}


def loss_diverges(architecture, seed, trial_dir):
    """Raises the trainer's own error for a NaN loss (a deterministic outcome of architecture and seed)."""
    _mark(trial_dir)
    from proxy_trainer.training.errors import NonFiniteLossError

    raise NonFiniteLossError("training stopped at step 3/100: non-finite loss (loss nan)")


def _note_worker(trial_dir, **extra):
    """Writes where and since when this attempt runs (worker-<pid>.json): tests kill or check that process."""
    import ray

    note = {"pid": os.getpid(), "node": ray.util.get_node_ip_address(), "start": time.time(), **extra}
    with open(os.path.join(trial_dir, f"worker-{os.getpid()}.json"), "w") as f:
        json.dump(note, f)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def hangs_on_trial_0(architecture, seed, trial_dir):
    """Trial 0 hangs for an hour; the others report how many of trial 0's workers are still alive."""
    _mark(trial_dir)
    _note_worker(trial_dir)
    if os.path.basename(os.path.normpath(trial_dir)) == "000000":
        time.sleep(3600)
    first = os.path.join(os.path.dirname(os.path.normpath(trial_dir)), "000000")
    pids = [int(n[len("worker-") : -len(".json")]) for n in os.listdir(first) if n.startswith("worker-")]
    return {"AP": _score(architecture), "trial0_workers": len(pids), "trial0_workers_alive": sum(map(_alive, pids))}


def noted_slow(architecture, seed, trial_dir):
    """Notes its worker (pid, Ray node) and start, sleeps TOY_SLEEP seconds, then scores."""
    _mark(trial_dir)
    _note_worker(trial_dir)
    time.sleep(float(os.environ.get("TOY_SLEEP", "0.3")))
    return {"AP": _score(architecture), "seed": seed}


def exits(architecture, seed, trial_dir):
    """Its worker process dies (os._exit) every time."""
    _mark(trial_dir)
    _note_worker(trial_dir)
    os._exit(7)


def fails_by_seed(architecture, seed, trial_dir):
    """Raises for a third of the trials (by seed), scores the others: a search with failures, in-process."""
    if seed % 3 == 0:
        raise RuntimeError(f"toy failure: trial with seed {seed} raised on purpose")
    return {"AP": _score(architecture), "AP50": 0.5}


# ----- a proxy and a reference of known agreement (tests/nas/test_proxy_check.py) -----------------
# An architecture's true quality q is uniform in [0, 1) (from its blocks); the proxy reports
# q + N(0, TOY_PROXY_NOISE) and the reference q + N(0, TOY_REFERENCE_NOISE), each draw fixed by the
# architecture, the seed and the recipe, so the rank correlation between the two is known in law.


def quality(architecture):
    return int(hashlib.sha256(json.dumps(architecture["blocks"]).encode()).hexdigest()[8:16], 16) / 2**32


def _gauss(architecture, seed, salt):
    import random

    key = hashlib.sha256(f"{salt}:{seed}:{json.dumps(architecture['blocks'])}".encode()).hexdigest()
    return random.Random(key).gauss(0.0, 1.0)


def correlated_proxy(architecture, seed, trial_dir):
    """The proxy: quality plus noise, and a two-epoch learning curve (the second epoch is the final AP)."""
    _mark(trial_dir)
    q = quality(architecture)
    ap = q + float(os.environ.get("TOY_PROXY_NOISE", "0.1")) * _gauss(architecture, seed, "proxy")
    return {"AP": ap, "AP_epoch_1": 0.5 * ap, "AP_epoch_2": ap, "steps": 10, "train_s": 0.01, "steps_run": 10}


def correlated_reference(architecture, seed, trial_dir):
    """The reference: the same quality with its own noise."""
    _mark(trial_dir)
    q = quality(architecture)
    return {"AP": q + float(os.environ.get("TOY_REFERENCE_NOISE", "0.1")) * _gauss(architecture, seed, "reference")}


# ----- learning curves that cross, for multi-fidelity searches (tests/nas/test_fidelity*.py) -------------
# AP(e) = a * (1 - exp(-e / tau)): the asymptote a and the time constant tau are fixed by the architecture,
# so a slow starter with a high asymptote overtakes a fast one. The trial directory holds the epochs trained
# so far ("checkpoint"); a call continues from there and says how many epochs it trained.


def curve_ap(architecture, epochs):
    import math

    a = 0.1 + 0.3 * quality(architecture)
    tau = 0.3 + 3.0 * (int(hashlib.sha256(json.dumps(architecture["blocks"]).encode()).hexdigest()[16:24], 16) / 2**32)
    return a * (1.0 - math.exp(-epochs / tau))


def curves(architecture, seed, trial_dir, epochs=5.0):
    _mark(trial_dir)
    path = os.path.join(trial_dir, "toy_checkpoint.json")
    done = json.load(open(path))["epochs"] if os.path.exists(path) else 0.0
    if done > epochs:
        raise RuntimeError(f"asked to train to epoch {epochs} but the checkpoint is at {done}")
    time.sleep(float(os.environ.get("TOY_SLEEP", "0")))
    with open(path + ".tmp", "w") as f:
        json.dump({"epochs": epochs}, f)
    os.replace(path + ".tmp", path)
    return {"AP": curve_ap(architecture, epochs), "epochs_run": epochs - done, "seed": seed}
