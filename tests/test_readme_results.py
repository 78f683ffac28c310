"""README figures come from stored results (bench/readme_results.py), and only from them.

The figures are rendered from ``bench/results/*.json``; these tests read those files (they run no
benchmark) and fail when the README and a stored result disagree, a section has no result, a result
lacks the header that says how it was measured, or a measured figure stands in the README outside a
rendered section. One test reads a training of SpineNet-49 on ``synthetic_smoke`` (about a minute on one
core; tests/conftest.py) to see the stored AP drift.
"""

import dataclasses
import os
import pathlib
import re

import pytest

from bench import readme_results, results_io

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

# What a measured figure looks like: a time, a rate, a size, a speed-up, an AP or reward value, a count of
# exact matches, a figure "by thirds". Settings (`search.trial_timeout_s` 600 s) are measured figures'
# look-alikes: they are written in code spans, which the check skips.
MEASURED = re.compile(
    r"\b\d+(?:[.,]\d+)*\s?(?:ms|s|seconds?|min|minutes?|hours?|h|img/s|images/s|trials/s|MB|GB)\b"
    r"|\b\d+(?:\.\d+)?x\b|\bAP\s+\d|\breward\s+\d|\b\d+/\d+\s+(?:exact|architectures)|\bby thirds\b|\b\d+m\d+s\b"
)
# Figures allowed outside a rendered section, each with the reason; each must still be in the README.
DATED_OBSERVATIONS = {
    "829 tests took 15 minutes on 2 cores": "the test suite's time, dated and with its commit (the suite is not a bench)",
    "added about 1.5 to 2 minutes each": "the same dated observation of CI",
}
# Sections another part of the project owns and renders (bench/bench_controllers.py's figures).
NOT_CHECKED_HERE = ("## Search algorithms",)


def unbacked_figures(text: str) -> list[str]:
    """Measured-looking figures of ``text`` outside rendered sections, code and the dated observations."""
    text = re.sub(r"<!-- results:([a-z0-9_]+) begin: .*?-->\n.*?<!-- results:\1 end -->", "", text, flags=re.S)
    for heading in NOT_CHECKED_HERE:
        start = text.find(heading + " ")
        if start >= 0:
            end = text.find("\n## ", start + 1)
            text = text[:start] + text[end if end >= 0 else len(text) :]
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`]*`", "`code`", text)
    for phrase in DATED_OBSERVATIONS:
        text = text.replace(phrase, "")
    return [text[max(0, m.start() - 50) : m.end() + 10].replace("\n", " ") for m in MEASURED.finditer(text)]


def benchmark_rows_outside_sections(text: str) -> list[str]:
    """Table rows of the Benchmarks section that no stored result renders."""
    start = text.index("## Benchmarks")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end >= 0 else len(text)]
    body = re.sub(r"<!-- results:([a-z0-9_]+) begin: .*?-->\n.*?<!-- results:\1 end -->", "", body, flags=re.S)
    return [line for line in body.splitlines() if line.startswith("|")]


def test_every_generated_readme_section_matches_its_stored_result():
    assert readme_results.problems(README) == []


def test_a_figure_edited_by_hand_or_a_section_without_a_result_is_caught():
    body = readme_results.sections(README)["faults"]
    edited = README.replace(body, body.replace("| 0 |", "| 1 |", 1))
    assert edited != README
    assert any("results:faults differs" in p for p in readme_results.problems(edited))
    bench_body = readme_results.sections(README)["benchmarks"]
    retyped = README.replace(bench_body, re.sub(r"\d\.\d\d", "9.99", bench_body, count=1))
    assert retyped != README
    assert any("results:benchmarks differs" in p for p in readme_results.problems(retyped))
    unbacked = README + "\n<!-- results:made_up begin: x -->\n| 1 |\n<!-- results:made_up end -->\n"
    assert any("results:made_up has no renderer" in p for p in readme_results.problems(unbacked))
    removed = README.replace(body, "")
    assert readme_results.problems(removed) != []


# Results stored before bench/results_io.py wrote the common header hold only these of its fields (and
# name their seeds in their own words); re-measuring them gives them the whole header.
FIRST_HEADER = {"command", "commit", "uncommitted_changes", "cpu_count", "load_average_start", "load_average_end",
                "date", "wall_s"}  # fmt: skip
COMMON_HEADER_SINCE = "2026-12-05"


def test_every_stored_result_says_how_it_was_measured():
    names = readme_results.stored()
    assert {"quickstart", "model", "synthetic_ap", "faults", "search_loop", "short_search"} <= set(names)
    header = set(results_io.header(results_io.start(["x"])))
    assert FIRST_HEADER < header
    for name in names:
        result = results_io.load(name)
        if result["date"] >= COMMON_HEADER_SINCE:
            missing = header - set(result)
            assert "seeds" in result, f"bench/results/{name}.json does not say which seeds it rests on"
        else:
            missing = FIRST_HEADER - set(result)
        assert not missing, f"bench/results/{name}.json lacks {sorted(missing)}"
        assert result["command"][0].endswith("python") and result["command"][1].startswith("bench/"), result["command"]
        assert len(result["commit"]) == 40 and len(result["load_average_start"]) == 3


def test_a_result_names_the_code_it_started_with_not_a_commit_made_while_it_ran():
    run = results_io.start(["bench/x.py"])
    assert run.commit == results_io._git("rev-parse", "HEAD") and len(run.commit) == 40
    earlier = dataclasses.replace(run, commit="0" * 40, uncommitted_changes=(" M bench/x.py",))
    header = results_io.header(earlier)
    assert header["commit"] == "0" * 40 and header["uncommitted_changes"] == [" M bench/x.py"]


def test_no_measured_figure_stands_outside_a_rendered_section():
    assert unbacked_figures(README) == []
    assert benchmark_rows_outside_sections(README) == []
    for phrase in DATED_OBSERVATIONS:
        assert phrase in README, f"the dated observation {phrase!r} is gone: drop it from DATED_OBSERVATIONS"


def test_a_hand_typed_figure_is_caught():
    typed = README.replace("## Status\n", "## Status\n\nA search takes 9m47s, a trial 30 s; mean reward 0.26.\n")
    assert len(unbacked_figures(typed)) == 3
    row = "| the quick-start search | `nas-search search` | 9m47s |\n"
    tabled = README.replace("## Layout", row + "\n## Layout")
    assert benchmark_rows_outside_sections(tabled) == [row.strip()]
    # A figure inside code or a rendered section is not a hand-typed one.
    assert unbacked_figures("`timeout 600 s`\n<!-- results:x begin: y -->\n30 s\n<!-- results:x end -->\n") == []


def test_the_quickstart_figures_rest_on_at_least_five_seeds_and_say_so():
    result = results_io.load("quickstart")
    seeds = result["summary"]["seeds"]
    assert len(seeds) >= 5 and len(set(seeds)) == len(seeds)
    assert [s["seed"] for s in result["searches"]] == seeds
    for text in (readme_results.sections(README)["quickstart"], readme_results.sections(README)["quickstart_rewards"]):
        assert f"{len(seeds)} " in text and "search.seed" in text


def test_stored_quickstart_figures_are_computed_from_its_trials():
    """The by-thirds figures are recomputed here from the per-trial rewards the result keeps."""
    import numpy as np

    result = results_io.load("quickstart")
    means = []
    for search in result["searches"]:
        rewards = [t["reward"] for t in search["per_trial"]]
        thirds = [float(np.mean(p)) for p in np.array_split(rewards, 3)]
        assert thirds == pytest.approx(search["mean_reward_by_thirds"], abs=1e-12)
        means.append(thirds)
    assert np.mean(means, axis=0) == pytest.approx(result["summary"]["mean_reward_by_thirds"], abs=5e-4)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_spinenet49_on_synthetic_smoke_reproduces_its_stored_ap(synthetic_smoke_spinenet49):
    """`nas-train` of SpineNet-49, seed 0, as a search's trial runs it (one core): the README's figure
    (the training is tests/conftest.py's, which tests/proxy_trainer/test_trainer.py reads too).

    Training on CPU is deterministic for a TensorFlow version, a processor and a thread count: where the
    stored result was measured alike, the AP must match it to the last digit; elsewhere it must stay in
    the band the stored trainings span (halved and raised by half), which an AP near zero leaves.
    """
    result = results_io.load("synthetic_ap")
    s = result["summary"]["spinenet49"]
    stored = s["AP"][s["seeds"].index(0)]
    ap = synthetic_smoke_spinenet49.metrics["AP"]
    same_machine = (result.get("tensorflow"), result.get("cpu_model")) == (
        results_io.header(results_io.start(["x"]))["tensorflow"],
        results_io.cpu_model(),
    )
    if same_machine:
        assert ap == pytest.approx(stored, abs=1e-9), f"AP {ap} drifted from the stored {stored}"
    else:
        low, high = min(s["AP"]), max(s["AP"])
        assert 0.5 * low <= ap <= 1.5 * high, f"AP {ap} is outside the stored band {low}-{high}"
