"""Load a YAML configuration file into a pydantic model, with errors a plant engineer can act on.

Every role (simulators, edge, central) reads one YAML file. A traceback from deep inside pydantic
tells an engineer at a new line nothing, so this module turns each validation problem into one
line naming the field path, the line in the file, the bad value, what was expected (the field's
description) and, for a misspelt key, the closest known key.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A configuration that cannot be used. The message says where the problem is and how to fix it."""


def load_yaml_model(model: type[M], path: Path | str) -> M:
    """Read ``path`` and validate it as ``model``; raise ConfigError with a readable message."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (check the path you gave)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc.strerror}") from None
    return parse_yaml_model(model, text, source=str(path))


def parse_yaml_model(model: type[M], text: str, *, source: str = "<config>") -> M:
    """Validate YAML ``text`` as ``model``; ``source`` names the file in error messages."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(
            f"{source}: not valid YAML{where}: {exc.problem}. Check indentation and quoting there."
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must be a mapping of settings (key: value), not a list or scalar")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model, node, source)) from None


def format_validation_error(
    exc: ValidationError, model: type[BaseModel], node: yaml.Node | None, source: str
) -> str:
    """One line per problem: field path, line, bad value, pydantic's reason and the expected value."""
    problems = exc.errors(include_url=False)
    lines = [f"{source}: {len(problems)} problem{'s' if len(problems) != 1 else ''} in the configuration:"]
    for err in problems:
        loc = tuple(err["loc"])
        etype = err["type"]
        path = _path_text(model, loc)
        if etype == "extra_forbidden":
            parent = _path_text(model, loc[:-1]) if loc[:-1] else ""
            path = f"{parent}.{loc[-1]}" if parent else str(loc[-1])
        line = _line_of(node, loc)
        where = f" (line {line})" if line else ""
        if etype == "missing":
            msg = "is required but missing"
        elif etype == "extra_forbidden":
            msg = f"is not a known setting{_suggest(model, loc)}"
        else:
            reason = str(err["msg"]).removeprefix("Value error, ")
            value = err.get("input")
            if isinstance(value, dict | list):
                msg = f"is not valid: {reason}"  # a check across several settings: the reason names them
            else:
                msg = f"has the bad value {_short(value)}: {reason}"
        lines.append(f"  - {path}{where} {msg}")
        hint = _description(model, loc)
        if hint and etype != "extra_forbidden" and not isinstance(err.get("input"), dict):
            lines.append(f"      expected: {hint}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _path_text(model: type[BaseModel], loc: Sequence[int | str]) -> str:
    parts: list[str] = []
    for item in _field_loc(model, loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(top level)"


def _field_loc(model: type[BaseModel], loc: Sequence[int | str]) -> list[int | str]:
    """The location without pydantic's union tags (e.g. ``'function-after[...]'``, ``'modbus'``)."""
    out: list[int | str] = []
    for item, _field in _walk(model, loc):
        out.append(item)
    return out


def _walk(model: type[BaseModel], loc: Sequence[int | str]) -> Iterable[tuple[int | str, Any]]:
    """Follow ``loc`` through the model's annotations, yielding (loc item, FieldInfo or None).

    Items that are not a field, key or index of the current type (pydantic's union member tags)
    are skipped.
    """
    current: Any = model
    for item in loc:
        candidates = _models_in(current)
        if isinstance(item, str):
            field = None
            for cand in candidates:
                if item in cand.model_fields:
                    field = cand.model_fields[item]
                    break
            if field is not None:
                yield item, field
                current = field.annotation
                continue
            if _is_mapping(current):
                yield item, None
                current = typing.get_args(_strip(current))[1]
                continue
            # A union tag: stay on the current type but narrow it to the tagged member if known.
            tagged = [c for c in candidates if _tag_matches(c, item)]
            if tagged:
                current = tagged[0]
            continue
        yield item, None
        args = typing.get_args(_strip(current))
        # a list's items, or a mapping's values (an int key of dict[int, X] is not a list index)
        current = args[-1] if args else Any


def _tag_matches(cand: type[BaseModel], tag: str) -> bool:
    for field in cand.model_fields.values():
        args = typing.get_args(field.annotation)
        if typing.get_origin(field.annotation) is typing.Literal and tag in args:
            return True
    return cand.__name__ == tag


def _strip(tp: Any) -> Any:
    """Remove Optional/Annotated wrappers so list/dict shapes can be recognised."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            containers = [a for a in args if typing.get_origin(a) in (list, dict, tuple)]
            if len(args) == 1:
                tp = args[0]
                continue
            if containers:
                tp = containers[0]
                continue
        return tp


def _is_mapping(tp: Any) -> bool:
    return typing.get_origin(_strip(tp)) is dict


def _models_in(tp: Any) -> list[type[BaseModel]]:
    """Every BaseModel class directly inside ``tp`` (through unions and Annotated)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        found: list[type[BaseModel]] = []
        for arg in typing.get_args(tp):
            found.extend(_models_in(arg))
        return found
    return []


def _description(model: type[BaseModel], loc: Sequence[int | str]) -> str | None:
    last = None
    for _item, field in _walk(model, loc):
        last = field
    if last is None:
        return None
    desc = last.description
    return str(desc) if desc else None


def _suggest(model: type[BaseModel], loc: Sequence[int | str]) -> str:
    """For an unknown key, name the closest known key of the model it appears in."""
    *parent, bad = loc
    owners: list[type[BaseModel]] = [model]
    current: Any = model
    for item, field in _walk(model, parent):
        if field is not None:
            current = field.annotation
        elif isinstance(item, int) or _is_mapping(current):
            args = typing.get_args(_strip(current))
            current = args[-1] if args else Any
    owners = _models_in(_strip(current)) or _models_in(current) or owners
    known = sorted({name for owner in owners for name in owner.model_fields})
    close = difflib.get_close_matches(str(bad), known, n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (known settings here: {', '.join(known)})" if known else ""


def _line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """1-based line of the deepest YAML node that ``loc`` reaches."""
    if node is None:
        return None
    line: int = node.start_mark.line + 1
    current: yaml.Node = node
    for item in loc:
        nxt: yaml.Node | None = None
        if isinstance(current, yaml.MappingNode) and isinstance(item, str):
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.value == item:
                    nxt = value
                    line = key.start_mark.line + 1
                    break
        elif isinstance(current, yaml.SequenceNode) and isinstance(item, int) and 0 <= item < len(current.value):
            nxt = current.value[item]
            line = nxt.start_mark.line + 1
        if nxt is not None:
            current = nxt
    return line
