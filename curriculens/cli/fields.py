"""Flags generated from config fields, and the one step that applies them back.

A config field declared ``field(default=..., metadata=cli("help", ...))`` (``curriculens.config.cli``)
is a flag of every command that calls ``add_config_args(parser, Cls, command=...)``: its name,
help (with the field's default quoted), type, choices and the commands that show it all come
from the field. Every generated flag defaults to None, so "not given" differs from any value;
``config_changes(Cls, args, command)`` returns ``{field: value}`` for the flags given (parsed by
``CliFlag.parse`` where set; a bad value is one line naming the flag) and ``apply_args`` builds
the config from a base config or the class. To add a flag: add the field with its metadata.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from curriculens.config import CLI_KEY, CliFlag, dataclass_default
from curriculens.errors import CurriculensError


def flag_of(f: dataclasses.Field, meta: CliFlag) -> str:
    """The field's flag: ``meta.flag``, else ``--`` + its name with ``-`` for ``_``."""
    return meta.flag or "--" + f.name.replace("_", "-")


def dest_of(f: dataclasses.Field, meta: CliFlag) -> str:
    """The flag's attribute on the parsed namespace (``--two-shot-T`` -> ``two_shot_T``): from
    the flag, not the field, so two classes' fields of one name (``OptimConfig.name`` as
    ``--optimizer``, the run's ``--name``) never share it."""
    return flag_of(f, meta).removeprefix("--").replace("-", "_")


def config_flags(cls: type, command: str) -> list[tuple[dataclasses.Field, CliFlag]]:
    """The fields of dataclass ``cls`` that ``command`` exposes as flags, in field order."""
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(CLI_KEY)
        if meta is not None and (not meta.commands or command in meta.commands):
            out.append((f, meta))
    return out


def _arg_type(hints: dict, f: dataclasses.Field, meta: CliFlag) -> Any:
    """argparse's type: ``meta.type``, str where ``meta.parse`` parses later, else the
    annotation's in ``hints`` (``int | None`` -> int); ``bool`` means a switch."""
    if meta.type is not None:
        return meta.type
    if meta.parse is not None:
        return str
    tp = hints[f.name]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    return tp if tp in (int, float, str, bool) else str


def _default_text(cls: type, f: dataclasses.Field, meta: CliFlag, override: str | None) -> str:
    text = override if override is not None else meta.default
    if text is None:
        value = dataclass_default(cls, f.name)
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return f" (default {text})" if text else ""


def add_config_args(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *classes: type,
    command: str,
    defaults: dict[str, str] | None = None,
) -> None:
    """Add a flag for every field of ``classes`` that ``command`` exposes (``config_flags``).
    A flag that two classes share (``--dropout`` of GPT-2 and BERT) is added once.
    ``defaults``: field name -> the default as help quotes it, where the CLI knows it better
    (a default that depends on another flag)."""
    for cls in classes:
        flags = config_flags(cls, command)
        hints = typing.get_type_hints(cls) if flags else {}  # once per class: it evaluates every annotation
        for f, meta in flags:
            flag = flag_of(f, meta)
            if flag in parser._option_string_actions:
                continue
            where = _group(parser, meta.group) if meta.group else parser
            kind = _arg_type(hints, f, meta)
            kw: dict[str, Any] = {"dest": dest_of(f, meta), "default": None}
            if kind is bool:
                kw["action"] = "store_true"
            else:
                kw["type"] = kind
                if meta.choices is not None:
                    kw["choices"] = meta.choices
                if meta.metavar is not None:
                    kw["metavar"] = meta.metavar
            kw["help"] = meta.help + _default_text(cls, f, meta, (defaults or {}).get(f.name))
            where.add_argument(flag, *meta.aliases, **kw)


def _group(parser: argparse.ArgumentParser, title: str) -> argparse._ArgumentGroup:
    """The parser's argument group of this title, made on first use."""
    for g in parser._action_groups:
        if g.title == title:
            return g
    return parser.add_argument_group(title)


def given_flags(cls: type, args: argparse.Namespace, command: str) -> dict[str, str]:
    """``{field: flag}`` for the flags of ``cls`` given on the command line."""
    return {
        f.name: flag_of(f, m) for f, m in config_flags(cls, command) if getattr(args, dest_of(f, m), None) is not None
    }


def config_changes(cls: type, args: argparse.Namespace, command: str) -> dict[str, Any]:
    """``{field: value}`` for the flags of ``cls`` given on the command line, parsed."""
    out = {}
    for f, meta in config_flags(cls, command):
        value = getattr(args, dest_of(f, meta), None)
        if value is None:
            continue
        if meta.parse is not None:
            try:
                value = meta.parse(value)
            except ValueError as exc:
                raise CurriculensError(f"{flag_of(f, meta)} {exc}") from None
        out[f.name] = value
    return out


def apply_args(base: Any, args: argparse.Namespace, command: str, **fields: Any) -> Any:
    """The config: ``base`` (an instance, or the class for a new one) with ``fields`` and then
    every flag given on top; validated by the class on construction."""
    cls = base if isinstance(base, type) else type(base)
    changes = {**fields, **config_changes(cls, args, command)}
    return cls(**changes) if isinstance(base, type) else dataclasses.replace(base, **changes)
