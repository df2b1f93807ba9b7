"""Headers ITK must never see (lumbar/io/itk_header.py), each a way found to crash, hang or misdirect its readers,
and headers it must still see: known answers, no ITK involved (the hostile-input corpus runs the CLI on a few)."""

import gzip
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lumbar.errors import InputError
from lumbar.io import read_image
from lumbar.io.itk_header import header_problem

META = "ObjectType = Image\nNDims = 3\nDimSize = 30 40 12\nElementType = MET_FLOAT\n"
NRRD = "NRRD0004\ntype: float\ndimension: 3\nsizes: 30 40 12\nencoding: raw\nendian: little\n"
PAD = "".join(f"Junk{i} = {'a' * 100}\n" for i in range(700))  # ~75 KB of unknown fields
COMMENTS = "".join(f"# {'a' * 100}\n" for _ in range(700))

REFUSED = {  # name, header text, what the reason must say
    "NDims -3": ("a.mha", META.replace("NDims = 3", "NDims = -3") + "ElementDataFile = LOCAL\n", "NDims"),
    "NDims 100": ("a.mha", META.replace("NDims = 3", "NDims = 100") + "ElementDataFile = LOCAL\n", "NDims"),
    "NDims after a colon": ("a.mha", META.replace("NDims = 3", "NDims: -3") + "ElementDataFile = LOCAL\n", "NDims"),
    "NDims twice": ("a.mha", META + "NDims = -3\nElementDataFile = LOCAL\n", "NDims"),
    "NDims superscript": ("a.mha", META.replace("NDims = 3", "NDims = \xb2") + "ElementDataFile = LOCAL\n", "ASCII"),
    "no NDims": ("a.mha", META.replace("NDims = 3\n", "") + "ElementDataFile = LOCAL\n", "NDims"),
    "NDims split by a CR": ("a.mha", META + "NDims\rjunk = -3\nElementDataFile = LOCAL\n", "control"),
    "NDims split by a NUL": ("a.mha", META + "NDims\0junk = -3\nElementDataFile = LOCAL\n", "control"),
    "NDims after 64 KB": ("a.mha", META + PAD + "NDims = -3\nElementDataFile = LOCAL\n", "64 KB"),
    "absolute data file": ("a.mhd", META + "ElementDataFile = /etc/passwd\n", "outside its own folder"),
    "data file two folders up": ("a.mhd", META + "ElementDataFile = ../../secret.raw\n", "outside its own folder"),
    "data file key alone on its line": ("a.mhd", META + "ElementDataFile\n= ../../secret.raw\n", "ElementDataFile"),
    "data file after 64 KB": ("a.mhd", META + PAD + "ElementDataFile = ../../secret.raw\n", "64 KB"),
    "LISTX": ("a.mhd", META + "ElementDataFile = LISTX\n../../secret.raw\n", "outside its own folder"),
    "LIST entry '#/..'": ("a.mhd", META + "ElementDataFile = LIST\n#/../../../secret.raw\n", "outside its own folder"),
    "pattern %n": ("a.mhd", META + "ElementDataFile = x%n.raw 1 12 1\n", "'%'"),
    "pattern %n after a tab": ("a.mhd", META + "ElementDataFile = x%d\t%n 0 11 1\n", "control"),
    "pattern without numbers": ("a.mhd", META + "ElementDataFile = x%d.raw\n", "first last step"),
    "pattern of a billion slices": ("a.mhd", META + "ElementDataFile = x%d.raw 0 999999999 1\n", "too many"),
    "pattern step 0": ("a.mhd", META + "ElementDataFile = x%d.raw 0 11 0\n", "too many"),
    "NUL in the value": ("a.mhd", META + "ElementDataFile = x.raw\0\n", "control"),
    "NRRD absolute": ("a.nhdr", NRRD + "data file: /etc/passwd\n\n", "outside its own folder"),
    "NRRD two folders up": ("a.nhdr", NRRD + "data file: ../../secret.raw\n\n", "outside its own folder"),
    "NRRD datafile spelling": ("a.nhdr", NRRD + "datafile: ../../secret.raw\n\n", "outside its own folder"),
    "NRRD upper case field": ("a.nhdr", NRRD + "DATA FILE: ../../secret.raw\n\n", "outside its own folder"),
    "NRRD %n": ("a.nhdr", NRRD + "data file: x%n 1 12 1\n\n", "'%'"),
    "NRRD width 99999999": ("a.nhdr", NRRD + "data file: x%99999999d 1 12 1\n\n", "'%'"),
    "NRRD %n after a VT": ("a.nhdr", NRRD + "data file: x%d\x0b%n 0 11 1\n\n", "control"),
    "NRRD %n after a NBSP": ("a.nhdr", NRRD + "data file: x%d\xa0%n 0 11 1\n\n", "ASCII"),
    "NRRD ':=' after ': '": ("a.nhdr", NRRD + "data file: x%d%n 0 11 1 :=\n\n", "'%'"),
    "NRRD LIST with ':='": ("a.nhdr", NRRD + "data file: LIST 3 :=\n../../secret.raw\n", "outside its own folder"),
    "NRRD CR-only lines": ("a.nhdr", NRRD.replace("\n", "\r") + "data file: ../../secret.raw\r\r", "control"),
    "NRRD one CR": ("a.nhdr", NRRD[:-1] + "\rdata file: ../../secret.raw\n\n", "control"),
    "NRRD after 64 KB of comments": ("a.nhdr", NRRD + COMMENTS + "data file: ../../secret.raw\n\n", "64 KB"),
    "NRRD LIST entry '#/..'": ("a.nhdr", NRRD + "data file: LIST 3\n#/../../../secret.raw\n", "outside its own folder"),
    "NRRD line that is no field": ("a.nhdr", NRRD + "data file ../../secret.raw\n\n", "field: value"),
}


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    payload = np.zeros(12 * 40 * 30, np.float32).tobytes() if name.endswith(".mha") else b""
    (folder / name).write_bytes(text.encode("latin-1") + payload)
    return folder / name


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_header_is_refused_with_its_reason(tmp_path, case):
    name, text, reason = REFUSED[case]
    problem = header_problem(write(tmp_path / "a" / "b", name, text))
    assert problem is not None and reason in problem and problem.endswith("refused"), problem


def test_slices_that_are_symlinks_out_of_the_folder_are_refused(tmp_path):
    (tmp_path / "secret.raw").write_bytes(b"\0" * 4800)
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    for k in range(12):
        (folder / f"s{k}").symlink_to("../../secret.raw")
    for name, text in (
        ("a.mhd", META + "ElementDataFile = s%d 0 11 1\n"),
        ("a.nhdr", NRRD + "data file: s%d 0 11 1\n"),
    ):
        assert "outside its own folder" in header_problem(write(folder, name, text))


@pytest.mark.parametrize("suffix", [".mha", ".mhd", ".nrrd", ".nhdr"])
def test_headers_simpleitk_writes_pass(tmp_path, suffix):
    """SimpleITK's own files, with the NIfTI keys it copies into MetaImage headers (``dim[0] = 3``)."""
    image = sitk.GetImageFromArray(np.zeros((3, 4, 5), np.int16))
    image.SetMetaData("dim[0]", "3")
    image.SetMetaData("ITK_InputFilterName", "NiftiImageIO")
    sitk.WriteImage(image, str(tmp_path / f"w{suffix}"))
    assert header_problem(tmp_path / f"w{suffix}") is None


@pytest.mark.parametrize(
    "name,text",
    [
        ("a.mhd", META + "ElementDataFile = voxels.raw\n"),
        ("a.mhd", META.replace("\n", "\r\n") + "ElementDataFile = voxels.raw\r\n"),
        ("a.mhd", META + "ElementDataFile = x%03d.raw 0 11 1\n"),
        ("a.mhd", META + "ElementDataFile = x%d.raw 11 0 -1\n"),
        ("a.mhd", META + "ElementDataFile = LIST\nx0.raw\nx1.raw\n"),
        ("a.nhdr", NRRD + "# a comment\nkey:=value: with colons\ndata file: voxels.raw\n"),
        ("a.nhdr", NRRD.replace("\n", "\r\n") + "data file: voxels.raw\r\n\r\n"),
        ("a.nhdr", NRRD + "data file: x%03d.raw 0 11 1 2\n"),
        ("a.nhdr", NRRD + "data file: LIST 2\nx0.raw\nx1.raw\n"),
        ("a.nrrd", "NRRD0004\ntype: float\ndimension: 1\nsizes: 2\nencoding: raw\n\n\x00\x01\r\x02"),
        ("a.nrrd", "not a NRRD at all\x00\x01"),  # ITK refuses it by itself
        ("a.png", "\x89PNG\r\n\x1a\n"),  # not an ITK format: not this check's business
    ],
)
def test_sound_headers_pass(tmp_path, name, text):
    assert header_problem(write(tmp_path, name, text)) is None


VOXELS = (np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) * 7) % 300


def _compressed(folder: Path, name: str) -> Path:
    path = folder / name
    sitk.WriteImage(sitk.GetImageFromArray(VOXELS), str(path), useCompression=True)
    return path


def _payload_file(path: Path) -> tuple[Path, int]:
    """The file holding the compressed voxels and where they start (after the header when attached)."""
    data = path.read_bytes()
    if path.suffix == ".mha":
        return path, data.index(b"ElementDataFile = LOCAL\n") + 24
    if path.suffix == ".nrrd":
        return path, data.index(b"\n\n") + 2
    return next(p for p in path.parent.iterdir() if p != path and p.stem.startswith(path.stem)), 0


@pytest.mark.parametrize("name", ["v.mha", "v.mhd", "v.nrrd", "v.nhdr"])
def test_compressed_voxels_are_checked_to_the_last_byte(tmp_path, name):
    """MetaIO reads a damaged zlib stream anyway (its voxels whatever memory held), teem lets some damaged gzip
    streams through: the stream must end cleanly and give exactly the voxels the reader returned."""
    from lumbar.io.itk_header import compressed_voxels_problem

    path = _compressed(tmp_path, name)
    assert compressed_voxels_problem(path, VOXELS) is None
    assert "more than" in compressed_voxels_problem(path, VOXELS.ravel()[:-1])
    assert "not the voxels" in compressed_voxels_problem(path, VOXELS + 1)
    source, start = _payload_file(path)
    whole = source.read_bytes()
    source.write_bytes(whole[: start + (len(whole) - start) // 2])  # cut half way through the stream
    assert "end before" in compressed_voxels_problem(path, VOXELS)
    flipped = bytearray(whole)
    flipped[start + 12] ^= 0xFF  # one byte of the deflate data, well inside it
    source.write_bytes(bytes(flipped))
    assert compressed_voxels_problem(path, VOXELS) is not None
    with pytest.raises(InputError):
        read_image(path)  # the reader asks, not only this function (teem refuses this one by itself too)


def test_a_damaged_gzip_stream_teem_lets_through_is_refused(tmp_path):
    """Byte 63 of this NRRD's gzip stream set to 0: teem reads it without a word and returns other voxels."""
    path = _compressed(tmp_path, "v.nrrd")
    source, start = _payload_file(path)
    damaged = bytearray(source.read_bytes())
    damaged[start + 63] = 0
    source.write_bytes(bytes(damaged))
    assert not np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), VOXELS)  # through, changed
    with pytest.raises(InputError, match="compressed voxels"):
        read_image(path)


def _edited(path: Path, old: bytes, new: bytes) -> Path:
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        (b"CompressedData = True", b"CompressedData = 1", "not True or False"),  # MetaIO reads only the first letter
        (b"CompressedData = True", b"CompressedData = True\ncompresseddata = False", "twice"),  # its keys: case
        (b"ObjectType = Image", b"ObjectType = Image\nHeaderSize = 40", "HeaderSize"),
    ],
)
def test_a_metaimage_header_that_could_send_itk_to_other_bytes_is_refused(tmp_path, old, new, why):
    """Ways the reviewer of the check found for ITK and this reading to disagree on where the voxels are: each is
    refused (fail closed), so a damaged stream cannot pass through the disagreement."""
    path = _edited(_compressed(tmp_path, "v.mha"), old, new)
    with pytest.raises(InputError, match=why):
        read_image(path)


def test_a_compressed_data_size_short_of_the_stream_is_refused(tmp_path):
    path = _compressed(tmp_path, "v.mha")
    size = re.search(rb"CompressedDataSize = (\d+)", path.read_bytes())
    _edited(path, size[0], b"CompressedDataSize = " + str(int(size[1]) - 10).encode())
    with pytest.raises(InputError, match="compressed voxels"):
        read_image(path)


def test_a_detached_zlib_file_whose_name_holds_a_space_is_checked(tmp_path):
    header = _compressed(tmp_path, "v.mhd")
    (tmp_path / "v.zraw").rename(tmp_path / "my v.zraw")
    _edited(header, b"ElementDataFile = v.zraw", b"ElementDataFile = my v.zraw")
    assert np.array_equal(np.sort(read_image(header).array.ravel()), np.sort(VOXELS.ravel()))
    data = bytearray((tmp_path / "my v.zraw").read_bytes())
    data[12] ^= 0xFF
    (tmp_path / "my v.zraw").write_bytes(bytes(data))
    with pytest.raises(InputError, match="compressed voxels"):
        read_image(header)


def test_nrrd_skips_before_gzip_voxels_are_refused_and_several_gzip_members_read(tmp_path):
    path = _compressed(tmp_path, "v.nrrd")
    _edited(path, b"encoding: gzip", b"encoding: gzip\nbyte skip: 0")  # no skip: read as before
    assert np.array_equal(np.sort(read_image(path).array.ravel()), np.sort(VOXELS.ravel()))
    _edited(path, b"byte skip: 0", b"byte skip: 5")
    with pytest.raises(InputError):  # teem's own reading fails here too; ours refuses the skip whatever follows
        read_image(path)
    from lumbar.io.itk_header import compressed_voxels_problem

    assert "skipped" in compressed_voxels_problem(path, VOXELS)
    members = tmp_path / "m.nrrd"  # the voxels as two gzip members, one after the other, as gzip allows
    header = _compressed(tmp_path, "w.nrrd").read_bytes().split(b"\n\n")[0] + b"\n\n"
    raw = VOXELS.astype("<i2").tobytes()
    members.write_bytes(header + gzip.compress(raw[:100]) + gzip.compress(raw[100:]))
    assert np.array_equal(np.sort(read_image(members).array.ravel()), np.sort(VOXELS.ravel()))


def test_a_small_header_over_a_huge_stream_is_refused_without_inflating_it(tmp_path):
    """A decompression bomb: 1000 voxels declared over a stream that inflates to 1 GB of zeros."""
    bomb = zlib.compressobj()
    stream = b"".join(bomb.compress(bytes(1 << 24)) for _ in range(64)) + bomb.flush()
    header = META.replace("DimSize = 30 40 12", "DimSize = 10 10 10").replace("MET_FLOAT", "MET_UCHAR")
    path = tmp_path / "bomb.mha"
    path.write_bytes(f"{header}CompressedData = True\nElementDataFile = LOCAL\n".encode() + stream)
    with pytest.raises(InputError, match="more than the 1000 bytes"):
        read_image(path)


def test_uncompressed_voxels_are_not_decompressed(tmp_path):
    from lumbar.io.itk_header import compressed_voxels_problem

    path = tmp_path / "v.mha"
    sitk.WriteImage(sitk.GetImageFromArray(VOXELS), str(path))
    assert compressed_voxels_problem(path, VOXELS[:1]) is None  # not compressed: the size is ITK's to check
