"""``nas-search proxy-check``: does the reward rank architectures as longer training does, and how noisy is it?

Usage::

    nas-search proxy-check --experiment=E --workdir=W [--archs=N] [--arch_file=F ...]
        [--from_search=W2 --top=K] [--seeds=S] [--reference=OVERRIDES] [--dry_run --step_seconds=X] [--json]

Trains each architecture of the set with S seeds under the experiment's
recipe (the proxy, evaluated after every epoch too) and under the reference
recipe (``--reference``: overrides of the experiment; default: 4x its
training length), one trial per (architecture, recipe, seed), on Ray as a
search runs its trials (``nas.proxy_check``). Then prints a table and
writes ``W/proxy_check.json`` and ``W/plots/``. The same command continues a
check that was interrupted; ``--dry_run`` prints the plan and its projected
cost and writes nothing.
"""

from __future__ import annotations

import json

from absl import flags

from nas.cli_flags import FLAGS, UsageError, load_experiment_config

flags.DEFINE_integer(
    "archs",
    None,
    "Random architectures of the space to add to the set (default 10; with --from_search as many as --top; "
    "with --arch_file 0).",
    flag_values=FLAGS,
    lower_bound=0,
)
flags.DEFINE_multi_string("arch_file", None, "An architecture JSON file to check (repeatable).", flag_values=FLAGS)
flags.DEFINE_string(
    "from_search", None, "A finished search's workdir: check its --top best architectures.", flag_values=FLAGS
)
flags.DEFINE_integer("seeds", 3, "Training seeds per architecture and recipe.", flag_values=FLAGS, lower_bound=1)
flags.DEFINE_string(
    "reference",
    None,
    "The reference recipe, as overrides of the experiment (a.b=v,...); default: its training 4x longer.",
    flag_values=FLAGS,
)
flags.DEFINE_integer("sample_seed", 0, "Seed of the random architectures.", flag_values=FLAGS, lower_bound=0)
flags.DEFINE_bool("dry_run", False, "Print the plan and its projected cost; write nothing.", flag_values=FLAGS)
flags.DEFINE_float(
    "step_seconds",
    None,
    "Seconds per training step for --dry_run's projection (default: measured in --workdir or --from_search).",
    flag_values=FLAGS,
    lower_bound=0.0,
)

FLAGS_USED = (
    "experiment",
    "workdir",
    "config_file",
    "params_override",
    "archs",
    "arch_file",
    "from_search",
    "top",
    "seeds",
    "reference",
    "sample_seed",
    "ray_address",
    "dry_run",
    "step_seconds",
    "quiet",
    "json",
)


def _f(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def print_result(result: dict) -> None:
    """The check's figures as a table."""
    t = result["trials"]
    print(
        f"proxy check {result['workdir']}: {result['experiment']}, {result['num_archs']} archs x {result['seeds']} seeds; "
        f"reference: {', '.join(f'{k}={v}' for k, v in result['reference_overrides'].items())}; "
        f"trials {t['completed']} completed, {t['failed']} failed, {t['pending']} not run"
    )
    print(f"  {'architecture':<16} {'proxy AP':>17} {'reference AP':>17}  seeds")
    for a in result["archs"]:
        p, r = a["proxy"], a["reference"]
        print(
            f"  {a['label']:<16} {_f(p['mean']):>8} +- {_f(p['std']):<5} {_f(r['mean']):>8} +- {_f(r['std']):<5}  "
            f"{len(p['values'])}/{len(r['values'])}"
        )
    c = result["correlation"]
    for name in ("spearman", "kendall"):
        v = c[name]
        print(
            f"  {name.capitalize():<9} proxy vs reference: {_f(v['value'])} "
            f"[{_f(v['low'])}, {_f(v['high'])}] ({c['confidence']:.0%} bootstrap over {c['n']} archs)"
        )
    if result["top_k"]:
        print("  top-k overlap: " + ", ".join(f"top-{k} {_f(v, 2)}" for k, v in result["top_k"].items()))
    for recipe in ("proxy", "reference"):
        n = result["noise"][recipe]
        print(
            f"  {recipe:<9} std between seeds {_f(n['seed_std'])}, between archs {_f(n['between_var'] ** 0.5 if n['between_var'] is not None else None)}, "
            f"signal-to-noise (var between / var within) {_f(n['snr'], 2)}"
        )
    if result["epochs"]:
        print("  proxy AP after each epoch, Spearman with the final proxy AP / with the reference AP:")
        for e in result["epochs"]:
            print(
                f"    epoch {e['epoch']:>3}: mean AP {_f(e['mean_ap'])}  rho final {_f(e['spearman_with_final_proxy'], 2)}"
                f"  rho reference {_f(e['spearman_with_reference'], 2)}"
            )
    cost = result["cost"]
    for recipe in ("proxy", "reference"):
        c = cost[recipe]
        if c["trials"]:
            print(
                f"  cost per {recipe} trial: {_f(c['mean_s'], 0)} s, {_f(c['mean_device_s'], 0)} {cost['device']}-seconds "
                f"({c['trials']} trials, {c['steps']} steps)"
            )
    print(f"  written: {result['workdir']}/proxy_check.json, " + ", ".join(result.get("plots", [])))


def print_plan(plan: dict) -> None:
    """The dry run's plan as text."""
    print(
        f"proxy check plan: {plan['experiment']}, {len(plan['archs'])} archs x {plan['seeds']} seeds x 2 recipes = "
        f"{plan['trials']} trials; reference: {', '.join(f'{k}={v}' for k, v in plan['reference_overrides'].items())}"
    )
    for a in plan["archs"]:
        print(f"  {a['label']:<16} {a['source']}")
    for name, r in plan["recipes"].items():
        hours = f", {r['trial_hours']:.2f} trial-hours each" if r["trial_hours"] is not None else ""
        epochs = f"{r['epochs']:g} epochs = " if r["epochs"] is not None else ""
        print(
            f"  {name:<9} {r['trials']} trials of {epochs}{r['steps_per_trial']:,} steps "
            f"({r['train_images']:,} training images, {r['train_images_from']}){hours}"
            + (" + an evaluation after every epoch" if r["eval_every_epoch"] else "")
        )
    if plan["projected_trial_hours"] is not None:
        print(
            f"  projected: {plan['total_steps']:,} steps x {plan['step_seconds']:.4g} s = "
            f"{plan['projected_trial_hours']:.1f} trial-hours ({plan['step_seconds_from']}; evaluations not included)"
        )
    else:
        print(f"  projected: {plan['total_steps']:,} training steps; give --step_seconds=X for the trial-hours")
    print("  nothing was written (--dry_run)")


def cmd_proxy_check() -> int:
    """Runs (or continues) a proxy check, or prints its plan."""
    from nas.proxy_check import run_check
    from nas.proxy_check_plan import dry_run_plan, make_plan, measured_step_seconds

    if not FLAGS.workdir and not FLAGS.dry_run:
        raise UsageError("--workdir is required")
    if FLAGS.top is not None and not FLAGS.from_search:
        raise UsageError("--top needs --from_search")
    config = load_experiment_config() if FLAGS.experiment or not FLAGS.from_search else None
    plan = make_plan(
        config,
        archs=FLAGS.archs,
        arch_files=FLAGS.arch_file,
        from_search=FLAGS.from_search,
        top=FLAGS.top,
        seeds=FLAGS.seeds,
        reference=FLAGS.reference,
        sample_seed=FLAGS.sample_seed,
    )
    if FLAGS.dry_run:
        if FLAGS.step_seconds is not None:
            seconds, source = FLAGS.step_seconds, "--step_seconds"
        else:
            seconds, source = measured_step_seconds(FLAGS.workdir, FLAGS.from_search)
        out = dry_run_plan(plan, seconds, source)
        if FLAGS.json:
            print(json.dumps(out, indent=2))
        else:
            print_plan(out)
        return 0
    result = run_check(plan, FLAGS.workdir, ray_address=FLAGS.ray_address, quiet=FLAGS.quiet)
    if FLAGS.json:
        print(json.dumps(result, indent=2))
    else:
        print_result(result)
    return 130 if result["stopped"] else 0
