"""nas-search proxy-check: the statistics, a stand-in of known agreement, kill -9 and resume, bad input,
the check's directory kept apart from searches, status/plot showing the noise, and one run through the
real trainer on Ray."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy import stats

from nas.cli import main
from nas.proxy_stats import bootstrap_rank_correlations, rank_correlations, seed_noise, summarize_check, top_k_overlap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOY = "tests.nas.toy_evaluators"
LOCAL = "search.executor=local"


def cli(*args, env=None, timeout=600):  # a guard against a hang, not a time limit: a loaded machine is slow
    return subprocess.run(
        [sys.executable, "-m", "nas.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def in_process(capsys, *args):
    status = main(["nas-search", *args])
    out, err = capsys.readouterr()
    return status, out, err


def error_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


# ----- statistics against known inputs ---------------------------------------------------------


def test_rank_correlations_of_known_pairs():
    x = [1, 2, 3, 4, 5]
    # One swap at each end of a 5-ranking: d = (-1, 1, -1, 1, 0), rho = 1 - 6 * 4 / (5 * 24) = 0.8;
    # 2 of 10 pairs discordant: tau = (8 - 2) / 10 = 0.6.
    got = rank_correlations(x, [2, 1, 4, 3, 5])
    assert got["spearman"] == pytest.approx(0.8) and got["kendall"] == pytest.approx(0.6)
    assert rank_correlations(x, [50, 40, 30, 20, 10]) == {
        "spearman": pytest.approx(-1.0),
        "kendall": pytest.approx(-1.0),
    }
    assert rank_correlations(x, [1, 1, 1, 1, 1]) == {"spearman": None, "kendall": None}
    assert rank_correlations([1, 2], [1, 2]) == {"spearman": None, "kendall": None}


def test_bootstrap_intervals_are_seeded_and_bracket_the_value():
    rng = np.random.default_rng(5)
    q = rng.uniform(size=40)
    x, y = q + rng.normal(0, 0.2, 40), q + rng.normal(0, 0.2, 40)
    a = bootstrap_rank_correlations(x, y, resamples=500, seed=1)
    assert a == bootstrap_rank_correlations(x, y, resamples=500, seed=1)
    for name in ("spearman", "kendall"):
        assert a[name]["low"] < a[name]["value"] < a[name]["high"]
    assert a["spearman"]["value"] == pytest.approx(stats.spearmanr(x, y).statistic)
    perfect = bootstrap_rank_correlations([1, 2, 3, 4], [2, 4, 6, 8], resamples=200)
    assert perfect["spearman"] == {"value": 1.0, "low": 1.0, "high": 1.0}
    assert 0 < perfect["resamples_used"] < 200  # resamples of one repeated pair have no correlation: left out


def test_top_k_overlap_and_seed_noise():
    assert top_k_overlap([0.9, 0.8, 0.1, 0.2], [0.7, 0.1, 0.9, 0.0], 2) == 0.5
    assert top_k_overlap([1, 2, 3], [1, 2, 3], 3) == 1.0 and top_k_overlap([1, 2], [1, 2], 3) is None
    noise = seed_noise([[1.0, 3.0], [5.0, 7.0], []])
    # within: var([1, 3]) = var([5, 7]) = 2; between: var([2, 6]) = 8
    assert noise == {"archs": 2, "archs_with_seeds": 2, "between_var": 8.0, "within_var": 2.0,
                     "seed_std": pytest.approx(2**0.5), "snr": 4.0}  # fmt: skip
    assert seed_noise([[0.5], [0.7]])["seed_std"] is None  # one seed each: no within-architecture variance


def test_summary_by_epoch_compares_each_epoch_with_the_final_and_the_reference():
    per_arch = [
        {"proxy": [p], "reference": [r], "epochs": [{1: e1, 2: p}]}
        for p, r, e1 in [(0.1, 0.2, 0.3), (0.2, 0.1, 0.2), (0.3, 0.3, 0.1), (0.4, 0.4, 0.0)]
    ]
    s = summarize_check(per_arch)
    first, last = s["epochs"]
    assert first["epoch"] == 1 and first["spearman_with_final_proxy"] == pytest.approx(-1.0)
    assert last["spearman_with_final_proxy"] == pytest.approx(1.0)
    assert last["spearman_with_reference"] == pytest.approx(s["correlation"]["spearman"]["value"])
    assert s["archs_compared"] == 4 and s["top_k"]["1"] == 1.0


# ----- a stand-in proxy and reference of known agreement ---------------------------------------------


def population_spearman(proxy_sd, reference_sd, seeds, n=200_000):
    """Spearman's rho between the seed-mean proxy and reference APs in law (Monte Carlo of the toy's model)."""
    rng = np.random.default_rng(0)
    q = rng.uniform(size=n)
    x = q + rng.normal(0, proxy_sd / seeds**0.5, n)
    y = q + rng.normal(0, reference_sd / seeds**0.5, n)
    return stats.spearmanr(x, y).statistic


CORRELATED = [
    "--experiment=spinenet49_coco_proxy",
    f"--params_override={LOCAL},search.evaluator={TOY}:correlated_proxy",
    f"--reference=search.evaluator={TOY}:correlated_reference",
    "--archs=28",
    "--seeds=2",
]


@pytest.fixture(scope="module")
def correlated_check(tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("check") / "c")
    env = {"TOY_PROXY_NOISE": "0.1", "TOY_REFERENCE_NOISE": "0.3"}
    r = cli("proxy-check", f"--workdir={wd}", *CORRELATED, "--json", "--quiet", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return wd, json.loads(r.stdout), env


def test_the_correlation_of_a_known_stand_in_is_recovered_within_its_interval(correlated_check):
    wd, result, _ = correlated_check
    assert result["complete"] and result["num_archs"] == 30 and result["trials"]["completed"] == 120
    rho = result["correlation"]["spearman"]
    truth = population_spearman(0.1, 0.3, seeds=2)  # about 0.7
    assert rho["low"] <= truth <= rho["high"], (truth, rho)
    assert rho["high"] - rho["low"] < 0.5
    tau = result["correlation"]["kendall"]
    assert tau["low"] <= tau["value"] <= tau["high"] and tau["value"] < rho["value"]
    # The noise between seeds is the stand-in's: 0.1 for the proxy, 0.3 for the reference.
    assert 0.07 < result["noise"]["proxy"]["seed_std"] < 0.13
    assert 0.21 < result["noise"]["reference"]["seed_std"] < 0.39
    assert result["noise"]["proxy"]["snr"] > result["noise"]["reference"]["snr"]
    # The learning curve: epoch 1 is half of the final AP (same ranks), epoch 2 the final AP itself.
    assert [e["epoch"] for e in result["epochs"]] == [1, 2]
    assert result["epochs"][0]["spearman_with_final_proxy"] == pytest.approx(1.0)
    assert result["epochs"][1]["spearman_with_reference"] == pytest.approx(rho["value"])
    spinenet = next(a for a in result["archs"] if a["label"] == "spinenet49")
    assert spinenet["proxy"]["seeds"] == [0, 1] and spinenet["reference"]["seeds"] == [1000, 1001]
    assert result["cost"]["proxy"]["trials"] == 60 and result["cost"]["proxy"]["mean_s"] >= 0
    with open(os.path.join(wd, "proxy_check.json")) as f:
        assert json.load(f)["correlation"] == result["correlation"]
    for path in result["plots"]:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_same_command_again_trains_nothing_and_prints_the_table(capsys, correlated_check):
    wd, result, _ = correlated_check
    calls = sum(len(files) for _, _, files in os.walk(os.path.join(wd, "trials")))
    status, out, err = in_process(capsys, "proxy-check", f"--workdir={wd}", *CORRELATED, "--quiet")
    assert status == 0, err
    assert sum(len(files) for _, _, files in os.walk(os.path.join(wd, "trials"))) == calls
    assert "Spearman  proxy vs reference: " in out and "spinenet49" in out
    assert f"{result['correlation']['spearman']['value']:.3f}" in out
    # A different set in the same directory is refused, naming what differs.
    status, _, err = in_process(capsys, "proxy-check", f"--workdir={wd}", *CORRELATED[:-1], "--seeds=3")
    assert status == 2 and "differing: seeds" in error_line(err), err


# ----- kill -9 in the middle of a check, then the same command ------------------------------------


def test_kill_9_in_the_middle_then_the_same_command_completes_without_redoing_anything(tmp_path, capsys, monkeypatch):
    args = ["--experiment=spinenet49_coco_proxy", f"--params_override={LOCAL},search.evaluator={TOY}:slow",
            "--archs=2", "--seeds=1", "--quiet", "--json"]  # fmt: skip
    env = {"TOY_SLEEP": "0.2"}
    monkeypatch.setenv("TOY_SLEEP", env["TOY_SLEEP"])  # the runs not killed run in this process
    whole = str(tmp_path / "whole")
    status, out, err = in_process(capsys, "proxy-check", f"--workdir={whole}", *args)
    assert status == 0, err[-3000:]
    expected = json.loads(out)

    cut = str(tmp_path / "cut")
    log = os.path.join(cut, "trials.jsonl")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", "proxy-check", f"--workdir={cut}", *args],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline:
        if os.path.exists(log) and open(log).read().count('"event":"completed"') >= 3:
            break
        assert proc.poll() is None
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with open(log) as f:
        done_before = f.read().count('"event":"completed"')
    assert 3 <= done_before < 8
    assert not os.path.exists(os.path.join(cut, "proxy_check.json"))  # killed before its end

    status, out, err = in_process(capsys, "proxy-check", f"--workdir={cut}", *args)
    assert status == 0, err[-3000:]
    result = json.loads(out)
    for key in ("archs", "correlation", "noise", "epochs", "top_k"):
        if key == "archs":
            strip = [{k: a[k] for k in ("label", "fingerprint", "proxy", "reference")} for a in result[key]]
            assert strip == [{k: a[k] for k in ("label", "fingerprint", "proxy", "reference")} for a in expected[key]]
        else:
            assert result[key] == expected[key], key
    # Each of the 8 trials trained once, the one in flight when killed at most twice.
    calls = [len(os.listdir(os.path.join(cut, "trials", d))) for d in sorted(os.listdir(os.path.join(cut, "trials")))]
    assert len(calls) == 8 and sum(calls) <= 9 and max(calls) <= 2


# ----- bad input, and a check's directory is not a search's ---------------------------------------------


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("search") / "s")
    r = cli("search", "--experiment=spinenet49_coco_proxy", f"--workdir={wd}", f"--evaluator={TOY}:deterministic",
            "--max_trials=4", f"--params_override={LOCAL},search.report_every=0", "--quiet")  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    return wd


@pytest.mark.parametrize(
    "args, message",
    [
        (["--experiment=nope"], "unknown experiment 'nope'"),
        (["--arch_file=/no/such/arch.json"], "/no/such/arch.json: cannot read architecture file"),
        (["--reference=trainer.epochz=20"], "--reference: unknown key 'trainer.epochz'"),
        (["--reference=trainer.epochs=many"], "trainer.epochs: expected a number"),
        (["--reference=search.max_concurrent=1"], "the reference recipe is the proxy's own"),
        (["--from_search=/no/such/search"], "holds no search"),
        (["--top=3"], "--top needs --from_search"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, args, message):
    wd = tmp_path / "c"
    base = ["proxy-check", "--experiment=synthetic_smoke", f"--workdir={wd}", "--dry_run"]
    status, _, err = in_process(capsys, *base, *args)
    assert status == 2 and message in error_line(err), err
    assert not wd.exists()


def test_from_search_needs_a_finished_search_and_takes_its_best(capsys, finished_search, tmp_path):
    status, out, err = in_process(
        capsys, "proxy-check", f"--from_search={finished_search}", "--top=2", f"--workdir={tmp_path / 'c'}",
        "--dry_run", "--json",
    )  # fmt: skip
    assert status == 0, err
    plan = json.loads(out)
    assert [a["label"] for a in plan["archs"]] == ["search_rank1", "search_rank2", "random_0", "random_1"]
    assert plan["experiment"] == "spinenet49_coco_proxy" and plan["trials"] == 2 * 4 * 3
    # 5 epochs of 110,895 images at batch 64, and 20: ceil(5 * 110,895 / 64) and ceil(20 * 110,895 / 64) steps.
    assert plan["recipes"]["proxy"]["steps_per_trial"] == 8664
    assert plan["recipes"]["reference"]["steps_per_trial"] == 34655
    assert plan["step_seconds"] is None  # its trials do not say how long a step takes
    assert not (tmp_path / "c").exists()  # a dry run writes nothing

    with open(os.path.join(finished_search, "trials.jsonl")) as f:
        records = [json.loads(line) for line in f]
    proposed = next(r for r in records if r["event"] == "proposed")
    unfinished = tmp_path / "unfinished"
    os.makedirs(unfinished)
    for name in ("config.json", "search.json"):
        with open(os.path.join(finished_search, name)) as src, open(unfinished / name, "w") as dst:
            dst.write(src.read())
    with open(unfinished / "trials.jsonl", "w") as f:
        f.write(json.dumps({**proposed, "seq": 0}) + "\n")  # one trial proposed, none finished
    status, _, err = in_process(
        capsys, "proxy-check", f"--from_search={unfinished}", f"--workdir={tmp_path / 'c'}", "--dry_run"
    )
    assert status == 2 and "not a finished search (0 of 4 trials finished)" in error_line(err), err


def test_the_dry_run_projects_the_cost_of_the_coco_check(capsys):
    status, out, err = in_process(
        capsys, "proxy-check", "--experiment=spinenet49_coco_proxy", "--archs=18", "--seeds=2", "--dry_run",
        "--step_seconds=0.5",
    )  # fmt: skip
    assert status == 0, err
    # 20 archs x 2 seeds; 5 epochs of 110,895 images at batch 64 = 8,664 steps, the reference 4x.
    assert "20 archs x 2 seeds x 2 recipes = 80 trials" in out
    assert (
        "proxy     40 trials of 5 epochs = 8,664 steps" in out
        and "reference 40 trials of 20 epochs = 34,655 steps" in out
    )
    assert f"{40 * (8664 + 34655):,} steps x 0.5 s = {40 * (8664 + 34655) * 0.5 / 3600:.1f} trial-hours" in out


def test_a_search_and_a_check_never_share_a_directory(capsys, finished_search, correlated_check, tmp_path):
    check_dir, _, _ = correlated_check
    status, _, err = in_process(
        capsys, "proxy-check", "--experiment=spinenet49_coco_proxy", f"--workdir={finished_search}"
    )
    assert status == 2 and "holds a search, not a proxy check" in error_line(err)
    for command in ("status", "plot", "export"):
        status, _, err = in_process(capsys, command, f"--workdir={check_dir}")
        assert status == 2 and "holds a proxy check (nas-search proxy-check), not a search" in error_line(err), err
    r = cli("search", "--experiment=spinenet49_coco_proxy", f"--workdir={check_dir}", f"--evaluator={TOY}:trivial")
    assert r.returncode == 2 and "holds a proxy check" in error_line(r.stderr)
    assert not os.path.exists(os.path.join(check_dir, "config.json"))


def test_status_and_plot_show_the_noise_the_check_measured(capsys, finished_search, correlated_check):
    check_dir, result, _ = correlated_check
    std = result["noise"]["proxy"]["seed_std"]
    status, out, err = in_process(capsys, "status", f"--workdir={finished_search}", f"--proxy_check={check_dir}")
    assert status == 0, err
    assert f"reward std between seeds: {std:.3f} (proxy-check {check_dir}, 30 archs x 2 seeds" in out
    status, out, _ = in_process(
        capsys, "status", f"--workdir={finished_search}", f"--proxy_check={check_dir}", "--json"
    )
    best = json.loads(out)["best"]
    assert [b["within_noise_of_best"] for b in best] == [best[0]["reward"] - b["reward"] < std for b in best]
    assert any(b["within_noise_of_best"] for b in best[1:])  # the toy's rewards differ by less than 0.1
    status, out, err = in_process(capsys, "plot", f"--workdir={finished_search}", f"--proxy_check={check_dir}")
    assert status == 0, err
    status, _, err = in_process(capsys, "status", f"--workdir={finished_search}", f"--proxy_check={finished_search}")
    assert status == 2 and "no proxy-check result there" in error_line(err)


# ----- end to end: the real trainer on synthetic data, on a local Ray -----------------------------------


def test_a_tiny_check_through_the_real_trainer_on_ray(tmp_path):
    wd = str(tmp_path / "c")
    tiny = ("data.synthetic.num_images=16,data.holdout_size=8,trainer.epochs=2.0,trainer.warmup_steps=2,"
            "search.max_concurrent=2,search.trial_cpus=1")  # fmt: skip
    r = cli(
        "proxy-check", "--experiment=synthetic_smoke", f"--workdir={wd}", "--archs=0", "--seeds=1",
        f"--params_override={tiny}", "--json", env={"SPINENET_NAS_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout)
    assert result["complete"] and result["trials"]["completed"] == 4
    assert [a["label"] for a in result["archs"]] == ["spinenet49", "resnet_like"]
    # 8 training images at batch 8: 1 step an epoch; the proxy 2 epochs, the reference 4x as long.
    assert result["cost"]["proxy"]["steps"] == 2 and result["cost"]["reference"]["steps"] == 8
    assert result["reference_overrides"] == {"trainer.epochs": 8.0}
    assert [e["epoch"] for e in result["epochs"]] == [1, 2]
    for a in result["archs"]:
        assert set(a["proxy_by_epoch"]) == {"1", "2"} and a["proxy_by_epoch"]["2"] == a["proxy"]["mean"]
    with open(os.path.join(wd, "trials.jsonl")) as f:
        records = [json.loads(line) for line in f]
    done = {r["trial_id"]: r for r in records if r["event"] == "completed"}
    proxy_trial = next(
        r["trial_id"] for r in records if r["event"] == "proposed" and r["proposal"]["recipe"] == "proxy"
    )
    assert done[proxy_trial]["metrics"]["AP_epoch_1"] >= 0
    assert os.path.exists(os.path.join(wd, "trials", f"{proxy_trial:06d}", "epoch_ap.json"))
    assert result["cost"]["device"] == "CPU core" and result["cost"]["devices_per_trial"] == 1.0
