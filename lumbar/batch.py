"""Run one job over many studies: unique output names, and a study that fails does not stop the others.

``lumbar analyze`` and ``lumbar segment`` with many inputs use it; it knows nothing of the command line, so
that a batch command or a service can run it too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lumbar.errors import InputError
from lumbar.io.names import unique_stems
from lumbar.io.read import discover_studies


@dataclass
class BatchOutcome:
    """What became of every study: its output name, or the one-line reason it failed. Results are not kept: each
    goes to ``on_done`` and is dropped, so that a batch of a thousand studies holds one study's memory at a time."""

    done: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.done) + len(self.failed)


def plan(inputs: Iterable[str | Path]) -> dict[Path, str]:
    """Every study in ``inputs`` (see :func:`lumbar.io.read.discover_studies`) and its unique output name."""
    return unique_stems(discover_studies(list(inputs)))


def run_batch(
    studies: dict[Path, str],
    work: Callable[[Path, str], Any],
    *,
    on_done: Callable[[Path, str, Any], None] | None = None,
    on_failed: Callable[[Path, str], None] | None = None,
    keep_going: bool = True,
) -> BatchOutcome:
    """Run ``work(study, name)`` on every study of a :func:`plan`. A study whose input is bad (:class:`InputError`)
    is recorded with its reason and the others go on (``keep_going``); anything else is a bug and stops the batch."""
    outcome = BatchOutcome()
    for study, name in studies.items():
        try:
            result = work(study, name)
        except InputError as exc:
            if not keep_going:
                raise
            reason = " ".join(str(exc).split())
            outcome.failed.append((study, reason))
            if on_failed:
                on_failed(study, reason)
            continue
        outcome.done.append((study, name))
        if on_done:
            on_done(study, name, result)
        del result
    return outcome
