"""The files ``nas-search export`` writes, as text: one architecture of a search in the project's
JSON schema (with its provenance) or as the reference implementation's block specs.

Kept apart from the command so that the HTML report (``nas.report``) offers the
same files for download without importing a command.
"""

from __future__ import annotations

import json

from search_space import Architecture, Provenance, architecture_to_block_specs, architecture_to_json

FORMATS = ("json", "block_specs")


def export_text(arch: Architecture, fmt: str, *, trial_id: int, reward: float, search_id: str) -> str:
    """The text of the file ``export`` writes for one architecture in format ``fmt``.

    ``json``: the project's schema with provenance (trial, reward, search);
    ``block_specs``: ``[level, block_fn, [parent, parent], is_output]`` rows,
    stem first, as the reference implementation reads them.

    Raises:
      ValueError: an unknown format.
    """
    if fmt == "json":
        return architecture_to_json(arch, Provenance(trial_id=trial_id, reward=reward, search_id=search_id)) + "\n"
    if fmt == "block_specs":
        specs = [list(spec[:2]) + [list(spec[2]), spec[3]] for spec in architecture_to_block_specs(arch)]
        return json.dumps(specs, indent=1, allow_nan=False) + "\n"
    raise ValueError(f"unknown export format {fmt!r}; allowed {', '.join(FORMATS)}")


def export_filename(rank: int, trial_id: int, fmt: str) -> str:
    """``rank01_trial000012.json`` (or ``.block_specs.json``): the name ``export`` gives a file in a directory."""
    ext = "json" if fmt == "json" else "block_specs.json"
    return f"rank{rank:02d}_trial{trial_id:06d}.{ext}"
