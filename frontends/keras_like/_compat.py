"""Argument-name translation between Keras 1 and Keras 2/3, and name-or-object lookup."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_MISSING = object()


def pop_alias(kwargs: dict, new: str, *old: str, default: Any = None) -> Any:
    """Take ``new`` or one of its older names out of ``kwargs`` (giving both is an error)."""
    found = [(k, kwargs.pop(k)) for k in (new, *old) if k in kwargs]
    if len(found) > 1:
        names = ", ".join(k for k, _ in found)
        raise TypeError(f"got the same argument under several names: {names}")
    return found[0][1] if found else default


def merge_alias(value: Any, kwargs: dict, new: str, *old: str) -> Any:
    """``value`` of a named parameter, unless an older spelling in ``kwargs`` gives it."""
    legacy = pop_alias(kwargs, old[0], *old[1:], default=_MISSING) if old else _MISSING
    if legacy is _MISSING:
        return value
    if value is not None:
        raise TypeError(f"got both {new!r} and its older name {old[0]!r}")
    return legacy


def reject_unknown(kwargs: dict, where: str) -> None:
    if kwargs:
        raise TypeError(f"{where}: unexpected argument(s) {sorted(kwargs)}")


def snake_case(name: str) -> str:
    """``BatchNormalization`` -> ``batch_normalization`` (Keras' automatic layer names)."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


def lookup(identifier: Any, table: dict[str, Any], kind: str,
           custom_objects: dict | None = None) -> Any:
    """Resolve a string (by name in ``table`` or ``custom_objects``); return others unchanged."""
    if isinstance(identifier, str):
        if custom_objects and identifier in custom_objects:
            return custom_objects[identifier]
        key = identifier if identifier in table else identifier.lower()
        if key in table:
            return table[key]
        raise ValueError(f"unknown {kind} {identifier!r}; known: {sorted(table)}")
    return identifier


def deserialize_config(identifier: Any, classes: dict[str, Callable], kind: str) -> Any:
    """A ``{'class_name': ..., 'config': {...}}`` dict becomes an instance."""
    if isinstance(identifier, dict) and "class_name" in identifier:
        name = identifier["class_name"]
        if name not in classes:
            raise ValueError(f"unknown {kind} class {name!r}")
        return classes[name](**identifier.get("config", {}))
    return identifier
