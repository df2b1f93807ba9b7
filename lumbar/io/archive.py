"""Unpacking a zipped study safely: nothing may land outside the folder it is extracted to."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from lumbar.errors import InputError

MAX_ZIP_BYTES = 4 * 1024**3


def safe_extract_zip(path: Path, dest: Path) -> None:
    """Extract a zip, refusing absolute paths, '..' escapes, links and archives that inflate past 4 GiB."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            if not members:
                raise InputError(f"{path}: archive is empty")
            if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                raise InputError(f"{path}: archive expands to more than {MAX_ZIP_BYTES // 1024**3} GiB")
            root = dest.resolve()
            for member in members:
                target = (dest / member.filename).resolve()
                if not target.is_relative_to(root) or (member.external_attr >> 16) & 0o170000 == 0o120000:
                    raise InputError(f"{path}: archive member {member.filename!r} points outside the archive")
            zf.extractall(dest)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, zlib.error, EOFError) as exc:
        raise InputError(f"{path}: not a readable zip archive ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot extract the archive ({exc.strerror or exc})") from None
