"""A registry of the ops users can build, so tests can check each one is covered.

Every op family registers the names of its user-facing operations with
``differentiable`` saying whether a gradient exists. The test suite checks that
each differentiable name has a finite-difference gradient test.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpInfo:
    name: str
    family: str
    differentiable: bool


OPS: dict[str, OpInfo] = {}


def register(name: str, family: str, differentiable: bool = True) -> None:
    if name in OPS and OPS[name].family != family:
        raise ValueError(f"op name {name!r} registered twice ({OPS[name].family}, {family})")
    OPS[name] = OpInfo(name, family, differentiable)
