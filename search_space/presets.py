"""Published topologies and scalings.

Sources: SpineNet paper (arXiv 1912.05027) Table 1 and section 4, and the
public reference block specs, as listed in docs/search_space.md
(Published SpineNet-49, Model ids).
"""

from __future__ import annotations

import dataclasses

from search_space.architecture import BOTTLENECK, RESIDUAL, Architecture, BlockSpec, Scaling
from search_space.errors import ArchitectureError

# ``--arch=preset:NAME`` selects a preset; anything else is an architecture file.
PRESET_PREFIX = "preset:"

B, R = BOTTLENECK, RESIDUAL

# docs/search_space.md#published-spinenet-49: the published SpineNet-49 in build order
# (level, block_fn, parents, is_output); 0 and 1 are the stem blocks.
_SPINENET49_ROWS = (
    (2, B, (0, 1), False),
    (4, R, (0, 1), False),
    (3, B, (2, 3), False),
    (4, B, (2, 4), False),
    (6, R, (3, 5), False),
    (4, B, (3, 5), False),
    (5, R, (6, 7), False),
    (7, R, (6, 8), False),
    (5, B, (8, 9), False),
    (5, B, (8, 10), False),
    (4, B, (5, 10), True),
    (3, B, (4, 10), True),
    (5, B, (7, 12), True),
    (7, B, (5, 14), True),
    (6, B, (12, 14), True),
)


@dataclasses.dataclass(frozen=True)
class ModelPreset:
    """A published model id: backbone scaling plus RetinaNet head size."""

    scaling: Scaling
    head_num_convs: int
    head_num_filters: int


# docs/search_space.md#model-ids (paper Table 2 and the reference configs).
MODEL_PRESETS: dict[str, ModelPreset] = {
    "49S": ModelPreset(Scaling(0.65, 0.5, 128, 1), 4, 128),
    "49": ModelPreset(Scaling(1.0, 0.5, 256, 1), 4, 256),
    "96": ModelPreset(Scaling(1.0, 0.5, 256, 2), 4, 256),
    "143": ModelPreset(Scaling(1.0, 1.0, 256, 3), 4, 256),
    "190": ModelPreset(Scaling(1.3, 1.0, 512, 4), 7, 512),
    # The proxy the search trains (docs/search_space.md#model-ids, docs/proxy_recipe.md#proxy-model).
    "proxy": ModelPreset(Scaling(0.25, 0.25, 64, 1), 4, 64),
}


def model_preset(model_id: str) -> ModelPreset:
    """Returns the preset of a model id such as ``"49"`` or ``"proxy"``.

    Raises:
      ArchitectureError: for an unknown id, listing the known ones.
    """
    key = str(model_id)
    if key not in MODEL_PRESETS:
        raise ArchitectureError(f"unknown model id {model_id!r}; known: {', '.join(MODEL_PRESETS)}")
    return MODEL_PRESETS[key]


def spinenet49(scaling: Scaling | None = None) -> Architecture:
    """The published SpineNet-49 topology (optionally with another scaling)."""
    blocks = tuple(BlockSpec(level, fn, parents, out) for level, fn, parents, out in _SPINENET49_ROWS)
    return Architecture(blocks=blocks, scaling=scaling or MODEL_PRESETS["49"].scaling)


def resnet_like(scaling: Scaling | None = None) -> Architecture:
    """A scale-decreasing, ResNet-like ordering in the SpineNet-49 space (a baseline).

    The same ten intermediate levels as SpineNet-49, built from fine to coarse
    (L2, L3, L4 x3, L5 x3, L6, L7), each block fed by the two blocks just
    before it; the outputs then come in order L3..L7, each fed by the last
    intermediate block of its level (or the closest finer one) and the block
    built just before it. Every block is a bottleneck, as in ResNet.
    """
    levels = (2, 3, 4, 4, 4, 5, 5, 5, 6, 7)
    m = 2
    blocks = []
    last_at_level: dict[int, int] = {}
    for k, level in enumerate(levels):
        idx = m + k
        blocks.append(BlockSpec(level, B, (idx - 2, idx - 1), False))
        last_at_level[level] = idx
    for level in (3, 4, 5, 6, 7):
        idx = m + len(blocks)
        source = last_at_level[level]
        other = idx - 1 if idx - 1 != source else idx - 2
        blocks.append(BlockSpec(level, B, (source, other), True))
    return Architecture(blocks=tuple(blocks), scaling=scaling or MODEL_PRESETS["49"].scaling)


ARCHITECTURE_PRESETS = {
    "spinenet49": spinenet49,
    "resnet_like": resnet_like,
}


def architecture_preset(name: str, model_id: str | None = None) -> Architecture:
    """Returns a named topology, with the scaling of ``model_id`` if given.

    Raises:
      ArchitectureError: for an unknown preset or model id.
    """
    if name not in ARCHITECTURE_PRESETS:
        raise ArchitectureError(f"unknown architecture preset {name!r}; known: {', '.join(ARCHITECTURE_PRESETS)}")
    scaling = model_preset(model_id).scaling if model_id is not None else None
    return ARCHITECTURE_PRESETS[name](scaling)


def resolve_architecture(spec: str) -> Architecture:
    """The architecture a command line's ``--arch`` names: ``preset:NAME`` or an architecture JSON file.

    Raises:
      ArchitectureError: an unknown preset, or a bad or missing file (naming it).
    """
    if spec.startswith(PRESET_PREFIX):
        return architecture_preset(spec[len(PRESET_PREFIX) :])
    from search_space.serialization import load_architecture  # serialization does not import presets

    arch, _ = load_architecture(spec)
    return arch
