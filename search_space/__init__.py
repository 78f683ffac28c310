"""The SpineNet search space: architectures, decisions, sizes, files. Pure Python."""

from search_space.architecture import (
    BLOCK_FNS,
    BOTTLENECK,
    RESIDUAL,
    Architecture,
    BlockSpec,
    Scaling,
    StemBlock,
    validate_architecture,
)
from search_space.encoding import DecisionCursor, DecisionEncoding, DecisionPoint
from search_space.errors import ArchitectureError, UserError
from search_space.presets import (
    MODEL_PRESETS,
    PRESET_PREFIX,
    ModelPreset,
    architecture_preset,
    model_preset,
    resnet_like,
    resolve_architecture,
    spinenet49,
)
from search_space.sampling import mutate_decisions, sample_architecture, sample_decisions
from search_space.serialization import (
    SCHEMA_VERSION,
    Provenance,
    architecture_from_block_specs,
    architecture_from_dict,
    architecture_from_json,
    architecture_to_block_specs,
    architecture_to_dict,
    architecture_to_json,
    load_architecture,
    save_architecture,
    write_file_atomically,
)
from search_space.space import SearchSpace
from search_space.space_size import SpaceSize, space_size

__all__ = [
    "BLOCK_FNS",
    "BOTTLENECK",
    "MODEL_PRESETS",
    "PRESET_PREFIX",
    "RESIDUAL",
    "SCHEMA_VERSION",
    "Architecture",
    "ArchitectureError",
    "BlockSpec",
    "DecisionCursor",
    "DecisionEncoding",
    "DecisionPoint",
    "ModelPreset",
    "Provenance",
    "Scaling",
    "SearchSpace",
    "SpaceSize",
    "StemBlock",
    "UserError",
    "architecture_from_block_specs",
    "architecture_from_dict",
    "architecture_from_json",
    "architecture_preset",
    "architecture_to_block_specs",
    "architecture_to_dict",
    "architecture_to_json",
    "load_architecture",
    "model_preset",
    "mutate_decisions",
    "resnet_like",
    "resolve_architecture",
    "sample_architecture",
    "sample_decisions",
    "save_architecture",
    "space_size",
    "spinenet49",
    "validate_architecture",
    "write_file_atomically",
]
