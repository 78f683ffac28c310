"""Strict overrides of frozen config dataclasses.

``a.b=v,c=d`` strings (``--params_override``) and nested dicts (YAML config
files) replace fields of a config. An unknown key is an error that lists the
keys allowed at that place; a value of the wrong type is an error naming the
key and the expected type. Values in override strings are parsed as YAML
scalars or flow collections (``4``, ``0.5``, ``null``, ``[3, 4]``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

import yaml

from search_space.errors import UserError


class ConfigError(UserError, ValueError):
    """A config file, override or value is invalid; the message names the key."""


def parse_override_string(text: str) -> dict[str, Any]:
    """``"a.b=1,c=[1, 2]"`` -> ``{"a.b": 1, "c": [1, 2]}``.

    Commas inside brackets do not split.

    Raises:
      ConfigError: an item without ``=`` or a value that is not valid YAML.
    """
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    out: dict[str, Any] = {}
    for item in (s.strip() for s in items):
        if not item:
            continue
        if "=" not in item:
            raise ConfigError(f"params_override: {item!r} is not of the form key=value")
        key, raw = (s.strip() for s in item.split("=", 1))
        if not key:
            raise ConfigError(f"params_override: {item!r} has an empty key")
        try:
            out[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"params_override: value of {key!r} is not valid: {e}") from None
    return out


def load_config_file(path: str) -> dict[str, Any]:
    """Reads a YAML (or JSON) file of nested overrides.

    Raises:
      ConfigError: missing, unreadable, malformed, or not a mapping.
    """
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping of keys, got {type(data).__name__}")
    return data


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (dicts only; lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in nested.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def apply_overrides(config: Any, overrides: Mapping[str, Any]) -> Any:
    """Returns ``config`` with dotted keys replaced.

    The overrides are merged into the config's plain form and the config is
    rebuilt once, so fields that are checked together may change together.

    Args:
      config: a frozen dataclass instance.
      overrides: dotted key -> value (flat, or nested dicts).

    Raises:
      ConfigError: unknown key, wrong type, or a rebuilt config that is invalid.
    """
    data = config_to_dict(config)
    for key, value in flatten(overrides).items():
        _check_key(type(config), key.split("."), key)
        target = data
        parts = key.split(".")
        for part in parts[:-1]:
            target = target[part]
        target[parts[-1]] = value
    return build_config(type(config), data)


def _check_key(cls: Any, path: list[str], full_key: str) -> None:
    if not dataclasses.is_dataclass(cls):
        raise ConfigError(f"unknown key {full_key!r}: {getattr(cls, '__name__', cls)} has no fields")
    names = [f.name for f in dataclasses.fields(cls)]
    if path[0] not in names:
        raise ConfigError(f"unknown key {full_key!r}; allowed here: {', '.join(sorted(names))}")
    if len(path) > 1:
        _check_key(typing.get_type_hints(cls)[path[0]], path[1:], full_key)


def build_config(cls: Any, data: Any, prefix: str = "") -> Any:
    """Builds a frozen dataclass from plain data, checking keys and types.

    Missing keys take the field defaults; unknown keys and wrong types are errors.

    Raises:
      ConfigError: naming the dotted key.
    """
    where = prefix.rstrip(".") or cls.__name__
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(map(str, data)) - set(names))
    if unknown:
        raise ConfigError(f"unknown key {prefix + unknown[0]!r}; allowed here: {', '.join(sorted(names))}")
    kwargs = {name: coerce(value, hints[name], prefix + name) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where}: {e}" if prefix else str(e)) from None


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Checks ``value`` against a type hint, converting lists to tuples and ints to floats.

    Raises:
      ConfigError: naming ``key`` and the expected type.
    """
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}: expected {_describe(hint)}, got {value!r}")
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return build_config(hint, value, key + ".")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list ({_describe(hint)}), got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{key}: expected {len(args)} items ({_describe(hint)}), got {value!r}")
        return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {coerce(k, args[0], key): coerce(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # ids such as model.model_id=49 read as numbers in YAML
        if isinstance(value, bool):
            # YAML 1.1 reads on/off/yes/no/true/false as booleans; the string fields that take
            # them are the on/off switches (trainer.jit_compile=on), and validation names the
            # field if a boolean was not meant.
            return "on" if value else "off"
    elif isinstance(hint, type) and isinstance(value, hint):
        return value
    raise ConfigError(f"{key}: expected {_describe(hint)}, got {type(value).__name__} {value!r}")


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0])}"
        return "a list [" + ", ".join(_describe(a) for a in args) + "]"
    if hint is type(None):
        return "null"
    names = {int: "an integer", float: "a number", bool: "true/false", str: "a string"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def config_to_dict(config: Any) -> Any:
    """A frozen config as plain JSON/YAML-ready data (tuples become lists)."""
    if dataclasses.is_dataclass(config):
        return {f.name: config_to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [config_to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: config_to_dict(v) for k, v in config.items()}
    return config


def diff_configs(a: Any, b: Any) -> list[str]:
    """Dotted keys whose values differ between two configs of one type."""
    fa, fb = flatten(config_to_dict(a)), flatten(config_to_dict(b))
    return sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))
