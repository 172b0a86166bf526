"""Frozen-dataclass configs <-> JSON dicts.

``to_dict`` and ``from_dict`` round-trip any frozen dataclass whose fields are JSON scalars,
lists/tuples, dicts, nested dataclasses or tagged unions. Unknown keys are an error (a typo in
a config file must not be silently ignored).

Tagged unions: a field typed ``Annotated[Union[A, B, ...], Tag("name", "task")]`` holds one
of the dataclasses A, B, ..., each with a string field ``name`` whose default is its tag
(``ParityConfig.name == "parity"``); ``from_dict`` picks the class by the dict's tag, so the
package that defines the classes registers nothing here (this module imports no project
package above it). Configs compare by value: a dict read back is parsed first, so fields it
left to their defaults are filled in (``to_dict`` always writes every field), and a config file
written by an older version with fewer keys equals the config the flags produce.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from curriculens.errors import CurriculensError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Tag:
    """``Annotated`` metadata of a tagged union (see the module docstring).

    Args:
        field: the tag field every member has (``name`` for tasks, ``kind`` for models).
        what: how errors name the tag (``task``, ``model kind``).
        owner: how errors name the config (``task``, ``model``).
    """

    field: str
    what: str
    owner: str = ""

    @property
    def label(self) -> str:
        return self.owner or self.what


def to_dict(cfg: Any) -> Any:
    """A config as a JSON-ready dict of every field (``dataclasses.asdict``, tuples kept)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(to_dict(v) for v in cfg)
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return copy.deepcopy(cfg)


def flat_dict(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"optim.lr": 0.05, ...}``: nested dicts flattened, keys joined by ``.``, leaves as they are."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for k, v in data.items():
        out.update(flat_dict(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def config_diff(old: Any, new: Any, most: int = 3) -> str:
    """The fields where two configs differ, ``"a.b: 1 -> 2, ..."`` (at most ``most``, then a
    count), compared on ``to_dict`` (every field, defaults filled): for refusal messages."""
    a, b = flat_dict(to_dict(old)), flat_dict(to_dict(new))
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    shown = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys[:most])
    return shown + (f" and {len(keys) - most} more" if len(keys) > most else "")


def tag_of(cls: type, tag: Tag) -> str:
    """The tag of union member ``cls`` (its tag field's default)."""
    value = dataclass_default(cls, tag.field)
    if not isinstance(value, str):
        raise TypeError(f"{cls.__name__}.{tag.field} needs a string default to be a tagged-union member")
    return value


def _union_members(union: Any) -> tuple[type, ...]:
    return tuple(a for a in typing.get_args(union) if a is not type(None))


def from_tagged(union: Any, tag: Tag, data: Any, where: str = "") -> Any:
    """The member of ``union`` named by ``data[tag.field]``, built from ``data`` (validated by
    its ``__post_init__``); a missing or unknown tag is a one-line CurriculensError."""
    members = {tag_of(cls, tag): cls for cls in _union_members(union)}
    if not isinstance(data, dict) or tag.field not in data:
        raise CurriculensError(f"{tag.label} config has no {tag.field!r} (one of: {', '.join(members)})")
    name = data[tag.field]
    if not isinstance(name, str) or name not in members:
        raise CurriculensError(f"unknown {tag.what} {name!r} (known: {', '.join(sorted(members))})")
    return from_dict(members[name], data, where=where or tag.label)


def _tag_of_annotation(tp: Any) -> tuple[Any, Tag | None]:
    if typing.get_origin(tp) is typing.Annotated:
        args = typing.get_args(tp)
        tags = [a for a in args[1:] if isinstance(a, Tag)]
        return args[0], (tags[0] if tags else None)
    return tp, None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    tp, tag = _tag_of_annotation(tp)
    if value is None:
        return None
    if tag is not None:
        if isinstance(value, _union_members(tp)):
            return value
        return from_tagged(tp, tag, value, where)
    origin = typing.get_origin(tp)
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
    hints = typing.get_type_hints(cls, include_extras=True)
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


def coerce_field(cfg: Any, name: str) -> None:
    """In ``cfg.__post_init__``: parse field ``name`` of frozen ``cfg`` in place when it was
    given as a dict (a tagged union or a nested dataclass); a typed value is kept as it is."""
    value = getattr(cfg, name)
    if isinstance(value, dict):
        hint = typing.get_type_hints(type(cfg), include_extras=True)[name]
        object.__setattr__(cfg, name, _coerce(hint, value, name))


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


CLI_KEY = "curriculens.cli"  # the field-metadata key of ``cli`` (read by ``curriculens.cli.fields``)


@dataclasses.dataclass(frozen=True)
class CliFlag:
    """How a config field appears on the command line; ``cli(...)`` puts one in a field's metadata
    and ``curriculens.cli.fields`` turns it into a flag and back into the field.

    Args:
        help: the flag's help (the default is appended, see ``default``).
        flag: the flag; "" = ``--`` + the field name with ``-`` for ``_``.
        aliases: more flags for the same field (``--width`` beside ``--widths``).
        choices: the values allowed (argparse checks them).
        type: argparse's type; None = from the annotation (int, float, str; bool = a switch).
        parse: applied to the flag's string when the config is built (``csv_of``), so a bad value
            is a one-line ``CurriculensError`` naming the flag; argparse then takes a plain string.
        commands: the subcommands that show the flag; () = every command adding the class.
        default: the default as help quotes it; None = the field's own; "" = none quoted.
        metavar: argparse's metavar.
        group: the title of the help's argument group holding the flag; "" = the command's own.
    """

    help: str
    flag: str = ""
    aliases: tuple = ()
    choices: tuple | None = None
    type: Any = None
    parse: Any = None
    commands: tuple = ()
    default: str | None = None
    metavar: str | None = None
    group: str = ""


def cli(help: str, **kw: Any) -> dict:
    """Field metadata that exposes a config field as a flag: ``field(default=1, metadata=cli("..."))``."""
    return {CLI_KEY: CliFlag(help, **kw)}


def csv_of(kind: type) -> Any:
    """A ``CliFlag.parse``: ``"1,2"`` -> ``(1, 2)`` of ``kind``; a bad item raises ValueError."""

    def parse(text: str) -> tuple:
        try:
            return tuple(kind(v.strip()) for v in text.split(",") if v.strip())
        except ValueError:
            raise ValueError(f"must be comma-separated {kind.__name__} values, got {text!r}") from None

    return parse


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for configs (``to_dict``), paths, numpy/torch scalars and sets."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_dict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def canonical_json(obj: Any) -> str:
    """The one form in which configs are compared: sorted keys, no whitespace, tuples as lists.

    Compare two configs (dataclasses or dicts, fresh or read back from JSON) with
    ``canonical_json(a) == canonical_json(b)``, never with ``==`` on Python objects, where a
    tuple in a fresh config and the list it became in a stored JSON file differ.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=json_default)


_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")


def check_name(name: Any, what: str = "run name") -> str:
    """``name`` if it is one path component of letters, digits, ``.``, ``_``, ``-`` that does not
    start with ``.`` (such names are the temporary copies and locks of ``curriculens.io``)."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.startswith("."):
        raise CurriculensError(
            f"{what} {name!r} is not one path component of letters, digits, '.', '_' and '-' not starting with '.'"
        )
    return name
