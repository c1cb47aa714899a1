"""Modes: which rewrites run and which backend executes the result."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphc.config import config
from graphc.graph.fgraph import FunctionGraph


@dataclass(frozen=True)
class Mode:
    """``Mode(backend='py'|'llvm'|'debug', rewrites='fast_run'|'fast_compile'|'none', ...)``.

    ``including``/``excluding`` add or remove rewrites (or whole phases) by name.
    """

    backend: str = "py"
    rewrites: str = "fast_run"
    including: tuple[str, ...] = field(default_factory=tuple)
    excluding: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "including", tuple(self.including))
        object.__setattr__(self, "excluding", tuple(self.excluding))

    def rewrite(self, fgraph: FunctionGraph) -> list[str]:
        """Rewrite ``fgraph`` in place; returns the log of rewrites that fired."""
        try:
            from graphc.rewrite import rewrite_graph
        except ImportError:  # the rewrite package is optional until it lands
            return []
        return rewrite_graph(fgraph, self)

    def make_program(self, fgraph: FunctionGraph) -> Callable[[list[Any]], list[Any]]:
        """The executor of ``fgraph`` for this mode's backend."""
        if self.backend == "py":
            from graphc.backend.reference import ReferenceProgram

            return ReferenceProgram(fgraph)
        if self.backend in ("llvm", "debug"):
            from graphc.backend.llvm.executor import LLVMProgram

            opt = 1 if self.rewrites == "fast_compile" else 3
            return LLVMProgram(fgraph, debug=self.backend == "debug", opt=opt)
        raise ValueError(f"unknown backend {self.backend!r}; use 'py', 'llvm' or 'debug'")


# Native modes run elementwise work through LLVM kernels (other ops on their reference
# perform); DEBUG checks every native node against the reference as it runs.
PREDEFINED = {
    "FAST_RUN": Mode("llvm", "fast_run"),
    "FAST_COMPILE": Mode("llvm", "fast_compile"),
    "PY": Mode("py", "fast_run"),
    "DEBUG": Mode("debug", "fast_run"),
    "NONE": Mode("py", "none"),
}


def get_mode(mode: str | Mode | None) -> Mode:
    if mode is None:
        mode = config.mode
    if isinstance(mode, Mode):
        return mode
    if isinstance(mode, str) and mode.upper() in PREDEFINED:
        return PREDEFINED[mode.upper()]
    raise ValueError(f"unknown mode {mode!r}; use one of {sorted(PREDEFINED)} or a graphc.Mode")


def with_changes(mode: Mode, including: Sequence[str] = (), excluding: Sequence[str] = ()) -> Mode:
    return Mode(mode.backend, mode.rewrites, mode.including + tuple(including),
                mode.excluding + tuple(excluding))
