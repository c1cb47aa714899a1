"""Modes: which rewrites run and which backend executes the result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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


# The LLVM backend is not built yet: native modes run on the reference evaluator
# until it is, so every mode already computes the right thing.
PREDEFINED = {
    "FAST_RUN": Mode("py", "fast_run"),
    "FAST_COMPILE": Mode("py", "fast_compile"),
    "PY": Mode("py", "fast_run"),
    "DEBUG": Mode("py", "fast_run"),
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
