"""Frozen-dataclass configs <-> JSON dicts.

``to_dict`` and ``from_dict`` round-trip any frozen dataclass whose fields are JSON scalars,
lists/tuples, dicts or nested dataclasses. Unknown keys are an error (a typo in a config
file must not be silently ignored).
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from typing import Any, TypeVar

from curriculens.errors import CurriculensError

T = TypeVar("T")


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if value is None:
        return None
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise CurriculensError(f"config field {where}: expected an object, got {value!r}")
        return from_dict(tp, value, where=where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        for arg in args:
            if dataclasses.is_dataclass(arg) and isinstance(value, dict):
                return from_dict(arg, value, where=where)
        return _coerce(args[0], value, where) if len(args) == 1 else value
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise CurriculensError(f"config field {where}: expected a list, got {value!r}")
        return tuple(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        raise CurriculensError(f"config field {where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """Build ``cls`` from ``data``; unknown keys and wrong types raise CurriculensError."""
    if not isinstance(data, dict):
        raise CurriculensError(f"config {where or cls.__name__}: expected an object")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise CurriculensError(
            f"unknown config key(s) {', '.join(unknown)} for {cls.__name__}" + (f" at {where}" if where else "")
        )
    kwargs = {}
    for name in names:
        if name in data:
            sub = f"{where}.{name}" if where else name
            kwargs[name] = _coerce(hints[name], data[name], sub)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise CurriculensError(f"config {cls.__name__}: {exc}") from None


def dataclass_default(cls: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls`` (flags quote it instead of a copy)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            break
    raise KeyError(f"{cls.__name__} has no field {name!r} with a default")


def canonical_json(obj: Any) -> str:
    """The one form in which configs are compared: sorted keys, no whitespace, tuples as lists.

    Compare two configs (dataclasses or dicts, fresh or read back from JSON) with
    ``canonical_json(a) == canonical_json(b)``, never with ``==`` on Python objects, where a
    tuple in a fresh config and the list it became in a stored JSON file differ.
    """
    from curriculens.io import json_default

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=json_default)


_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")


def check_name(name: Any, what: str = "run name") -> str:
    """``name`` if it is one path component of letters, digits, ``.``, ``_``, ``-`` (not ``.``/``..``)."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
        raise CurriculensError(f"{what} {name!r} is not one path component of letters, digits, '.', '_' and '-'")
    return name
