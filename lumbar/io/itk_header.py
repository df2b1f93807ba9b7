"""What a MetaImage or NRRD header may ask of ITK's readers, checked in Python before they see the file.

ITK's readers trust their headers: a MetaImage NDims out of range segfaults, aborts or hangs them; a detached
header's data file is opened wherever it points (``/etc/passwd``, ``../../``, a LIST entry, a symlink), which through
the service would read any file the process can; and a numbered slice pattern goes to C's ``sprintf``, where ``%n``
or a huge width crash the process (a format-string attack). Their parsers also differ from any simple reading (keys
end at a NUL, a lone CR or a colon; values split on tabs and other blanks), so mirroring them is not safe: a header
must instead be plain enough that every reading agrees. Printable ASCII only (a CRLF line end allowed), one
``Key = value`` (or ``field: value``) per line, the header complete within its first 64 KB, and every data file,
numbered slices expanded, inside the header's own folder.

Their decompressors trust the voxel stream too: a MetaImage whose zlib stream is damaged is read anyway, its voxels
whatever memory held (MetaIO prints "Uncompress failed" and carries on), and teem's gzip reader lets some damaged
NRRD streams through. So a compressed stream is decompressed here as well (``compressed_voxels_problem``): it must
end cleanly and give exactly the voxels the header declares.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

METAIMAGE_SUFFIXES = (".mha", ".mhd")
NRRD_SUFFIXES = (".nrrd", ".nhdr")
MAX_DIMENSIONS = 5  # the most ITK reads
HEADER_BYTES = 65536  # a text header must end within this, before its voxels
LIST_BYTES = 1 << 20  # the most a LIST of slice files may take
MAX_SLICE_FILES = 100_000
SAFE_PATTERN = re.compile(r"[^%]*(%0?[1-9]?d[^%]*)?")  # at most one slice number: %d, %03d (width at most 9)
PRINTABLE = re.compile(rb"[\x20-\x7e]*")
META_LINE = re.compile(r"([^=:]*)[=:](.*)")  # MetaIO's key ends at the first '=' or ':'
META_END = re.compile(rb"(^|\n) *ElementDataFile *[=:][^\n]*(\n|$)", re.IGNORECASE)
NRRD_FIELD = re.compile(r"([a-z][a-z ]*[a-z]): (.*)")
INTEGER = re.compile(r"-?[0-9]{1,9}")


class _Refused(Exception):
    """Why a header is refused (the message is the reason)."""


def _text_lines(data: bytes) -> list[str]:
    """``data`` split into lines, each printable ASCII once a CRLF's CR is dropped; refused otherwise."""
    lines = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not PRINTABLE.fullmatch(line):
            raise _Refused(f"header line {number} holds a control or non-ASCII character")
        lines.append(line.decode("ascii"))
    return lines


def _metaimage(data: bytes) -> tuple[dict[str, list[str]], list[str]]:
    """(values of every key, lower-cased, the lines after ElementDataFile) of a MetaImage header."""
    end = META_END.search(data[:HEADER_BYTES])
    if end is None:
        raise _Refused(f"no ElementDataFile line within its first {HEADER_BYTES // 1024} KB")
    values: dict[str, list[str]] = {}
    for line in _text_lines(data[: end.end()].rstrip(b"\n")):
        match = META_LINE.fullmatch(line)
        if not match:
            raise _Refused(f"header line {line[:40]!r} is not 'Key = value'")
        values.setdefault(match[1].strip().lower(), []).append(match[2].strip())
    listed = values["elementdatafile"][-1].upper().startswith("LIST")
    return values, _text_lines(data[end.end() :]) if listed else []


def _nrrd(data: bytes) -> tuple[dict[str, list[str]], list[str]]:
    """(values of every field, the lines after the data file field) of a NRRD header."""
    blank = re.search(rb"\r?\n\r?\n", data[:HEADER_BYTES])
    if blank is None and len(data) > HEADER_BYTES:
        raise _Refused(f"no end of header within its first {HEADER_BYTES // 1024} KB")
    lines = _text_lines(data[: blank.start()] if blank else data.rstrip(b"\r\n"))
    values: dict[str, list[str]] = {}
    for k, line in enumerate(lines[1:], start=1):
        if line.startswith("#"):
            continue
        pair, field = line.find(":="), line.find(": ")
        if pair >= 0 and (field < 0 or pair < field):  # teem's key:=value pair, kept as text, never opened
            continue
        match = NRRD_FIELD.fullmatch(line.lower()[: field + 2] + line[field + 2 :]) if field > 0 else None
        if not match:
            raise _Refused(f"header line {line[:40]!r} is not 'field: value'")
        name = match[1].replace(" ", "")
        values.setdefault(name, []).append(match[2].strip())
        if name == "datafile" and match[2].strip().upper().startswith("LIST"):
            return values, lines[k + 1 :]  # the slice files' names, one per line, end the header
    return values, []


def _data_files(value: str, after: list[str]) -> list[str]:
    """The file names a data-file value sends the reader to: none (LOCAL), each line of a LIST, every slice of a
    numbered pattern, or the one file named."""
    if value.upper() == "LOCAL":
        return []
    if value.upper().startswith("LIST"):
        return [line for line in after if line.strip()]
    words = [w for w in value.split(" ") if w]
    if "%" in value:
        if not SAFE_PATTERN.fullmatch(words[0]):
            raise _Refused(f"its data file name {words[0][:60]!r} holds a '%' other than one slice number (%d, %03d)")
        if len(words) not in (4, 5) or not all(INTEGER.fullmatch(w) for w in words[1:]):
            raise _Refused(f"its data file pattern {value[:60]!r} is not 'name%d first last step'")
        first, last, step = (int(w) for w in words[1:4])
        if step == 0 or not 0 < (last - first) // step + 1 <= MAX_SLICE_FILES:
            raise _Refused(f"its data file pattern {value[:60]!r} numbers no or too many slices")
        return [words[0] % k for k in range(first, last + (1 if step > 0 else -1), step)]
    return [value, *words]


def _header(path: Path) -> tuple[bytes, dict[str, list[str]], list[str]]:
    """The file's first bytes (header, LIST lines and then some), its header's values and the lines after its data
    file field, parsed as a MetaImage or a NRRD header by the file's ending."""
    with open(path, "rb") as file:
        data = file.read(HEADER_BYTES + LIST_BYTES)
    return data, *(_metaimage(data) if path.suffix.lower() in METAIMAGE_SUFFIXES else _nrrd(data))


def header_problem(path: Path) -> str | None:
    """Why ITK must not be handed this MetaImage or NRRD file (see the module's docstring), or None."""
    suffix = path.suffix.lower()
    if suffix not in METAIMAGE_SUFFIXES + NRRD_SUFFIXES:
        return None
    with open(path, "rb") as file:
        if suffix in NRRD_SUFFIXES and file.read(4) != b"NRRD":
            return None  # not a NRRD header at all: ITK's reader refuses it by itself
    try:
        _, values, after = _header(path)
        if suffix in METAIMAGE_SUFFIXES:
            for ndims in values.get("ndims", ["(none)"]):
                if not re.fullmatch(r"[0-9]{1,2}", ndims) or not 1 <= int(ndims) <= MAX_DIMENSIONS:
                    raise _Refused(f"its header declares NDims = {ndims[:20]!r}, not 1 to {MAX_DIMENSIONS} dimensions")
            data_files = values["elementdatafile"]
        else:
            data_files = values.get("datafile", [])
        folder = path.parent.resolve()
        for value in data_files:
            for name in _data_files(value, after):
                if not (folder / name).resolve().is_relative_to(folder):
                    raise _Refused(f"its header points to voxels outside its own folder ({name[:60]!r})")
    except _Refused as refused:
        return f"{refused}; refused"
    return None


@dataclass(frozen=True)
class _Stream:
    """Where a file's compressed voxels are: the file, the byte they start at, zlib's wbits (15 zlib, 31 gzip),
    how many compressed bytes the header says they take (None: to the end), and whether they are big-endian."""

    file: Path
    offset: int
    wbits: int
    size: int | None
    big_endian: bool


def _compressed_stream(path: Path) -> _Stream | None:
    """Where the compressed voxels of this MetaImage (zlib) or NRRD (gzip) file are, None when they are not
    compressed; refused (``_Refused``) where the header could send ITK elsewhere than this reading would look (a
    ``HeaderSize``, skipped lines or bytes, several files, a key twice, a flag other than True/False): fail closed."""
    data, values, _ = _header(path)
    if path.suffix.lower() in METAIMAGE_SUFFIXES:
        flag = values.get("compresseddata", ["False"])
        if len(flag) > 1 or flag[0].lower() not in ("true", "false"):
            raise _Refused(
                f"CompressedData {'given twice' if len(flag) > 1 else repr(flag[0][:20])}, not True or False"
            )
        if flag[0].lower() == "false":
            return None
        twice = [key for key, found in values.items() if len(found) > 1]
        if twice or "headersize" in values:
            raise _Refused(f"compressed voxels with {'the key ' + twice[0] + ' twice' if twice else 'a HeaderSize'}")
        end, source = META_END.search(data[:HEADER_BYTES]).end(), values["elementdatafile"][0]
        size = values.get("compresseddatasize", [None])[0]
        if size is not None and not INTEGER.fullmatch(size):
            raise _Refused(f"CompressedDataSize {size[:20]!r} is not a number")
        order = values.get("binarydatabyteordermsb", values.get("elementbyteordermsb", ["False"]))[0].lower()
        stream = (end, source, 15, int(size) if size is not None else None, order == "true")
    else:
        if values.get("encoding", ["raw"])[-1].lower() not in ("gzip", "gz"):
            return None
        if any(int(v) if INTEGER.fullmatch(v) else 1 for key in ("lineskip", "byteskip") for v in values.get(key, [])):
            raise _Refused("compressed voxels after skipped lines or bytes")
        blank = re.search(rb"\r?\n\r?\n", data[:HEADER_BYTES])
        source = values.get("datafile", ["LOCAL"])[-1]
        big = values.get("endian", ["little"])[-1].lower() == "big"
        stream = (blank.end() if blank else len(data), source, 31, None, big)
    offset, source, wbits, size, big_endian = stream
    if source.upper() == "LOCAL":
        return _Stream(path, offset, wbits, size, big_endian)
    if "%" in source or source.upper().startswith("LIST"):
        raise _Refused("compressed voxels in several files")
    return _Stream(path.parent / source, 0, wbits, size, big_endian)


@dataclass(frozen=True)
class Inflated:
    """What a file's compressed voxels decompress to: how many bytes, their hash, and their byte order."""

    size: int
    digest: bytes
    big_endian: bool

    def holds(self, voxels: np.ndarray) -> bool:
        """Whether ``voxels`` (the array an image reader returned) are exactly these bytes."""
        native = voxels.byteswap() if self.big_endian and voxels.itemsize > 1 else voxels
        return (
            self.size == voxels.nbytes
            and hashlib.blake2b(np.ascontiguousarray(native).view(np.uint8)).digest() == self.digest
        )


def inflate_voxels(path: Path, most_bytes: int) -> tuple[str | None, Inflated | None]:
    """(why the compressed voxels of ``path`` cannot be trusted, what they decompress to); (None, None) when they
    are not compressed. The stream (gzip: every member) must decompress without error, end where the header says,
    and give at most ``most_bytes`` (a bomb is cut off there). Run before ITK's reader, whose MetaIO would print
    "Uncompress failed" on a damaged stream and read it anyway."""
    try:
        stream = _compressed_stream(path)
    except _Refused as refused:
        return f"{refused}; refused", None
    if stream is None:
        return None, None
    digest, produced, consumed = hashlib.blake2b(), 0, 0
    inflate = zlib.decompressobj(stream.wbits)
    with open(stream.file, "rb") as file:
        file.seek(stream.offset)
        pending = b""
        try:
            while produced <= most_bytes:
                if not pending:
                    pending = file.read(1 << 20)
                    if not pending:
                        break
                chunk = inflate.decompress(pending, min(1 << 24, most_bytes + 1 - produced))
                consumed += len(pending) - len(inflate.unconsumed_tail) - len(inflate.unused_data)
                pending = inflate.unconsumed_tail
                produced += len(chunk)
                digest.update(chunk)
                if inflate.eof:
                    if stream.wbits != 31 or not inflate.unused_data:
                        break
                    pending, inflate = inflate.unused_data, zlib.decompressobj(stream.wbits)  # another gzip member
        except zlib.error as error:
            return f"its compressed voxels are damaged ({error}); refused", None
    if produced > most_bytes:
        return f"its compressed voxels hold more than the {most_bytes} bytes its header declares; refused", None
    if not inflate.eof:
        return "its compressed voxels end before their stream does (a cut or damaged file); refused", None
    if stream.size is not None and consumed != stream.size:
        return f"its compressed voxels take {consumed} bytes, not the {stream.size} its header declares; refused", None
    return None, Inflated(produced, digest.digest(), stream.big_endian)


NOT_THE_VOXELS = "its compressed voxels are not the voxels the image reader returned; refused"


def compressed_voxels_problem(path: Path, voxels: np.ndarray) -> str | None:
    """Why the compressed voxels of ``path`` are not exactly ``voxels`` (the array ITK read, compared by hash in
    the file's byte order), or None (also when they are not compressed): any way ITK and this reading could
    disagree on where the voxels are is a refusal, not a pass."""
    problem, inflated = inflate_voxels(path, voxels.nbytes)
    return problem or (NOT_THE_VOXELS if inflated is not None and not inflated.holds(voxels) else None)
