"""``nas-search space``: the size of an experiment's search space."""

from __future__ import annotations

import dataclasses
import json

from nas.cli_flags import FLAGS, load_experiment_config

FLAGS_USED = ("experiment", "config_file", "params_override", "json")


def cmd_space() -> int:
    """Prints the size of an experiment's search space."""
    from search_space import DecisionEncoding, space_size

    config = load_experiment_config()
    space = config.search_space
    size = space_size(space)
    encoding = DecisionEncoding(space)
    if FLAGS.json:
        out = dataclasses.asdict(size)
        out["experiment"] = config.name
        out["family"] = space.family
        out["num_decisions"] = len(encoding)
        out["fixed_topology"] = space.fixed_topology is not None
        out["width_multipliers"] = list(space.width_multipliers)
        out["block_repeats"] = list(space.block_repeats)
        print(json.dumps(out, indent=2))
        return 0
    alloc = ", ".join(f"L{lv}:{c}" for lv, c in space.level_allocation)
    print(f"experiment {config.name}: {space.family}, {size.num_blocks} scale-permuted blocks")
    print(f"  intermediate allocation {alloc}; outputs L{', L'.join(map(str, space.output_levels))}")
    print(
        f"  parent window {space.parent_window}; level shifts {list(space.level_shifts)}; block types {list(space.block_fns)}"
    )
    if space.fixed_topology is not None:
        print(f"  topology fixed ({size.num_blocks} blocks kept): only each block's resources are searched")
    if space.width_multipliers or space.block_repeats:
        widths = list(space.width_multipliers) or [1.0]
        repeats = list(space.block_repeats) or [1]
        print(f"  resources per block: width multipliers {widths}, repeats {repeats}")
    rows = [
        ("scale permutations", size.permutations),
        ("cross-scale connections", size.connections),
        ("block adjustments", size.adjustments),
        ("block resources", size.resources),
        ("total", size.total),
        (f"connections, window {space.parent_window}", size.connections_windowed),
        (f"total, window {space.parent_window}", size.total_windowed),
    ]
    for name, value in rows:
        print(f"  {name:<28} {value:.3e}  ({value})")
    print(f"  decision points             {len(encoding)}")
    return 0
