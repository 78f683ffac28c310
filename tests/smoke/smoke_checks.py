"""The checks of smoke_install.sh on what an installed project prints and writes.

Run by the smoke script with the fresh environment's Python, one check at a time:
``python smoke_checks.py CHECK ARGS...``; a failed check exits non-zero with one line saying
what was found. Standard library only (plus ``packaging``, which TensorFlow installs).
Not a pytest module (pytest collects ``test_*.py`` only).
"""

import json
import math
import os
import re
import sys
import zipfile
from importlib import metadata

PACKAGES = ("controller", "experiments", "nas", "nas.commands", "proxy_trainer", "search_space")


def _load(path):
    with open(path) as f:
        return json.load(f)


def wheel(wheel_path, tracked_list):
    """Every tracked file of the packages (modules and data files alike) and both commands are in the wheel."""
    with zipfile.ZipFile(wheel_path) as z:
        names = set(z.namelist())
        entry_points = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
        scripts = z.read(entry_points).decode() if entry_points else ""
    with open(tracked_list) as f:
        wanted = [line.strip() for line in f if line.strip()]
    missing = [path for path in wanted if path not in names]
    if not wanted or missing:
        return f"the wheel lacks {len(missing)} of the {len(wanted)} tracked package files: {missing[:20]}"
    for script in ("nas-search = nas.cli:run", "nas-train = nas.train_cli:run"):
        if script not in scripts:
            return f"the wheel's entry points lack {script!r}: {scripts!r}"
    packages = sorted({p.rsplit("/", 1)[0].replace("/", ".") for p in wanted if p.endswith("/__init__.py")})
    print(f"{os.path.basename(wheel_path)}: all {len(wanted)} package files, {len(packages)} packages: {packages}")
    return None


def lock(constraints):
    """Every installed distribution is pinned in constraints.txt (markers evaluated here, once), at its version."""
    from packaging.requirements import Requirement

    def norm(name):
        return re.sub(r"[-_.]+", "-", name).lower()

    pins = {}
    with open(constraints) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                req = Requirement(line)
                if req.marker is None or req.marker.evaluate():
                    if norm(req.name) in pins:
                        return f"constraints.txt pins {req.name} twice for this Python: {line!r}"
                    pins[norm(req.name)] = str(req.specifier)
    bad = []
    for dist in metadata.distributions():
        name = norm(dist.metadata["Name"])
        if name not in ("pip", "spinenet-nas") and pins.get(name) != f"=={dist.version}":
            bad.append(f"{name} {dist.version} (constraints.txt: {pins.get(name, 'not pinned')})")
    if bad:
        return "installed, but not as constraints.txt pins it: " + "; ".join(sorted(bad))
    return None


def imports(root, mode):
    """The packages import, from the checkout for an editable install and from site-packages for the wheel."""
    import importlib

    root = os.path.realpath(root) + os.sep
    for name in PACKAGES:
        path = importlib.import_module(name).__file__
        if os.path.realpath(path).startswith(root) != (mode == "editable"):
            return f"{name} imported from {path} ({mode} install)"
    return None


def space(path):
    d = _load(path)
    want = {"num_blocks": 15, "permutations": 435456000, "num_decisions": 68, "experiment": "synthetic_smoke"}
    got = {k: d.get(k) for k in want}
    return None if got == want else f"nas-search space printed {got}, expected {want}"


def describe(path):
    # The reference implementation's figures for SpineNet-49 at 640 px and 90 classes (README).
    d = _load(path)
    want = {"params": 28631822, "backbone_params": 21920192, "multiply_adds": 85152135675}
    got = {k: d.get(k) for k in want}
    return None if got == want else f"nas-search describe printed {got}, expected {want}"


def search(search_path, status_path, trials):
    s, t = _load(search_path), _load(status_path)
    n = int(trials)
    if (s["completed"], s["failed"], t["completed"], t["failed"], t["proposed"]) != (n, 0, n, 0, n):
        return f"nas-search search printed {s}; status {t}"
    rewards = [b["reward"] for b in t["best"]]
    if len(rewards) != n or not all(0 < r < 1.01 for r in rewards) or s["best_reward"] != max(rewards):
        return f"nas-search status: rewards {rewards}, best reward {s['best_reward']}"
    return None


def train(printed_path, metrics_path, steps):
    m, saved = _load(printed_path), _load(metrics_path)
    keys = {"AP", "AP50", "AP75", "APs", "APm", "APl", "final_loss", "train_s", "eval_s"}
    if not keys <= set(m) or m["steps"] != int(steps) or not math.isfinite(m["final_loss"]):
        return f"nas-train printed {m}"
    if saved["metrics"] != m or not 0 <= m["AP"] <= 1:
        return f"nas-train: metrics.json holds {saved['metrics']}, printed {m}"
    return None


CHECKS = {f.__name__: f for f in (wheel, lock, imports, space, describe, search, train)}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in CHECKS:
        sys.exit(f"usage: smoke_checks.py {'|'.join(CHECKS)} ARGS...")
    error = CHECKS[sys.argv[1]](*sys.argv[2:])
    if error:
        sys.exit(f"{sys.argv[1]}: {error}")
