"""nas-search report: one self-contained HTML file of a search, opened in a real headless Chromium."""

import base64
import hashlib
import html
import json
import os
import random
import re
import subprocess
import sys
import time

import pytest

from experiments.overrides import apply_overrides, config_to_dict
from experiments.registry import get_experiment
from nas import cli
from nas.report import REPORT_NAME, build_report, write_report
from nas.search_runner import start_or_resume
from nas.workdir import Workdir
from search_space import DecisionEncoding, architecture_to_dict, sample_decisions
from tests.nas import browser
from tests.nas.test_search_loop import make_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECTION_IDS = ("glance", "rewards", "costs", "top", "controller", "failures", "config")
needs_chromium = pytest.mark.skipif(browser.CHROMIUM is None, reason=browser.SKIP_REASON)


def tree(path):
    """Every file under ``path``: its bytes' hash and its modification time."""
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = (hashlib.sha256(f.read()).hexdigest(), os.stat(full).st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """A real 8-trial REINFORCE search in this process: a third of its trials fail; it refreshes its report."""
    wd = str(tmp_path_factory.mktemp("report") / "s")
    config = make_config(
        "fails_by_seed",
        **{"search.max_trials": 8, "search.report_every": 4, "search.snapshot_every": 3, "search.max_attempts": 1},
        **{"reward.cost": "multiply_adds", "reward.cost_target": 5.6e9},  # a cost-aware reward: its target is drawn
    )
    summary = start_or_resume(config, wd, quiet=True)
    assert summary["failed"] > 0 and summary["completed"] > 0, summary
    return wd


def assert_renders(path, tmp_path, height=4000):
    """Opens the report in Chromium: every section, every picture decoded, no console message, ink on the page."""
    result = browser.open_report(path, str(tmp_path), height=height)
    assert not result.console, result.console
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in result.dom, sid
    shown = re.search(r'data-images="(\d+)/(\d+)"', result.dom)
    assert shown, "the page's load handler did not run"
    assert shown.group(1) == shown.group(2) and int(shown.group(2)) > 0, shown.group(0)
    share, colours = browser.ink(result.screenshot)
    assert share > 0.05 and colours > 50, (share, colours)
    return result


def test_a_running_search_refreshes_its_report(search):
    path = os.path.join(search, REPORT_NAME)
    assert os.path.exists(path)
    text = open(path).read()
    assert "8 of 8 done" in text  # the last result's


@needs_chromium
def test_the_report_command_writes_only_its_file_and_it_renders(search, tmp_path, capsys):
    os.remove(os.path.join(search, REPORT_NAME))
    before = tree(search)
    assert cli.main(["nas-search", "report", f"--workdir={search}", "--top=3", "--json"]) == 0
    path = json.loads(capsys.readouterr().out)["file"]
    assert path == os.path.join(search, REPORT_NAME)
    after = tree(search)
    assert set(after) - set(before) == {REPORT_NAME} and {k: after[k] for k in before} == before
    text = open(path).read()
    # Self-contained: nothing to fetch, a policy that forbids fetching, pictures inline.
    assert not re.search(r'(src|href)="(?!data:|#)', text)
    assert "default-src 'none'" in text
    assert text.count('<div class="arch"') == 3
    with open(os.path.join(search, "trials.jsonl")) as f:
        errors = [json.loads(line)["error"] for line in f if '"event":"failed"' in line]
    assert errors and all(html.escape(e) in text for e in errors)
    assert "controller.policy_gradient.update_every = 3" in text  # the frozen config
    assert "drawn from the policy at the start" in text
    # The downloads are export's files.
    from nas.commands.export import export_best

    exported = export_best(search, 1, str(tmp_path / "best.json"), "json")[0]
    uri = re.search(r'download="rank01_trial\d+\.json" href="data:application/json;base64,([^"]+)"', text).group(1)
    assert base64.b64decode(uri).decode() == open(exported).read()
    (tmp_path / "specs").mkdir()
    (specs,) = export_best(search, 1, str(tmp_path / "specs"), "block_specs")
    name = os.path.basename(specs)
    uri = re.search(rf'download="{re.escape(name)}" href="data:application/json;base64,([^"]+)"', text).group(1)
    assert base64.b64decode(uri).decode() == open(specs).read()
    assert "The dashed line is the cost-aware reward's target (5.6 billion multiply-adds)" in text
    result = assert_renders(path, tmp_path, height=9000)
    assert result.seconds < 30, result.seconds


@needs_chromium
def test_the_browser_check_sees_a_broken_picture(search, tmp_path):
    # The check itself can fail: a picture that does not decode is a console error and a visible warning.
    text = open(write_report(search, str(tmp_path / "ok.html"), top=1)).read()
    broken = tmp_path / "broken.html"
    broken.write_text(text.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1))
    result = browser.open_report(str(broken), str(tmp_path))
    assert any("image(s) did not load" in line for line in result.console), result.console
    shown = re.search(r'data-images="(\d+)/(\d+)"', result.dom)
    assert int(shown.group(1)) == int(shown.group(2)) - 1


def test_another_output_leaves_the_workdir_untouched_and_the_runner_unimported(search, tmp_path):
    before = tree(search)
    out = tmp_path / "elsewhere.html"
    code = (
        "import sys; from nas import cli\n"
        f"assert cli.main(['nas-search', 'report', '--workdir={search}', '--output={out}']) == 0\n"
        "print(sorted(m for m in sys.modules if m in ('nas.search_runner', 'ray')))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines() == [str(out), "[]"]
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert tree(search) == before


@pytest.mark.parametrize("kind", ["missing", "not_a_search", "corrupt_config"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, kind, search):
    wd = tmp_path / "w"
    if kind == "not_a_search":
        wd.mkdir()
        (wd / "notes.txt").write_text("hello")
    elif kind == "corrupt_config":
        wd.mkdir()
        for name in ("config.json", "search.json"):
            (wd / name).write_text(open(os.path.join(search, name)).read())
        (wd / "config.json").write_text("{not json")
    before = sorted(os.listdir(wd)) if wd.exists() else None
    assert cli.main(["nas-search", "report", f"--workdir={wd}"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nas-search report: error: "), lines
    assert ("holds no search" in lines[0]) if kind != "corrupt_config" else ("corrupt" in lines[0])
    assert (sorted(os.listdir(wd)) if wd.exists() else None) == before  # nothing written


@needs_chromium
@pytest.mark.parametrize("algorithm", ["random", "evolution"])
def test_algorithms_without_a_policy_are_read_off_their_proposals(tmp_path, algorithm):
    wd = str(tmp_path / "s")
    config = make_config(
        **{"search.max_trials": 6, "controller.algorithm": algorithm, "search.report_every": 0},
        **({"controller.evolution.population_size": 3, "controller.evolution.tournament_size": 2}
           if algorithm == "evolution" else {}),
    )  # fmt: skip
    start_or_resume(config, wd, quiet=True)
    path = write_report(wd)
    text = open(path).read()
    assert f"the algorithm ({algorithm}) has no policy to draw from" in text
    assert "first 3 proposals (trials 0-2)" in text and "latest 3 proposals (trials 3-5)" in text
    assert_renders(path, tmp_path)


@needs_chromium
def test_a_search_with_no_completed_trial(tmp_path):
    wd = str(tmp_path / "s")
    config = make_config("raises", **{"search.max_trials": 3, "search.max_attempts": 1, "search.report_every": 3})
    assert start_or_resume(config, wd, quiet=True)["completed"] == 0
    text = open(os.path.join(wd, REPORT_NAME)).read()
    assert text.count("No completed trial yet") == 1 and "evaluator exploded on purpose" in text
    assert "0 of 3 done" not in text and "3 of 3 done: 0 completed" in text
    assert_renders(os.path.join(wd, REPORT_NAME), tmp_path)


def test_a_report_that_cannot_be_written_is_a_warning_and_an_older_workdir_resumes(tmp_path, capsys):
    wd = str(tmp_path / "s")
    config = make_config(**{"search.max_trials": 2, "search.report_every": 0, "controller.algorithm": "random"})
    start_or_resume(config, wd, quiet=True)
    assert not os.path.exists(os.path.join(wd, REPORT_NAME))
    # A search begun before search.report_every existed: its frozen config lacks the key (its checksum
    # covers only the fixed keys, which this leaves as they were).
    config_path = os.path.join(wd, "config.json")
    data = json.load(open(config_path))
    del data["search"]["report_every"]
    json.dump(data, open(config_path, "w"))
    assert Workdir(wd).config().search.report_every == 10
    os.mkdir(os.path.join(wd, REPORT_NAME))  # the report's place is taken: it cannot be written
    capsys.readouterr()
    summary = start_or_resume(
        None, wd, runtime_overrides={"search.max_trials": 4, "search.report_every": 1}, quiet=True
    )
    assert summary["completed"] == 4
    warnings = [line for line in capsys.readouterr().err.splitlines() if "report" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: the search report was not written: "), warnings
    assert json.load(open(config_path))["search"]["report_every"] == 1  # a runtime key, recorded


def synthetic_search(wd, n, failed_every=20):
    """A workdir whose trial log holds ``n`` finished trials, written directly (no training, no controller)."""
    config = apply_overrides(
        get_experiment("spinenet49_coco_proxy"), {"controller.algorithm": "random", "search.max_trials": n}
    )
    workdir = Workdir(wd)
    workdir.create(config_to_dict(config))
    encoding = DecisionEncoding(config.search_space)
    rng = random.Random(0)
    t0 = time.time() - 3600
    seq = 0
    lines = []

    def add(event, **fields):
        nonlocal seq
        lines.append(json.dumps({"event": event, "seq": seq, "time": t0 + seq * 0.2, **fields}))
        seq += 1

    for tid in range(n):
        decisions = sample_decisions(encoding, rng)
        arch = encoding.decode(decisions)
        proposal = {"proposal_id": tid, "decisions": decisions, "policy_version": 0, "data": {}}
        add("proposed", trial_id=tid, proposal=proposal, architecture=architecture_to_dict(arch),
            fingerprint=arch.fingerprint(), seed=tid)  # fmt: skip
        add("started", trial_id=tid, attempt=1)
        if tid % failed_every == 7:
            add("failed", trial_id=tid, error=f"RuntimeError: synthetic failure {tid}\nsecond line")
            continue
        ap = rng.uniform(0.0, 0.3) * (1 + tid / n)
        madds = rng.randint(2_000_000_000, 9_000_000_000)
        metrics = {"AP": ap, "AP50": ap * 1.6, "params": rng.randint(1_500_000, 4_000_000), "multiply_adds": madds}
        add("completed", trial_id=tid, metrics=metrics, reward=ap, reused_from=None, worker="w:1", timings={})
    with open(workdir.log_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return wd


@needs_chromium
def test_a_search_of_5000_trials_stays_small_and_renders_in_seconds(tmp_path):
    wd = synthetic_search(str(tmp_path / "big"), 5000)
    start = time.time()
    path = write_report(wd)
    built = time.time() - start
    size = os.path.getsize(path)
    assert size < 3_000_000, size
    text = open(path).read()
    assert "5000 of 5000 done" in text
    assert "The latest 100 of 250 failed trials" in text
    result = assert_renders(path, tmp_path, height=6000)
    assert result.seconds < 20, result.seconds
    print(f"5000 trials: built in {built:.1f} s, {size / 1e6:.2f} MB, rendered in {result.seconds:.1f} s")


def test_build_report_reads_a_running_search_without_writing(search):
    before = tree(search)
    html = build_report(search, top=1)
    assert html.count('<div class="arch"') == 1
    assert tree(search) == before
