"""Property tests (Hypothesis): hostile bytes and headers never crash a reader, any voxel orientation reads back
head up and anterior left, and measurements on any small label map stay non-negative or say "not measurable"."""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import math
import tempfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from test_readers import dataset_alone, write_dicom

from lumbar.errors import InputError
from lumbar.io import read_image
from lumbar.labels import VERTEBRA_IDS, disc_label
from lumbar.tasks.levels import Level
from lumbar.tasks.measurements import measure_spine


def fuzz(examples: int) -> settings:
    """Enough examples to reach past each format's magic number, few enough for the whole file to run in ~30 s."""
    return settings(max_examples=examples, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


SUFFIXES = (".nii", ".nii.gz", ".mha", ".nrrd", ".png", ".jpg", ".dcm", ".zip")
VOLUME = (np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) * 7) % 300


@functools.cache
def valid_bytes(suffix: str) -> bytes:
    """A small valid file of each format, for the fuzzer to truncate and corrupt (random bytes alone rarely pass
    a format's magic number, so they never reach the header and pixel parsing)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"valid{suffix}"
        if suffix in (".nii", ".nii.gz"):
            nib.save(nib.Nifti1Image(VOLUME, np.diag([0.8, 0.9, 3.0, 1.0])), path)
        elif suffix in (".mha", ".nrrd"):
            sitk.WriteImage(sitk.GetImageFromArray(VOLUME), str(path))
        elif suffix in (".png", ".jpg"):
            Image.fromarray(VOLUME[0].astype(np.uint8)).save(path)
        elif suffix == ".dcm":
            write_dicom(path, VOLUME[0].astype(np.uint16), "MR", PixelSpacing=[0.5, 0.5])
        else:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                archive.writestr("series/1.dcm", valid_bytes(".dcm"))
            return buffer.getvalue()
        return path.read_bytes()


@st.composite
def damaged(draw: st.DrawFn, suffix: str) -> bytes:
    """Arbitrary bytes, or a valid file cut short and with some bytes overwritten."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=600))
    data = bytearray(valid_bytes(suffix))
    data = data[: draw(st.integers(0, len(data)))]
    for _ in range(draw(st.integers(0, 8)) if data else 0):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


def read_or_refuse(path: Path) -> None:
    """The property every reader keeps: a file reads, or is refused with ``InputError``; nothing else escapes."""
    with contextlib.suppress(InputError):
        read_image(path)


@pytest.mark.parametrize("suffix", SUFFIXES)
@fuzz(300)
@given(data=st.data())
def test_any_bytes_under_a_supported_ending_read_or_raise_input_error(suffix, data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data.draw(damaged(suffix)))
        read_or_refuse(path)


@functools.cache
def valid_dataset_alone(implicit: bool) -> bytes:
    """The valid DICOM's dataset without the preamble and meta header (:func:`dataset_alone`)."""
    return dataset_alone(pydicom.dcmread(io.BytesIO(valid_bytes(".dcm"))), implicit=implicit)


@pytest.mark.parametrize("name", ["IM0001", "fuzz.dcm"])
@fuzz(200)
@given(data=st.data())
def test_a_damaged_dataset_stored_without_its_preamble_reads_or_raises_input_error(name, data):
    """Such a file is read forced (pydicom would not otherwise), so damage in it meets pydicom's most lenient path;
    bytes that merely begin as a dataset does go through it too."""
    if data.draw(st.booleans()):
        damaged_bytes = data.draw(st.sampled_from([b"\x08\x00", b"\x02\x00"])) + data.draw(st.binary(max_size=600))
    else:
        raw = bytearray(valid_dataset_alone(data.draw(st.booleans())))
        raw = raw[: data.draw(st.integers(2, len(raw)))]
        for _ in range(data.draw(st.integers(0, 8)) if len(raw) > 2 else 0):  # its first tag's group kept
            raw[data.draw(st.integers(2, len(raw) - 1))] = data.draw(st.integers(0, 255))
        damaged_bytes = bytes(raw)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(damaged_bytes)
        read_or_refuse(path)
        read_or_refuse(Path(folder))


COLUMNS = b"(\x00\x11\x00US"  # the Columns element (0028,0011) as explicit-VR little-endian DICOM writes it


@fuzz(100)
@given(cut=st.none() | st.integers(0, 10), vr=st.binary(min_size=2, max_size=2))
@example(cut=8, vr=b"US")  # found: cut after the element's length, int('') escaped as ValueError
@example(cut=6, vr=b"US")  # found: cut inside the element, a list where Columns belongs escaped as TypeError
@example(cut=None, vr=b"\x00S")  # found: an unknown VR escaped as NotImplementedError
@example(cut=9, vr=b"\x00\x00")  # found: one byte of a two-byte value escaped as BytesLengthException
def test_dicom_damaged_in_its_columns_element_reads_or_raises_input_error(cut, vr):
    """A DICOM whose Columns element has any VR and is cut off anywhere within (``cut`` bytes of its 10 kept):
    pydicom opens such a file and fails only when the value is first read, past the reader's open checks."""
    data = valid_bytes(".dcm")
    at = data.index(COLUMNS)
    data = data[: at + 4] + vr + data[at + 6 :]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "damaged.dcm"
        path.write_bytes(data if cut is None else data[: at + cut])
        read_or_refuse(path)


ODD_FLOATS = st.one_of(st.floats(-5, 5), st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 1e-30, 1e30]))


def nifti_with_header(path: Path, array: np.ndarray, fields: dict[int, tuple[str, list]]) -> None:
    """A NIfTI-1 file of ``array`` whose header bytes at each offset are overwritten as given: nibabel refuses to
    save the headers worth fuzzing (negative voxel sizes under a qform, say), so they are written raw."""
    nib.save(nib.Nifti1Image(array, np.eye(4)), path)
    raw = bytearray(path.read_bytes())
    for offset, (dtype, values) in fields.items():
        packed = np.asarray(values, dtype).tobytes()
        raw[offset : offset + len(packed)] = packed
    path.write_bytes(raw)


@fuzz(400)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    dtype=st.sampled_from(["uint8", "int16", "int32", "float32", "float64", "complex64"]),
    pixdim=st.lists(ODD_FLOATS, min_size=5, max_size=5),
    quatern=st.lists(ODD_FLOATS, min_size=6, max_size=6),
    srow=st.lists(ODD_FLOATS, min_size=12, max_size=12),
    codes=st.lists(st.integers(-1, 5), min_size=2, max_size=2),
)
@example(  # found: axes 1e30 apart in size pass the determinant check; nibabel then drops an axis (OrientationError)
    shape=[1, 4, 1],
    dtype="uint8",
    pixdim=[0.0, 0.0, 1.0, 0.0, 0.0],
    quatern=[0.0] * 6,
    srow=[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1e30, 1.0, 0.0, 0.0],
    codes=[0, 1],
)
def test_any_nifti_header_reads_or_raises_input_error(shape, dtype, pixdim, quatern, srow, codes):
    """Shapes of 1-4 axes (some of one voxel), any voxel type, and a header whose voxel sizes, qfac, qform and
    sform hold anything (zero, negative, NaN, infinite) under any form codes."""
    array = np.arange(math.prod(shape)).reshape(shape).astype(dtype)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "header.nii"
        # NIfTI-1 offsets (little-endian, as nibabel writes here): pixdim[0..4], qform/sform codes, quaternion
        # and offsets, sform rows.
        fields = {76: ("<f4", pixdim), 252: ("<i2", codes), 256: ("<f4", quatern), 280: ("<f4", srow)}
        nifti_with_header(path, array, fields)
        read_or_refuse(path)


def rotation(angles: tuple[float, float, float]) -> np.ndarray:
    """Rotation about x, then y, then z (radians)."""
    result = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = math.cos(angle), math.sin(angle)
        turn = np.eye(3)
        i, j = [k for k in range(3) if k != axis]
        turn[[i, i, j, j], [i, j, i, j]] = c, -s, s, c
        result = turn @ result
    return result


TILT = math.radians(20)  # small enough that each voxel axis stays nearest one world axis


@fuzz(300)
@given(
    order=st.permutations([0, 1, 2]),
    flips=st.tuples(*[st.sampled_from([-1.0, 1.0])] * 3),
    angles=st.tuples(*[st.floats(-TILT, TILT)] * 3),
    spacing=st.tuples(*[st.floats(0.1, 10.0)] * 3),
    shape=st.tuples(*[st.integers(2, 6)] * 3),
    marker=st.tuples(*[st.floats(0, 1)] * 3),
    origin=st.tuples(*[st.floats(-200, 200)] * 3),
)
def test_any_voxel_orientation_reads_back_head_up_anterior_left(order, flips, angles, spacing, shape, marker, origin):
    """A volume in any voxel order (axes permuted, flipped, tilted, any spacing) reads back with display rows
    running head to feet, columns anterior to posterior and slices right to left, each at its own axis's
    spacing; and a marker voxel is where the file put it in the world."""
    axes = rotation(angles) @ (np.eye(3)[:, list(order)] * flips) * spacing
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = axes, origin
    voxel = tuple(round(m * (n - 1)) for m, n in zip(marker, shape))
    array = np.zeros(shape, np.int16)
    array[voxel] = 1000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "oriented.nii"
        nib.save(nib.Nifti1Image(array, affine), path)
        image = read_image(path)
    slices = image.sagittal_slices()
    n, rows, cols = slices.shape
    step_slice, step_col, step_row = -image.affine[:3, :3].T  # a display step along each axis, in world mm (RAS)
    for step, world_axis, sign in ((step_slice, 0, -1), (step_row, 2, -1), (step_col, 1, -1)):
        assert int(np.argmax(np.abs(step))) == world_axis and np.sign(step[world_axis]) == sign
    directions = np.abs(axes / np.linalg.norm(axes, axis=0))
    source_axis = [int(np.argmax(directions[w])) for w in range(3)]  # the voxel axis running along R, A, S
    assert image.spacing_mm == pytest.approx([spacing[a] for a in source_axis])
    assert image.sagittal_spacing_mm() == pytest.approx((image.spacing_mm[2], image.spacing_mm[1]))
    s, r, c = np.unravel_index(int(np.argmax(slices)), slices.shape)
    canonical = np.array([n - 1 - s, cols - 1 - c, rows - 1 - r, 1.0])
    assert (image.affine @ canonical)[:3] == pytest.approx((affine @ (*voxel, 1.0))[:3], abs=1e-3)


NAMES = ("L2", "L3", "L4", "L5", "S1")


@st.composite
def labelled_slice(draw: st.DrawFn) -> tuple[np.ndarray, list[Level], tuple[float, float]]:
    """A small slice of rectangles (vertebrae and the discs between them, some missing, some overlapping, some
    cut by the edge, blobs of noise) with levels named as level labelling would, centroids and axes arbitrary."""
    rows, cols = draw(st.integers(8, 48)), draw(st.integers(8, 48))
    instances = np.zeros((rows, cols), np.int32)
    levels: list[Level] = []
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=5))
    structures = [(name, VERTEBRA_IDS[name], "vertebra") for name in names]
    structures += [(f"{a}/{b}", disc_label(a), "disc") for a, b in itertools.pairwise(NAMES) if draw(st.booleans())]
    for name, label, kind in structures:
        top, left = draw(st.integers(0, rows - 1)), draw(st.integers(0, cols - 1))
        instances[top : top + draw(st.integers(0, rows)), left : left + draw(st.integers(0, cols))] = label
        noise = draw(st.lists(st.tuples(st.integers(0, rows - 1), st.integers(0, cols - 1)), max_size=6))
        for point in noise:
            instances[point] = label
        axis = draw(st.sampled_from([(-1.0, 0.0), (0.0, 0.0), (-0.8, 0.6), (0.6, 0.8)]))
        centroid = (draw(st.floats(0, rows)), draw(st.floats(0, cols)))
        levels.append(Level(name, label, kind, centroid, int((instances == label).sum()), axis))
    canal = draw(st.lists(st.tuples(st.integers(0, rows - 1), st.integers(0, cols - 1)), max_size=20))
    for point in canal:
        instances[point] = 200
    spacing = (draw(st.floats(0.2, 5.0)), draw(st.floats(0.2, 5.0)))
    return instances, levels, spacing


LENGTHS = ("height_anterior_mm", "height_middle_mm", "height_posterior_mm", "depth_mm", "canal_ap_mm")


def _flat_body_beside_an_axisless_disc() -> tuple[np.ndarray, list[Level], tuple[float, float]]:
    """Found by this test: a disc Level with the dataclass's default axis (0, 0) made ``_body_frame`` divide by
    the axis's zero length (ZeroDivisionError) for the vertebra beside it."""
    instances = np.zeros((8, 8), np.int32)
    instances[0, :3] = VERTEBRA_IDS["L4"]
    levels = [
        Level("L4", VERTEBRA_IDS["L4"], "vertebra", (0.0, 0.0), 3, (-1.0, 0.0)),
        Level("L4/L5", disc_label("L4"), "disc", (0.0, 0.0), 0, (0.0, 0.0)),
    ]
    return instances, levels, (1.0, 1.0)


def _sacrum_one_column_wide() -> tuple[np.ndarray, list[Level], tuple[float, float]]:
    """Found by this test: an S1 one pixel wide in column 0 gave its endplate fit no horizontal extent, and
    ``np.polyfit`` raised LinAlgError (SVD did not converge)."""
    instances = np.zeros((8, 8), np.int32)
    instances[:5, 0] = VERTEBRA_IDS["S1"]
    return instances, [Level("S1", VERTEBRA_IDS["S1"], "vertebra", (0.0, 0.0), 5, (-1.0, 0.0))], (1.0, 1.0)


@fuzz(400)
@given(labelled_slice())
@example(_flat_body_beside_an_axisless_disc())
@example(_sacrum_one_column_wide())
def test_measurements_on_any_label_map_are_non_negative_or_not_measurable(case):
    """No exception; every length and ratio is a finite non-negative number or None (not measurable), grades are
    in range, and only named levels are measured."""
    instances, levels, spacing = case
    m = measure_spine(instances, levels, spacing)
    assert set(m.vertebrae) | set(m.discs) <= {lv.name for lv in levels}
    for measured in (*m.vertebrae.values(), *m.discs.values()):
        values = measured.model_dump()
        for key in (*LENGTHS, "height_index", "wedge_ratio", "biconcave_ratio", "canal_area_mm2"):
            value = values.get(key)
            assert value is None or (math.isfinite(value) and value >= 0), (key, value)
        for key in ("slip_mm", "slip_percent", "angle_deg", "upper_endplate_deg"):
            assert values.get(key) is None or math.isfinite(values[key]), key
    assert all(v.genant_grade in (None, 0, 1, 2, 3) for v in m.vertebrae.values())
    assert all(d.meyerding_grade in (None, 0, 1, 2, 3, 4, 5) for d in m.discs.values())
    assert m.lordosis_deg is None or math.isfinite(m.lordosis_deg)
    assert m.narrowest_canal_ap_mm is None or m.narrowest_canal_ap_mm >= 0


@functools.cache
def compressed_bytes(suffix: str) -> tuple[bytes, int]:
    """A small valid MetaImage (zlib) or NRRD (gzip) file whose voxels are compressed, and where its header ends."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"valid{suffix}"
        sitk.WriteImage(sitk.GetImageFromArray(VOLUME), str(path), useCompression=True)
        data = path.read_bytes()
    end = data.index(b"ElementDataFile = LOCAL\n") + 24 if suffix == ".mha" else data.index(b"\n\n") + 2
    return data, end


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
@fuzz(200)
@given(data=st.data())
def test_a_damaged_compressed_payload_reads_or_raises_input_error(suffix, data):
    """The header intact, the zlib/gzip stream after it cut short or corrupted: the decompressor must not take the
    process down, and a stream that reads must give the file's own voxels (not zeros or garbage without a word)."""
    valid, end = compressed_bytes(suffix)
    payload = bytearray(valid[end:])
    payload = payload[: data.draw(st.integers(0, len(payload)))]
    for _ in range(data.draw(st.integers(0, 6)) if payload else 0):
        payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(valid[:end] + bytes(payload))
        try:
            image = read_image(path)
        except InputError:
            return
        assert np.array_equal(np.sort(image.array.ravel()), np.sort(VOLUME.ravel()))  # read means the voxels


@pytest.mark.parametrize("syntax", ["rle", "jpeg-ls", "jpeg2000", "jpeg"])
def test_every_byte_of_compressed_dicom_pixel_data_damaged_reads_or_raises_input_error(tmp_path, syntax):
    """Each of the first 48 bytes of the encapsulated pixel data set to 0x00, 0x7F or 0xFF in turn, through the
    decoders: found this way, pylibjpeg-rle's Rust decoder panics on an RLE segment that overruns its frame (a
    traceback, and a Rust backtrace on stderr that no handler holds back), so RLE is decoded by pydicom's own."""
    import pydicom

    from lumbar.io.dicom_write import write_dicom_series
    from lumbar.phantom import make_phantom

    path = write_dicom_series(make_phantom(shape=(1, 64, 48), spacing_mm=(4.0, 1.0, 1.0)).image, tmp_path, syntax)[0]
    valid = path.read_bytes()
    encapsulated = pydicom.dcmread(path).PixelData
    start = valid.index(encapsulated[:64])
    refused = 0
    for offset, value in itertools.product(range(48), (0x00, 0x7F, 0xFF)):
        damaged = bytearray(valid)
        damaged[start + offset] = value
        path.write_bytes(bytes(damaged))
        try:
            read_image(path)
        except InputError:
            refused += 1
    assert refused > 0  # the damage reaches the decoder
