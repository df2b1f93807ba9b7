"""Exclusive locks on a folder or a lock file, held with ``flock``: the kernel drops one when its holder dies, so a
killed run never leaves a lock behind."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive(path: Path, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``path``: a folder, or a lock file (made if missing). Yields True once held, or
    False at once when ``blocking`` is off and another holder has it. Locks are per opened file: a second
    ``exclusive`` on the same path in this process waits for (or is refused by) the first."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY) if path.is_dir() else os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
