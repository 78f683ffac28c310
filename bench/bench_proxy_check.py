"""The proxy check of ``synthetic_smoke``, stored: does its reward rank architectures as 4x longer training does?

Runs ``nas-search proxy-check`` as a user types it (local Ray, one trial per core) and stores its
result (``proxy_check.json``: rank correlations with bootstrap intervals, seed noise, signal-to-noise,
per-epoch agreement, cost per trial) under ``bench/results/proxy_check.json`` with the common header
(command, commit, cores, load, wall time), from which the README's *Checking the proxy* figures are
rendered. The check's directory (``--workdir``) is kept: the same command continues a check cut short,
without redoing its finished trials.

Usage (12 architectures x 3 seeds x 2 recipes = 72 trials; about 45 minutes on 2 idle cores)::

    python bench/bench_proxy_check.py
    python bench/bench_proxy_check.py --archs=10 --seeds=3 --workdir=workdirs/proxy_check_synthetic
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import results_io  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default="synthetic_smoke")
    parser.add_argument("--archs", type=int, default=10, help="random architectures besides the two presets")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workdir", default=os.path.join(ROOT, "workdirs", "proxy_check_synthetic"))
    parser.add_argument("--output", default=results_io.path("proxy_check"), help="result file ('': none)")
    args = parser.parse_args(argv)
    run = results_io.start(None if argv is None else [sys.argv[0], *argv])
    cmd = ["nas-search", "proxy-check", f"--experiment={args.experiment}", f"--workdir={args.workdir}",
           f"--archs={args.archs}", f"--seeds={args.seeds}"]  # fmt: skip
    start = time.time()
    loads = []
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", *cmd[1:]], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}
    )
    while proc.poll() is None:
        loads.append(os.getloadavg()[0])
        time.sleep(30)
    if proc.returncode != 0:
        print(f"{' '.join(cmd)} exited {proc.returncode}", file=sys.stderr)
        return proc.returncode
    with open(os.path.join(args.workdir, "proxy_check.json")) as f:
        result = json.load(f)
    if args.output:
        stored = {
            "seeds": {"proxy": list(range(args.seeds)), "reference": [1000 + k for k in range(args.seeds)]},
            "check_command": " ".join(cmd[:3] + ["--workdir=W"] + cmd[4:]),
            "this_run_s": round(time.time() - start, 1),
            "load_1min_mean_during": round(sum(loads) / len(loads), 2) if loads else None,
            "result": result,
        }
        plot = os.path.join(args.workdir, "plots", "proxy_vs_reference.png")
        if os.path.exists(plot):  # the README shows it beside the figures
            stored["plot"] = os.path.relpath(os.path.splitext(args.output)[0] + ".png", ROOT)
            shutil.copyfile(plot, os.path.join(ROOT, stored["plot"]))
        print(f"wrote {results_io.write(args.output, run, stored)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
