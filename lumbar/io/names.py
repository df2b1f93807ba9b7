"""Output names of studies: the input's stem, unique within a batch so that no study overwrites another's."""

from __future__ import annotations

from pathlib import Path

from lumbar.io.read import suffix_of


def study_stem(path: Path) -> str:
    """Output name of a study: the file name without its image suffix, or the folder's name."""
    suffix = suffix_of(path)
    return path.name[: -len(suffix)] if suffix and path.is_file() else path.name


def unique_stems(paths: list[Path]) -> dict[Path, str]:
    """Output names for a batch: the study stem, made unique (``scan``, ``scan_mha``, ``scan_2``)."""
    stems: dict[Path, str] = {}
    used: set[str] = set()
    for path in paths:
        stem = study_stem(path)
        if stem in used:
            stem = f"{stem}_{suffix_of(path).lstrip('.').replace('.', '_')}" if suffix_of(path) else stem
        base, n = stem, 2
        while stem in used:
            stem, n = f"{base}_{n}", n + 1
        used.add(stem)
        stems[path] = stem
    return stems
