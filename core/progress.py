"""One progress-callback protocol for every long computation (CLI bars and the UI alike).

A callback receives the fraction done in [0, 1] and a short message. Cancellation is a
callback raising :class:`Cancelled`; the computation then stops at its next report.
"""
from __future__ import annotations

import sys
from typing import Protocol


class Progress(Protocol):
    def __call__(self, fraction: float, message: str = "") -> None: ...


class Cancelled(Exception):
    """Raised by a progress callback to stop the computation that reports to it."""


def null_progress(fraction: float, message: str = "") -> None:
    """A callback that ignores every report."""


def scaled(progress: Progress | None, start: float, end: float) -> Progress:
    """Map a sub-task's [0, 1] onto [start, end] of the parent's progress."""
    parent = progress or null_progress
    return lambda fraction, message="": parent(start + (end - start) * fraction, message)


class ConsoleProgress:
    """A one-line text bar on stderr, for the CLI."""

    def __init__(self, width: int = 30, stream=sys.stderr) -> None:
        self.width, self.stream = width, stream

    def __call__(self, fraction: float, message: str = "") -> None:
        filled = int(self.width * min(max(fraction, 0.0), 1.0))
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {100 * fraction:5.1f}% {message[:60]:<60}")
        if fraction >= 1.0:
            self.stream.write("\n")
        self.stream.flush()
