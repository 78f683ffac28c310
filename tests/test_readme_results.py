"""README figures rendered from stored results (bench/readme_results.py) match those results."""

import pathlib

from bench import readme_results

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_generated_readme_section_matches_its_stored_result():
    assert readme_results.problems((ROOT / "README.md").read_text()) == []


def test_a_figure_edited_by_hand_or_a_section_without_a_result_is_caught():
    text = (ROOT / "README.md").read_text()
    body = readme_results.sections(text)["faults"]
    edited = text.replace(body, body.replace("| 0 |", "| 1 |", 1))
    assert edited != text
    assert any("differs from bench/results/faults.json" in p for p in readme_results.problems(edited))
    unbacked = text + "\n<!-- results:made_up begin: x -->\n| 1 |\n<!-- results:made_up end -->\n"
    assert any("results:made_up has no renderer" in p for p in readme_results.problems(unbacked))
    removed = text.replace(body, "")
    assert readme_results.problems(removed) != []
