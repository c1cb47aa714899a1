"""Deferring Ctrl-C to batch boundaries, so an interrupted ``fit`` leaves whole updates.

Inside :class:`deferred_interrupt`, a first SIGINT only sets a flag; the training
loop calls :meth:`check` after each batch and raises ``KeyboardInterrupt`` then,
so the weights are those of the last finished batch. A second SIGINT interrupts
at once (the previous handler runs).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class deferred_interrupt:  # noqa: N801  (used as a context manager, like a function)
    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # second Ctrl-C: do not wait any longer
            signal.signal(signal.SIGINT, self._previous)
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> deferred_interrupt:
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handler)
                self._installed = True
            except (ValueError, OSError):  # embedded interpreters may refuse
                self._installed = False
        return self

    def check(self) -> None:
        """Raise the deferred ``KeyboardInterrupt``, if one arrived."""
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
        if exc[0] is None:
            self.check()  # an interrupt that arrived after the last batch is not lost
