"""How long work tells its caller where it is: named stages, each with an optional count of steps.

The pipelines, the writer and training call a :class:`Progress`; the command line shows it with rich,
a service or a notebook can pass its own, and by default nothing is shown.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def stage(self, name: str, total: int | None = None) -> None:
        """A new stage begins (``total`` steps, or unknown)."""

    def advance(self, steps: int = 1) -> None:
        """``steps`` more steps of the current stage are done."""


class Silent:
    """Progress that shows nothing."""

    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass


SILENT = Silent()
