"""Architecture files: the project's versioned JSON schema and the reference block-spec form.

Schema (``schema_version`` 1)::

    {
      "schema_version": 1,
      "stem": [{"level": 2, "block_fn": "bottleneck"}, ...],          # optional
      "blocks": [{"level": 2, "block_fn": "bottleneck",
                  "parents": [0, 1], "is_output": false,
                  "width_multiplier": 1.25, "block_repeats": 2}, ...],  # the last two optional
      "scaling": {"filter_size_scale": 1.0, "resample_alpha": 0.5,
                  "endpoints_num_filters": 256, "block_repeats": 1},
      "provenance": {"trial_id": 12, "reward": 0.31, "search_id": "..."}  # optional
    }

Parents index the running list in which ``0..m-1`` are the stem candidates.
A block's ``width_multiplier`` (default 1.0) and ``block_repeats`` (default 1)
are its own resources (docs/search_space.md#resource-distribution); they are
written only when a block has its own, so a file without them reads as before.
The reference block-spec form is the list of tuples
``(level, block_fn, (parent, parent), is_output)`` used by the public
reference implementation, with the stem blocks first as
``(2, "bottleneck", (None, None), False)``. A SpineNet-Mobile's list is the
reference's Mobile form: its blocks only, as its stem is fixed.

Without a ``stem``, an architecture gets its family's stem: SpineNet's two L2
bottleneck candidates, or the Mobile stem when its blocks are ``mbconv``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from collections.abc import Sequence
from typing import Any

from search_space.architecture import (
    SPINENET,
    SPINENET_MOBILE,
    Architecture,
    BlockSpec,
    Scaling,
    StemBlock,
    block_family,
    default_stem,
    validate_architecture,
)
from search_space.errors import ArchitectureError

SCHEMA_VERSION = 1

_TOP_KEYS = {"schema_version", "stem", "blocks", "scaling", "provenance"}
_BLOCK_KEYS = ("level", "block_fn", "parents", "is_output")
_BLOCK_RESOURCE_TYPES = {"width_multiplier": float, "block_repeats": int}
_STEM_KEYS = ("level", "block_fn")
_SCALING_TYPES = {
    "filter_size_scale": float,
    "resample_alpha": float,
    "endpoints_num_filters": int,
    "block_repeats": int,
}


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Where an exported architecture came from."""

    trial_id: int | None = None
    reward: float | None = None
    search_id: str | None = None


_PROVENANCE_TYPES = {"trial_id": int, "reward": float, "search_id": str}


def architecture_to_dict(arch: Architecture, provenance: Provenance | None = None) -> dict[str, Any]:
    """The JSON-ready dict of ``arch`` (schema version 1)."""
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "stem": [{"level": s.level, "block_fn": s.block_fn} for s in arch.stem],
        "blocks": [_block_to_dict(b) for b in arch.blocks],
        "scaling": dataclasses.asdict(arch.scaling),
    }
    if provenance is not None:
        out["provenance"] = {k: v for k, v in dataclasses.asdict(provenance).items() if v is not None}
    return out


def _block_to_dict(b: BlockSpec) -> dict[str, Any]:
    out = {"level": b.level, "block_fn": b.block_fn, "parents": list(b.parents), "is_output": b.is_output}
    if b.has_resources:
        out.update(width_multiplier=b.width_multiplier, block_repeats=b.block_repeats)
    return out


def architecture_to_json(arch: Architecture, provenance: Provenance | None = None, indent: int | None = 2) -> str:
    """``architecture_to_dict`` as JSON text."""
    return json.dumps(architecture_to_dict(arch, provenance), indent=indent)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_keys(obj: Any, where: str, allowed: Sequence[str], required: Sequence[str]) -> None:
    if not isinstance(obj, dict):
        raise ArchitectureError(f"{where}: expected an object, got {_type_name(obj)}")
    unknown = sorted(set(map(str, obj)) - set(allowed))
    if unknown:
        raise ArchitectureError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(allowed)}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise ArchitectureError(f"{where}: missing key {missing[0]!r}")


def _expect(value: Any, kind: type, where: str) -> Any:
    """Checks JSON types strictly: bools are not numbers, ints are accepted as floats."""
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, kind)
    if not ok:
        expected = {bool: "true/false", int: "an integer", float: "a finite number", str: "a string"}.get(
            kind, kind.__name__
        )
        raise ArchitectureError(f"{where}: expected {expected}, got {_type_name(value)} {value!r}")
    return float(value) if kind is float else value


def architecture_from_dict(data: Any) -> tuple[Architecture, Provenance | None]:
    """Parses and validates a schema-version-1 dict.

    Returns:
      The architecture and its provenance (None if absent).

    Raises:
      ArchitectureError: unknown keys, wrong types, unsupported schema
        version, or an invalid architecture; one message naming the place.
    """
    _check_keys(data, "architecture", sorted(_TOP_KEYS), ["schema_version", "blocks"])
    version = data["schema_version"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise ArchitectureError(f"schema_version: {version!r} is not supported; this version reads {SCHEMA_VERSION}")
    stem = None
    if "stem" in data:
        raw_stem = data["stem"]
        if not isinstance(raw_stem, list):
            raise ArchitectureError(f"stem: expected a list, got {_type_name(raw_stem)}")
        items = []
        for i, s in enumerate(raw_stem):
            _check_keys(s, f"stem {i}", _STEM_KEYS, _STEM_KEYS)
            items.append(
                StemBlock(
                    _expect(s["level"], int, f"stem {i}: level"), _expect(s["block_fn"], str, f"stem {i}: block_fn")
                )
            )
        stem = tuple(items)
    num_stem = len(stem) if stem is not None else 2  # both families' default stems have 2 candidates
    raw_blocks = data["blocks"]
    if not isinstance(raw_blocks, list):
        raise ArchitectureError(f"blocks: expected a list, got {_type_name(raw_blocks)}")
    blocks = []
    for k, b in enumerate(raw_blocks):
        where = f"block {num_stem + k}"
        _check_keys(b, where, _BLOCK_KEYS + tuple(_BLOCK_RESOURCE_TYPES), _BLOCK_KEYS)
        parents = b["parents"]
        if not isinstance(parents, list) or len(parents) != 2:
            raise ArchitectureError(f"{where}: parents must be a list of 2 integers, got {parents!r}")
        resources = {k: _expect(b[k], kind, f"{where}: {k}") for k, kind in _BLOCK_RESOURCE_TYPES.items() if k in b}
        blocks.append(
            BlockSpec(
                level=_expect(b["level"], int, f"{where}: level"),
                block_fn=_expect(b["block_fn"], str, f"{where}: block_fn"),
                parents=tuple(_expect(p, int, f"{where}: parent") for p in parents),
                is_output=_expect(b["is_output"], bool, f"{where}: is_output"),
                **resources,
            )
        )
    scaling = Scaling()
    if "scaling" in data:
        raw = data["scaling"]
        _check_keys(raw, "scaling", list(_SCALING_TYPES), [])
        scaling = Scaling(**{k: _expect(v, _SCALING_TYPES[k], f"scaling.{k}") for k, v in raw.items()})
    provenance = None
    if "provenance" in data:
        raw = data["provenance"]
        _check_keys(raw, "provenance", list(_PROVENANCE_TYPES), [])
        provenance = Provenance(
            **{k: (None if v is None else _expect(v, _PROVENANCE_TYPES[k], f"provenance.{k}")) for k, v in raw.items()}
        )
    arch = Architecture(blocks=tuple(blocks), stem=stem or _family_stem(blocks), scaling=scaling)
    validate_architecture(arch)
    return arch, provenance


def _family_stem(blocks: Sequence[BlockSpec]) -> tuple[StemBlock, ...]:
    """The stem of the blocks' family (SpineNet's when there are none)."""
    return default_stem(block_family(blocks[0].block_fn) if blocks else SPINENET)


def architecture_from_json(text: str | bytes) -> tuple[Architecture, Provenance | None]:
    """Parses JSON text; see ``architecture_from_dict``.

    Raises:
      ArchitectureError: malformed JSON (with line and column) or an invalid
        architecture.
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArchitectureError(f"not valid JSON: {e}") from None
    except RecursionError:
        raise ArchitectureError("not valid JSON: nested too deeply") from None
    return architecture_from_dict(data)


def load_architecture(path: str | os.PathLike) -> tuple[Architecture, Provenance | None]:
    """Reads an architecture file (JSON schema or a JSON block-spec list).

    Raises:
      ArchitectureError: the file is missing or unreadable, or its content is
        invalid; the message names the file.
    """
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        raise ArchitectureError(f"{path}: cannot read architecture file: {e.strerror or e}") from None
    try:
        stripped = text.lstrip()
        if stripped.startswith(b"["):
            try:
                specs = json.loads(text)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ArchitectureError(f"not valid JSON: {e}") from None
            return architecture_from_block_specs(specs), None
        return architecture_from_json(text)
    except ArchitectureError as e:
        raise ArchitectureError(f"{path}: {e}") from None


def save_architecture(path: str | os.PathLike, arch: Architecture, provenance: Provenance | None = None) -> None:
    """Writes ``arch`` as schema JSON, atomically (see :func:`write_file_atomically`)."""
    write_file_atomically(path, architecture_to_json(arch, provenance) + "\n")


def write_file_atomically(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` to a temporary file beside ``path``, fsyncs it, renames it over ``path`` and
    fsyncs the directory: readers see the old file or the new one, never a part.

    Raises:
      OSError: the file cannot be written; its ``filename`` is ``path`` (the temporary file is removed).
    """
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise OSError(e.errno, e.strerror, path) from e
    dir_fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def architecture_to_block_specs(arch: Architecture) -> list[tuple]:
    """The reference implementation's block-spec tuples: stem blocks first, except for a SpineNet-Mobile.

    The reference's SpineNet-Mobile takes its blocks only (its stem is fixed),
    so that is the list written for one; parents still count the two stem
    candidates.

    Raises:
      ArchitectureError: a block has its own width multiplier or repeat count,
        which the reference's block specs cannot hold.
    """
    own = [arch.num_stem + k for k, b in enumerate(arch.blocks) if b.has_resources]
    if own:
        raise ArchitectureError(
            f"block {own[0]}: has its own width_multiplier or block_repeats, which the reference's block specs "
            "cannot hold; write the architecture as JSON (format json) instead"
        )
    specs: list[tuple] = []
    if arch.family != SPINENET_MOBILE:
        specs += [(s.level, s.block_fn, (None, None), False) for s in arch.stem]
    specs += [(b.level, b.block_fn, tuple(b.parents), b.is_output) for b in arch.blocks]
    return specs


def architecture_from_block_specs(specs: Any, scaling: Scaling | None = None) -> Architecture:
    """Builds an architecture from reference block-spec tuples (or JSON lists).

    Leading entries with parents ``(None, None)`` are the stem candidates; a
    list of ``mbconv`` blocks without them (the reference's Mobile form) gets
    the Mobile stem.

    Raises:
      ArchitectureError: malformed tuples or an invalid architecture.
    """
    if not isinstance(specs, (list, tuple)):
        raise ArchitectureError(f"block specs: expected a list, got {_type_name(specs)}")
    stem, blocks = [], []
    for i, spec in enumerate(specs):
        where = f"block spec {i}"
        if not isinstance(spec, (list, tuple)) or len(spec) != 4:
            raise ArchitectureError(f"{where}: expected (level, block_fn, (parent, parent), is_output), got {spec!r}")
        level, block_fn, parents, is_output = spec
        level = _expect(level, int, f"{where}: level")
        block_fn = _expect(block_fn, str, f"{where}: block_fn")
        is_output = _expect(is_output, bool, f"{where}: is_output")
        if not isinstance(parents, (list, tuple)) or len(parents) != 2:
            raise ArchitectureError(f"{where}: parents must be a pair, got {parents!r}")
        if parents[0] is None and parents[1] is None:
            if blocks:
                raise ArchitectureError(f"{where}: a stem block (no parents) after scale-permuted blocks")
            if is_output:
                raise ArchitectureError(f"{where}: a stem block cannot be an output")
            stem.append(StemBlock(level, block_fn))
            continue
        parents = tuple(_expect(p, int, f"{where}: parent") for p in parents)
        blocks.append(BlockSpec(level, block_fn, parents, is_output))
    if not stem and blocks and block_family(blocks[0].block_fn) == SPINENET_MOBILE:
        stem = list(default_stem(SPINENET_MOBILE))
    arch = Architecture(blocks=tuple(blocks), stem=tuple(stem), scaling=scaling or Scaling())
    validate_architecture(arch)
    return arch
