"""Published topologies and scalings.

Sources: SpineNet paper (arXiv 1912.05027) Table 1 and section 4, and the
public reference block specs, as listed in docs/search_space.md
(Published SpineNet-49, Model ids).
"""

from __future__ import annotations

import dataclasses

from search_space.architecture import (
    BOTTLENECK,
    MBCONV,
    MOBILE_STEM,
    RESIDUAL,
    SPINENET,
    SPINENET_MOBILE,
    Architecture,
    BlockSpec,
    Scaling,
)
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

# docs/search_space.md#spinenet-mobile: the published SpineNet-Mobile topology (reference
# ``spinenet_mobile.py``): a first L2 block fusing the L1 and L2 stem candidates, then
# SpineNet-49's blocks, each index shifted by one; every block an MBConv.
_SPINENET_MOBILE49_ROWS = ((2, (0, 1), False),) + tuple(
    (level, tuple(p + 1 for p in parents), out) for level, _, parents, out in _SPINENET49_ROWS
)


@dataclasses.dataclass(frozen=True)
class ModelPreset:
    """A published model id: backbone scaling plus RetinaNet head size.

    Attributes:
      scaling: the backbone's scaling.
      head_num_convs: convs per head subnet.
      head_num_filters: width of the head convs.
      head_separable: whether the head's convs are separable (SpineNet-Mobile).
      family: the family whose topologies the id scales (``architecture.family``).
      activation: the activation the id's published figures are measured with
        (what ``nas-search describe`` costs it with by default).
    """

    scaling: Scaling
    head_num_convs: int
    head_num_filters: int
    head_separable: bool = False
    family: str = SPINENET
    activation: str = "relu"


def _mobile(scale: float, endpoints: int, activation: str) -> ModelPreset:
    # docs/search_space.md#spinenet-mobile: the head is 4 separable convs of the endpoint width;
    # resample_alpha is not used by a SpineNet-Mobile.
    return ModelPreset(Scaling(scale, 0.5, endpoints, 1), 4, endpoints, True, SPINENET_MOBILE, activation)


# docs/search_space.md#model-ids (paper Table 2 and the reference configs).
MODEL_PRESETS: dict[str, ModelPreset] = {
    "49S": ModelPreset(Scaling(0.65, 0.5, 128, 1), 4, 128),
    "49": ModelPreset(Scaling(1.0, 0.5, 256, 1), 4, 256),
    "96": ModelPreset(Scaling(1.0, 0.5, 256, 2), 4, 256),
    "143": ModelPreset(Scaling(1.0, 1.0, 256, 3), 4, 256),
    "190": ModelPreset(Scaling(1.3, 1.0, 512, 4), 7, 512),
    # The proxy the search trains (docs/search_space.md#model-ids, docs/proxy_recipe.md#proxy-model).
    "proxy": ModelPreset(Scaling(0.25, 0.25, 64, 1), 4, 64),
    # docs/search_space.md#spinenet-mobile: the reference's SpineNet-Mobile scalings. The
    # activation is the one with which the reference gives the published figures (measured).
    "mobile49": _mobile(1.0, 48, "hard_swish"),
    "mobile49S": _mobile(0.65, 40, "hard_swish"),
    "mobile49XS": _mobile(0.6, 24, "swish"),
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


def spinenet_mobile49(scaling: Scaling | None = None) -> Architecture:
    """The published SpineNet-Mobile topology (optionally with another scaling; default ``mobile49``'s)."""
    blocks = tuple(BlockSpec(level, MBCONV, parents, out) for level, parents, out in _SPINENET_MOBILE49_ROWS)
    return Architecture(blocks=blocks, stem=MOBILE_STEM, scaling=scaling or MODEL_PRESETS["mobile49"].scaling)


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
    "spinenet_mobile49": spinenet_mobile49,
}
# Each published SpineNet-Mobile model as a preset of its own: the topology with the id's scaling.
MOBILE_ARCHITECTURE_PRESETS = {"spinenet_mobile49": "mobile49", "spinenet_mobile49S": "mobile49S",
                               "spinenet_mobile49XS": "mobile49XS"}  # fmt: skip


def preset_names() -> tuple[str, ...]:
    """Every name ``architecture_preset`` accepts."""
    return tuple(dict.fromkeys([*ARCHITECTURE_PRESETS, *MOBILE_ARCHITECTURE_PRESETS]))


def preset_model_id(name: str) -> str | None:
    """The model id a preset stands for (``spinenet_mobile49S`` -> ``mobile49S``), else None."""
    return MOBILE_ARCHITECTURE_PRESETS.get(name)


def architecture_preset(name: str, model_id: str | None = None) -> Architecture:
    """Returns a named topology, with the scaling of ``model_id`` if given.

    ``spinenet_mobile49S`` and ``spinenet_mobile49XS`` are the Mobile topology
    with those ids' scalings.

    Raises:
      ArchitectureError: for an unknown preset or model id, or a model id of
        the other family.
    """
    if name not in preset_names():
        raise ArchitectureError(f"unknown architecture preset {name!r}; known: {', '.join(preset_names())}")
    model_id = model_id if model_id is not None else preset_model_id(name)
    topology = ARCHITECTURE_PRESETS.get(name, spinenet_mobile49)
    arch = topology(None)
    if model_id is not None:
        arch = arch.with_scaling(scaling_for(arch, model_id))
    return arch


def scaling_for(arch: Architecture, model_id: str) -> Scaling:
    """The scaling of ``model_id`` for ``arch``.

    Raises:
      ArchitectureError: an unknown id, or an id of the other family (e.g. ``49``
        for a SpineNet-Mobile: its ids are ``mobile49``, ``mobile49S``, ``mobile49XS``).
    """
    preset = model_preset(model_id)
    if preset.family != arch.family:
        ids = [k for k, v in MODEL_PRESETS.items() if v.family == arch.family]
        raise ArchitectureError(
            f"model id {model_id!r} scales a {preset.family}, but the architecture is a {arch.family}; "
            f"its ids: {', '.join(ids)}"
        )
    return preset.scaling


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
