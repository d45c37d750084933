"""One options helper for every settings dataclass of the suite.

Trainer settings (:class:`kdseg.trainer.TrainerConfig`), method options
(:class:`kdseg.methods.base.Options`), 2D teacher options
(:class:`kdseg.image2d.TeacherOptions`), LiDAR augmentations
(:class:`kdseg.lidar_data.AugmentConfig`), backbone arguments, input-provider settings and teacher
kinds are frozen dataclasses whose fields carry a help text (:func:`option`). :func:`build` turns a
mapping of overrides (a YAML block, ``--option KEY=VALUE`` items, JSON) into one of them with the
same rules everywhere:

* an unknown key: ``ConfigError(<prefix><key>, "unknown <what>; known: [...]")``;
* a value is converted to the field's annotated type or refused with
  ``ConfigError(<prefix><key>, "expected <type>, got <type> <value>")``: ``float`` takes ints and
  strings in Python's float syntax (``"1e-3"``, which YAML reads as a string), ``int`` takes ints
  only, ``bool`` takes booleans only, tuples and sequences take lists of the element type, and an
  optional field (``X | None``) takes ``None``.

:func:`describe` lists the fields (name, type, default, help) for ``kdseg methods``, ``kdseg
backbones`` and the ``--help`` texts. This module imports no torch.
"""

from __future__ import annotations

import dataclasses
import inspect
import textwrap
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from kdseg.errors import ConfigError

T = TypeVar("T")


def option(default: Any = dataclasses.MISSING, help: str = "", **kwargs: Any) -> Any:
    """A dataclass field with its help text (units, allowed values, source tag)."""
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


@dataclasses.dataclass(frozen=True)
class OptionDoc:
    """One field of a settings dataclass, as listed by the help texts."""

    name: str
    type: str
    default: Any
    help: str


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be evaluated: fall back to no conversion
        return {}


def type_name(tp: Any) -> str:
    """A short, readable spelling of an annotation (``float | None``, ``tuple[float, ...]``)."""
    if isinstance(tp, str):
        return tp
    if tp is type(None):
        return "None"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = typing.get_args(tp)
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join('...' if a is Ellipsis else type_name(a) for a in args)}]"
    return getattr(tp, "__name__", str(tp))


class _Mismatch(Exception):
    """A value that does not fit an annotation (internal to :func:`convert`)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _convert(value: Any, tp: Any) -> Any:
    if tp is Any or tp is object or isinstance(tp, str | typing.TypeVar):
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise _Mismatch
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise _Mismatch
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if not isinstance(value, list | tuple):
            raise _Mismatch
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _Mismatch
            items = [_convert(v, a) for v, a in zip(value, args, strict=True)]
        else:
            items = [_convert(v, args[0]) for v in value] if args else list(value)
        return items if origin is list or tp is list else tuple(items)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is float:
        if _is_number(value):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise _Mismatch from None
        raise _Mismatch
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if tp.__module__ == "pathlib" and isinstance(value, str):
            return tp(value)
        raise _Mismatch
    return value


def convert(key: str, value: Any, tp: Any) -> Any:
    """``value`` converted to the annotation ``tp`` (module docstring), else ``ConfigError``
    naming ``key``."""
    try:
        return _convert(value, tp)
    except _Mismatch:
        got = f"{type(value).__name__} {value!r}"
        raise ConfigError(key, f"expected {type_name(tp)}, got {got}") from None


def build(
    cls: type[T],
    values: Mapping[str, Any] | None = None,
    *,
    prefix: str = "",
    what: str = "option",
) -> T:
    """``cls(**values)`` after checking every key and converting every value.

    Args:
        cls: a dataclass whose fields carry :func:`option` help texts.
        values: overrides of the defaults; keys must be field names.
        prefix: put before a key in errors (``"sup_only."``, ``"augment."``).
        what: what a key is called in the unknown-key error (``"trainer key"``).

    Raises:
        ConfigError: an unknown key, a value of the wrong type, or whatever ``cls`` itself
            refuses (its ``__post_init__`` checks).
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = _hints(cls)
    out: dict[str, Any] = {}
    for key, value in (values or {}).items():
        key = str(key)
        if key not in fields:
            raise ConfigError(f"{prefix}{key}", f"unknown {what}; known: {sorted(fields)}")
        out[key] = convert(f"{prefix}{key}", value, hints.get(key, Any))
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in out:
            raise ConfigError(f"{prefix}{name}", f"is required ({f.metadata.get('help', '')})")
    try:
        return cls(**out)
    except ConfigError as exc:  # a check of cls itself: name the key the way the caller does
        if not prefix or exc.key.startswith(prefix):
            raise
        raise ConfigError(f"{prefix}{exc.key}", exc.problem) from None


def check_types(obj: Any, prefix: str = "") -> None:
    """Refuse fields of ``obj`` (a dataclass instance built directly, without :func:`build`)
    whose values do not fit their annotations; a string is never taken for a number here."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        tp = hints.get(f.name, Any)
        try:
            converted = _convert(value, tp)
            ok = not isinstance(value, str) or isinstance(converted, str)
        except _Mismatch:
            ok = False
        if not ok:
            got = f"{type(value).__name__} {value!r}"
            raise ConfigError(f"{prefix}{f.name}", f"expected {type_name(tp)}, got {got}")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def describe(cls: type) -> list[OptionDoc]:
    """The fields of the settings dataclass ``cls`` in declaration order."""
    hints = _hints(cls)
    return [
        OptionDoc(
            f.name,
            type_name(hints.get(f.name, f.type)),
            _default(f),
            str(f.metadata.get("help", "")),
        )
        for f in dataclasses.fields(cls)
    ]


def helps(cls: type) -> dict[str, str]:
    """Field name -> help text."""
    return {d.name: d.help for d in describe(cls)}


def format_options(docs: Sequence[OptionDoc], indent: int = 2, width: int = 100) -> str:
    """Rows ``name=default  help`` wrapped to ``width`` (for the command line's listings)."""
    rows = [
        (f"{d.name}={'(required)' if d.default is dataclasses.MISSING else repr(d.default)}", d)
        for d in docs
    ]
    left = max((len(a) for a, _ in rows), default=0)
    lines = []
    for head, d in rows:
        first = " " * indent + f"{head:<{left}}  "
        text = d.help or f"({d.type})"
        lines.append(
            textwrap.fill(text, width, initial_indent=first, subsequent_indent=" " * len(first))
        )
    return "\n".join(lines)


def _arg_helps(fn: Callable[..., Any]) -> dict[str, str]:
    """``name: text`` entries of the ``Args:`` section of ``fn``'s docstring (Google style)."""
    doc = inspect.getdoc(fn) or ""
    out: dict[str, str] = {}
    current = None
    in_args = False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:"):
            in_args = True
            continue
        if in_args and stripped.endswith(":") and not line.startswith(" "):
            break
        if not in_args or not stripped:
            continue
        name, sep, text = stripped.partition(":")
        if sep and name.replace("_", "").isalnum() and line.startswith("    ") and " " not in name:
            current = name
            out[name] = text.strip()
        elif current is not None:
            out[current] += " " + stripped
    return out


#: help of common factory arguments that have no ``Args:`` entry
COMMON_ARG_HELP: dict[str, str] = {
    "in_channels": "width of the network input (set by the segmenter: voxel 4 = x, y, z, "
    "remission; range 6 adds range and a valid mask; image 3 = RGB)",
}


def options_from_signature(fn: Callable[..., Any], name: str) -> type:
    """A frozen dataclass of the keyword parameters (with defaults) of ``fn``.

    Help texts come from ``fn``'s docstring ``Args:`` section, else :data:`COMMON_ARG_HELP`,
    else say which factory argument it is. Used for backbones registered without an options
    dataclass, so ``kdseg backbones`` lists them and :func:`build` checks them.
    """
    target = fn.__init__ if isinstance(fn, type) else fn  # type: ignore[misc]
    sig = inspect.signature(target)
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
    docs = _arg_helps(target) | _arg_helps(fn)
    specs = []
    for p in sig.parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        help_text = docs.get(p.name) or COMMON_ARG_HELP.get(p.name) or f"argument of {name}"
        default = p.default if p.default is not p.empty else dataclasses.MISSING
        field = dataclasses.field(default=default, metadata={"help": help_text})
        specs.append((p.name, hints.get(p.name, Any), field))
    return dataclasses.make_dataclass(f"{name}_options", specs, frozen=True, kw_only=True)
