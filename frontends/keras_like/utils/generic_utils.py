"""Keras' ``Progbar``: the progress bar ``fit``/``evaluate`` print at ``verbose=1``."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import IO, Any


def format_value(value: float) -> str:
    """Keras' rule: 4 decimals, or scientific notation for tiny magnitudes."""
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def format_duration(seconds: float) -> str:
    if seconds > 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds > 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


def format_per_step(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


class Progbar:
    """``update(current, values)``: ``values`` are ``(name, value)`` pairs averaged over the
    steps (weighted by step size) unless listed in ``stateful_metrics``.

    On a terminal the bar is redrawn in place; elsewhere (logs, CI) only the final
    line is written, so captured output stays one line per bar.
    """

    def __init__(self, target: int | None, width: int = 30, verbose: int = 1, interval: float = 0.05,
                 stateful_metrics: Iterable[str] | None = None, file: IO[str] | None = None) -> None:
        self.target, self.width, self.verbose, self.interval = target, width, verbose, interval
        self.stateful_metrics = set(stateful_metrics or ())
        self.file = file or sys.stdout
        self._dynamic = bool(getattr(self.file, "isatty", lambda: False)()) or "ipykernel" in sys.modules
        self._sums: dict[str, list[float]] = {}
        self._order: list[str] = []
        self._start = time.time()
        self._last_update = 0.0
        self._seen = 0
        self._width_written = 0

    def _record(self, current: int, values: Iterable[tuple[str, Any]]) -> None:
        step = max(current - self._seen, 1)
        for name, value in values:
            if name not in self._sums:
                self._order.append(name)
                self._sums[name] = [0.0, 0]
            if name in self.stateful_metrics:
                self._sums[name] = [float(value), 1]
            else:
                self._sums[name][0] += float(value) * step
                self._sums[name][1] += step
        self._seen = current

    def averages(self) -> dict[str, float]:
        return {k: s / max(c, 1) for k, (s, c) in self._sums.items()}

    def _values_text(self) -> str:
        avg = self.averages()
        return "".join(f" - {k}: {format_value(avg[k])}" for k in self._order)

    def update(self, current: int, values: Iterable[tuple[str, Any]] | None = None,
               force: bool = False) -> None:
        self._record(current, values or [])
        now = time.time()
        done = self.target is not None and current >= self.target
        if self.verbose == 1:
            if not done and not force and now - self._last_update < self.interval:
                return
            self._last_update = now
            if not self._dynamic and not done:
                return
            self._write_bar(current, now, done)
        elif self.verbose == 2 and done:
            self.file.write(f" - {format_duration(now - self._start)}{self._values_text()}\n")
            self.file.flush()

    def _write_bar(self, current: int, now: float, done: bool) -> None:
        elapsed = now - self._start
        if self.target is not None:
            digits = len(str(self.target))
            bar = f"{current:>{digits}d}/{self.target} ["
            filled = int(self.width * current / self.target) if self.target else self.width
            if filled > 0:
                bar += "=" * (filled - 1) + (">" if current < self.target else "=")
            bar += "." * (self.width - filled) + "]"
        else:
            bar = f"{current:7d}/Unknown"
        per_step = elapsed / current if current else 0.0
        if done:
            info = f" - {format_duration(elapsed)} {format_per_step(per_step)}"
        else:
            eta = per_step * (self.target - current) if self.target else 0.0
            info = f" - ETA: {format_duration(eta)}"
        line = bar + info + self._values_text()
        if self._dynamic:
            pad = max(self._width_written - len(line), 0)
            self.file.write("\r" + line + " " * pad)
            self._width_written = len(line)
            if done:
                self.file.write("\n")
        else:
            self.file.write(line + "\n")
        self.file.flush()

    def add(self, n: int, values: Iterable[tuple[str, Any]] | None = None) -> None:
        self.update(self._seen + n, values)
