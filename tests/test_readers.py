"""Cine runs, videos, enhanced multi-frame volumes and radiographs read into the right type with the right timing
and pixel size; broken ones give one clear line. Every input is built here, with pydicom, PyAV or Pillow."""

from pathlib import Path

import av
import numpy as np
import pydicom
import pytest
from conftest import shared
from PIL import Image
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from lumbar.errors import InputError
from lumbar.image import FrameSequence, Modality, SpineImage
from lumbar.io import read_image, read_sequence
from lumbar.io.read import READERS, reader_for

SOP_CLASSES = {  # PS3.4 storage SOP classes
    "XA": "1.2.840.10008.5.1.4.1.1.12.1",  # X-Ray Angiographic Image
    "RF": "1.2.840.10008.5.1.4.1.1.12.2",  # X-Ray Radiofluoroscopic Image
    "US": "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image
    "MR": "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image, for presentation
    "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image
}


SAGITTAL = (0, 1, 0, 0, 0, -1)  # rows run posterior, columns inferior: slices step toward the patient's left
AXIAL = (1, 0, 0, 0, 1, 0)
CORONAL = (1, 0, 0, 0, 0, -1)


def moving_square(n_frames: int, step_px: int = 4, rows: int = 48, cols: int = 64) -> np.ndarray:
    """Frames ``(n, rows, cols)`` of a bright 10-pixel square moving ``step_px`` columns right per frame."""
    frames = np.zeros((n_frames, rows, cols), np.uint8)
    for i in range(n_frames):
        frames[i, 10:20, 4 + step_px * i : 14 + step_px * i] = 255
    return frames


def square_column(frame: np.ndarray) -> float:
    """Mean column of the bright pixels."""
    return float(np.argwhere(frame > 128)[:, 1].mean())


def write_dicom(path: Path, pixels: np.ndarray, modality: str, **attributes: object) -> Path:
    """A DICOM file of ``pixels``: ``(rows, cols)`` one frame, ``(n, rows, cols)`` multi-frame, a trailing 3 RGB.
    ``attributes`` set or replace elements (``SOPClassUID`` too, else the modality's from :data:`SOP_CLASSES`)."""
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = attributes.pop("SOPClassUID", SOP_CLASSES[modality])
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = modality, "P1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SeriesNumber, ds.SeriesDescription = 3, f"{modality} RUN"
    colour = pixels.shape[-1] == 3
    frames = pixels.shape[:-1] if colour else pixels.shape
    if len(frames) == 3:
        ds.NumberOfFrames = frames[0]
    ds.Rows, ds.Columns = frames[-2:]
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = "RGB" if colour else "MONOCHROME2"
    if colour:
        ds.PlanarConfiguration = 0
        pixels = pixels.astype(np.uint8)
    else:
        pixels = pixels.astype(np.uint16)
    ds.BitsAllocated = ds.BitsStored = pixels.itemsize * 8
    ds.HighBit, ds.PixelRepresentation = ds.BitsStored - 1, 0
    ds.PixelData = pixels.tobytes()
    for name, value in attributes.items():
        setattr(ds, name, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def dataset_alone(ds: Dataset, *, implicit: bool) -> bytes:
    """``ds`` written as its dataset alone: no preamble, no meta header, little endian, the VR encoding ``implicit``
    or explicit, as a storage server that keeps what it received writes it."""
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, implicit
    write_dataset(out, ds)
    return out.getvalue()


def as_float_pixels(path: Path, values: np.ndarray) -> Path:
    """The file at ``path`` with its pixel data replaced by ``values`` as Float Pixel Data (float32) or Double Float
    Pixel Data (float64), which a stored NaN or infinity can be (PS3.3 C.7.6.3.1.4)."""
    ds = pydicom.dcmread(path)
    for keyword in (
        "PixelData",
        "FloatPixelData",
        "DoubleFloatPixelData",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
    ):
        ds.pop(keyword, None)
    ds.BitsAllocated = values.itemsize * 8
    setattr(ds, "FloatPixelData" if values.dtype == np.float32 else "DoubleFloatPixelData", values.tobytes())
    ds.save_as(path)
    return path


def item(**attributes: object) -> Dataset:
    """A sequence item with ``attributes``."""
    ds = Dataset()
    for name, value in attributes.items():
        setattr(ds, name, value)
    return ds


def write_video(path: Path, frames: np.ndarray, rate_hz: int, **options: str) -> Path:
    """An H.264 video of ``frames`` (grey ``(n, rows, cols)`` or RGB ``(n, rows, cols, 3)``) at ``rate_hz``."""
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=rate_hz)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24" if frame.ndim == 3 else "gray")
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    return path


def one_line_naming(error: pytest.ExceptionInfo, path: Path) -> bool:
    """The message is one line that starts with the file."""
    message = str(error.value)
    return "\n" not in message and message.startswith(str(path))


# DICOM cine: fluoroscopy, ultrasound.


def test_multiframe_xa_dicom_reads_as_frames_with_frame_time(tmp_path):
    frames = moving_square(10).astype(np.uint16) * 4  # 12-bit values survive
    path = write_dicom(
        tmp_path / "run.dcm",
        frames,
        "XA",
        FrameTime=66.6667,
        ImagerPixelSpacing=[0.3, 0.3],
        EstimatedRadiographicMagnificationFactor=1.5,
    )
    sequence = read_sequence(path)
    assert isinstance(sequence, FrameSequence) and sequence.frames.shape == (10, 48, 64)
    assert sequence.modality == Modality.FLUOROSCOPY and sequence.format == "DICOM"
    np.testing.assert_allclose(sequence.frame_times_s, np.arange(10) * 0.0666667, atol=1e-6)
    assert sequence.frame_rate_hz == pytest.approx(15.0, rel=1e-4)
    assert sequence.pixel_spacing_mm == pytest.approx((0.2, 0.2))  # detector spacing / magnification
    np.testing.assert_array_equal(sequence.frames, frames)
    assert sequence.series.description == "XA RUN" and sequence.patient_id == "P1"


def test_ultrasound_cine_times_come_from_the_frame_time_vector(tmp_path):
    path = write_dicom(tmp_path / "us.dcm", moving_square(5), "US", FrameTimeVector=[0, 40, 40, 80, 40])
    sequence = read_sequence(path)
    assert sequence.modality == Modality.ULTRASOUND and sequence.pixel_spacing_mm is None
    np.testing.assert_allclose(sequence.frame_times_s, [0.0, 0.04, 0.08, 0.16, 0.20])
    assert sequence.frame_rate_hz == pytest.approx(4 / 0.2)


def test_a_sequence_of_the_wrong_modality_is_refused_by_what_reads_it(tmp_path):
    from lumbar.errors import InputError
    from lumbar.io.read import sequence_of

    us = write_dicom(tmp_path / "us.dcm", moving_square(5), "US", FrameTime=40)
    with pytest.raises(InputError) as error:
        sequence_of(us, (Modality.FLUOROSCOPY,), "fluoroscopy")
    assert str(error.value) == f"{us}: a US sequence (as its header or --modality says), not fluoroscopy"
    assert sequence_of(us, (Modality.FLUOROSCOPY,), "fluoroscopy", modality="RF").modality == Modality.FLUOROSCOPY
    assert sequence_of(us, (Modality.ULTRASOUND,), "ultrasound").frames.shape == (5, 48, 64)


def test_a_cine_folder_with_a_preview_picture_is_refused_not_read_as_the_picture(tmp_path):
    from lumbar.errors import InputError
    from lumbar.io.read import sequence_of

    folder = tmp_path / "study"
    folder.mkdir()
    write_dicom(folder / "run.dcm", moving_square(5), "XA", FrameTime=40)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "preview.jpg")
    with pytest.raises(InputError, match=r"holds pictures and other files \(run\.dcm\)"):
        sequence_of(folder, (Modality.FLUOROSCOPY,), "fluoroscopy")
    (folder / "preview.jpg").unlink()
    assert sequence_of(folder, (Modality.FLUOROSCOPY,), "fluoroscopy").frames.shape[0] == 5


def test_fluoroscopy_without_frame_time_falls_back_to_cine_rate(tmp_path):
    path = write_dicom(tmp_path / "rf.dcm", moving_square(4), "RF", CineRate=25)
    sequence = read_sequence(path)
    assert sequence.modality == Modality.FLUOROSCOPY
    np.testing.assert_allclose(sequence.frame_times_s, [0.0, 0.04, 0.08, 0.12])


def test_colour_ultrasound_cine_is_read_as_grey(tmp_path):
    rgb = np.zeros((3, 20, 30, 3), np.uint8)
    rgb[:, 5:10, 5:10] = (255, 255, 255)
    rgb[:, 12:16, 20:25] = (255, 0, 0)  # a red Doppler patch
    sequence = read_sequence(write_dicom(tmp_path / "colour.dcm", rgb, "US", FrameTime=50))
    assert sequence.frames.shape == (3, 20, 30)
    assert sequence.frames[0, 7, 7] == pytest.approx(255.0, abs=0.5)
    assert sequence.frames[0, 14, 22] == pytest.approx(0.299 * 255, abs=0.5)  # BT.601 luma of red


def test_read_image_on_a_cine_points_to_read_sequence(tmp_path):
    path = write_dicom(tmp_path / "run.dcm", moving_square(10), "XA", FrameTime=100)
    expected = r"a time sequence of 10 frames \(cine, fluoroscopy or ultrasound\).*lumbar\.io\.read_sequence reads it"
    with pytest.raises(InputError, match=expected) as error:
        read_image(path)
    assert one_line_naming(error, path)


def test_cine_in_a_dicom_folder_reads_like_the_file(tmp_path):
    (tmp_path / "study").mkdir()
    write_dicom(tmp_path / "study" / "IM0001", moving_square(6), "XA", FrameTime=100)
    sequence = read_sequence(tmp_path / "study")
    assert sequence.frames.shape == (6, 48, 64) and sequence.source == str(tmp_path / "study")
    np.testing.assert_allclose(sequence.frame_times_s, np.arange(6) * 0.1)


def test_multiframe_dicom_whose_frame_time_vector_disagrees_with_its_frames_is_refused(tmp_path):
    path = write_dicom(tmp_path / "bad.dcm", moving_square(5), "XA", FrameTimeVector=[0, 40, 40, 40])
    with pytest.raises(InputError, match="FrameTimeVector holds 4 times for 5 frames") as error:
        read_sequence(path)
    assert one_line_naming(error, path)


def test_multiframe_dicom_without_any_frame_timing_is_refused(tmp_path):
    path = write_dicom(tmp_path / "untimed.dcm", moving_square(3), "XA")
    with pytest.raises(InputError, match="states no frame timing") as error:
        read_sequence(path)
    assert one_line_naming(error, path)


def test_series_of_several_multiframe_files_is_refused(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    first = write_dicom(folder / "a.dcm", moving_square(3), "XA", FrameTime=100)
    series = pydicom.dcmread(first).SeriesInstanceUID
    write_dicom(folder / "b.dcm", moving_square(3), "XA", FrameTime=100, SeriesInstanceUID=series)
    with pytest.raises(InputError, match="read one multi-frame file at a time"):
        read_sequence(folder)


# Enhanced MR: frames at distinct positions are a volume.


def enhanced_mr(
    path: Path,
    values: list[int],
    positions_x_mm: list[float] | list[tuple[float, float, float]],
    frame_iops: list[tuple[int, ...]] | None = None,
    **attributes: object,
) -> Path:
    """A sagittal enhanced MR file: frame ``i`` filled with ``values[i]`` at LPS x ``positions_x_mm[i]`` (or at the
    LPS point it gives), in the orientation ``frame_iops[i]`` where given."""
    pixels = np.stack([np.full((12, 10), v) for v in values])
    shared_groups = item(
        PlaneOrientationSequence=[item(ImageOrientationPatient=list(SAGITTAL))],
        PixelMeasuresSequence=[item(PixelSpacing=[0.5, 0.6], SliceThickness=4.0)],
        PixelValueTransformationSequence=[item(RescaleSlope=2, RescaleIntercept=-10)],
    )
    points = [[x, -20.0, 30.0] if np.isscalar(x) else list(x) for x in positions_x_mm]
    per_frame = [item(PlanePositionSequence=[item(ImagePositionPatient=point)]) for point in points]
    for frame, iop in zip(per_frame, frame_iops or []):
        frame.PlaneOrientationSequence = [item(ImageOrientationPatient=list(iop))]
    return write_dicom(
        path,
        pixels,
        "MR",
        SharedFunctionalGroupsSequence=[shared_groups],
        PerFrameFunctionalGroupsSequence=per_frame,
        **attributes,
    )


def test_enhanced_mr_with_frame_positions_reads_as_a_sagittal_volume(tmp_path):
    path = enhanced_mr(tmp_path / "enhanced.dcm", values=[10, 30, 20], positions_x_mm=[8.0, 0.0, 4.0])
    image = read_image(path)
    assert isinstance(image, SpineImage) and image.modality == Modality.MR and image.plane == "sagittal"
    assert image.shape == (3, 10, 12) and image.spacing_mm == pytest.approx((4.0, 0.6, 0.5))
    stored_at_x = {8.0: 10, 0.0: 30, 4.0: 20}
    for i in range(3):  # each slice lies where its frame said, with the group's rescale applied
        lps_x = -(image.affine @ [i, 0, 0, 1])[0]
        assert image.array[i].mean() == pytest.approx(2 * stored_at_x[round(lps_x, 3)] - 10)


def test_enhanced_mr_with_slices_repeated_over_time_is_refused(tmp_path):
    path = enhanced_mr(tmp_path / "4d.dcm", values=[1, 2, 3, 4], positions_x_mm=[0.0, 4.0, 0.0, 4.0])
    with pytest.raises(InputError, match="4 frames at 2 slice positions") as error:
        read_image(path)
    assert one_line_naming(error, path)


@pytest.mark.parametrize(
    ("positions_mm", "timing"),
    [([(0, 0, 0), (4, 0, 0), (8, 0, 0)], {}), ([(0, 0, 0)] * 3, {"FrameTime": 100})],
    ids=["at three positions", "all at the centre"],
)
def test_a_three_plane_localizer_in_one_multiframe_file_is_refused_naming_its_planes(tmp_path, positions_mm, timing):
    """Its frames at one position, with a frame time, read as a three-frame run of mixed planes."""
    from lumbar.io.read import read_any

    path = enhanced_mr(tmp_path / "loc.dcm", [1, 2, 3], positions_mm, [SAGITTAL, AXIAL, CORONAL], **timing)
    with pytest.raises(InputError, match=r"3 orientations \(sagittal, axial, coronal") as error:
        read_any(path)
    assert one_line_naming(error, path)


def test_two_sagittal_stacks_at_different_angles_in_one_file_are_refused_saying_how_far_apart(tmp_path):
    """Both in one plane, so naming the plane alone ("sagittal, a localizer?") told the reader nothing."""
    turn = np.radians(12.0)
    oblique = (-np.sin(turn), np.cos(turn), 0.0, 0.0, 0.0, -1.0)  # SAGITTAL turned 12 degrees about the body's axis
    path = enhanced_mr(
        tmp_path / "two.dcm", [1, 2, 3, 4], [0.0, 4.0, 8.0, 12.0], [SAGITTAL, SAGITTAL, oblique, oblique]
    )
    with pytest.raises(InputError, match=r"2 orientations \(all sagittal, turned up to 12\.0 degrees") as error:
        read_image(path)
    assert one_line_naming(error, path)


def test_a_multiframe_files_frames_keep_their_own_geometry_beside_one_stated_at_its_top_level(tmp_path):
    """Enhanced objects state geometry per frame only; a writer that also puts one IOP and IPP at the top level
    must not hide the frames' own: the localizer is still three planes, the volume still three positions."""
    top = {"ImageOrientationPatient": list(SAGITTAL), "ImagePositionPatient": [0.0, 0.0, 0.0]}
    loc = enhanced_mr(
        tmp_path / "loc.dcm", [1, 2, 3], [(0, 0, 0)] * 3, [SAGITTAL, AXIAL, CORONAL], FrameTime=100, **top
    )
    with pytest.raises(InputError, match=r"3 orientations \(sagittal, axial, coronal"):
        read_image(loc)
    volume = read_image(enhanced_mr(tmp_path / "vol.dcm", values=[10, 30, 20], positions_x_mm=[8.0, 0.0, 4.0], **top))
    assert volume.shape == (3, 10, 12) and sorted(volume.array.mean(axis=(1, 2))) == [10, 30, 50]


@pytest.mark.parametrize(
    ("positions_mm", "problem"),
    [
        (
            [(0, 0, 0), (4, 1, 0), (8, 0, 0)],
            "stray up to 1.00 mm from even steps along one line",
        ),  # steps of one length, zigzagging
        (
            [(0, 0, 0), (4, 0, 0), (8, 1.5, 0), (12, 3, 0)],
            "stray up to 1.00 mm from even steps along one line",
        ),  # a bend
        ([(0, 0, 0), (4, 0, 0), (12, 0, 0)], "unevenly spaced"),  # a frame missing
    ],
    ids=["zigzag", "bend", "gap"],
)
def test_enhanced_mr_frames_off_one_evenly_stepped_line_are_refused(tmp_path, positions_mm, problem):
    """Frames whose steps were of one length but not along one line were stacked as if they were."""
    path = enhanced_mr(tmp_path / "bent.dcm", list(range(1, len(positions_mm) + 1)), positions_mm)
    with pytest.raises(InputError, match=problem) as error:
        read_image(path)
    assert one_line_naming(error, path)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_frames_holding_nan_read_as_a_nifti_does_and_infinity_is_refused(tmp_path, dtype):
    """NaN and infinite values of float pixel data went on into the analysis (the other readers' check skipped
    DICOM): NaN (background, as some tools write it) becomes the lowest value, infinity is refused in one line."""
    path = enhanced_mr(tmp_path / "float.dcm", [0, 0, 0], [0.0, 4.0, 8.0])
    frames = np.full((3, 12, 10), 7.5, dtype)
    frames[1, 0, 0], frames[2, 3, 3] = np.nan, -1.5
    values = read_image(as_float_pixels(path, frames)).array
    assert np.isfinite(values).all() and values.min() == 2 * -1.5 - 10  # the group's rescale applies
    frames[0, 5, 5] = np.inf
    with pytest.raises(InputError, match="infinite voxel values") as error:
        read_image(as_float_pixels(path, frames))
    assert one_line_naming(error, path)


# Radiographs.


@pytest.mark.parametrize(
    ("modality", "spacing", "expected_mm"),
    [
        ("DX", {"ImagerPixelSpacing": [0.15, 0.18], "EstimatedRadiographicMagnificationFactor": 1.2}, (0.125, 0.15)),
        ("CR", {"PixelSpacing": [0.2, 0.25], "ImagerPixelSpacing": [0.3, 0.3]}, (0.2, 0.25)),
        ("DX", {"ImagerPixelSpacing": [0.14, 0.14]}, (0.14, 0.14)),
        # an empty PixelSpacing says nothing: the detector's size, corrected, is read (it was lost: found in review)
        (
            "DX",
            {"PixelSpacing": None, "ImagerPixelSpacing": [0.15, 0.15], "EstimatedRadiographicMagnificationFactor": 1.2},
            (0.125, 0.125),
        ),
    ],
)
def test_radiograph_dicom_reads_as_one_slice_with_its_pixel_size(tmp_path, modality, spacing, expected_mm):
    pixels = np.arange(40 * 30, dtype=np.uint16).reshape(40, 30)
    image = read_image(write_dicom(tmp_path / "xr.dcm", pixels, modality, **spacing))
    assert image.modality == Modality.RADIOGRAPH and image.is_2d and image.spacing_known
    assert image.sagittal_spacing_mm() == pytest.approx(expected_mm)
    np.testing.assert_array_equal(image.sagittal_slices()[0], pixels)
    assert image.plane == "projection" and not image.is_picture  # shown as read


def test_radiograph_without_any_spacing_says_so(tmp_path):
    image = read_image(write_dicom(tmp_path / "xr.dcm", np.ones((20, 20)), "DX"))
    assert image.modality == Modality.RADIOGRAPH and not image.spacing_known


def test_png_given_xr_reads_as_a_radiograph_picture(tmp_path):
    Image.fromarray(np.zeros((60, 40), np.uint8)).save(tmp_path / "spine.png")
    image = read_image(tmp_path / "spine.png", modality="XR")
    assert image.modality == Modality.RADIOGRAPH and image.is_picture and image.plane == "projection"
    assert not image.spacing_known
    calibrated = read_image(tmp_path / "spine.png", modality="XR", spacing_mm=0.2)
    assert calibrated.spacing_known and calibrated.sagittal_spacing_mm() == pytest.approx((0.2, 0.2))


def test_read_sequence_on_a_still_image_says_what_a_sequence_is(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "still.png")
    with pytest.raises(
        InputError, match=r"not frames over time \(a video, a multi-frame DICOM or a folder of frames\)$"
    ):
        read_sequence(tmp_path / "still.png")


# Videos.


def test_mp4_of_a_moving_square_reads_as_frames_with_their_rate(tmp_path):
    sequence = read_sequence(write_video(tmp_path / "cine.mp4", moving_square(12), rate_hz=10), modality="US")
    assert sequence.frames.shape == (12, 48, 64) and sequence.format == "MP4"
    assert sequence.modality == Modality.ULTRASOUND and sequence.pixel_spacing_mm is None
    np.testing.assert_allclose(sequence.frame_times_s, np.arange(12) / 10, atol=1e-6)
    assert sequence.frame_rate_hz == pytest.approx(10.0)
    columns = [square_column(frame) for frame in sequence.frames]
    np.testing.assert_allclose(np.diff(columns), 4.0, atol=0.5)  # the square moves 4 pixels right per frame


def test_colour_video_is_read_as_grey(tmp_path):
    rgb = np.zeros((3, 48, 64, 3), np.uint8)
    rgb[:, 8:24, 8:24] = (255, 0, 0)
    sequence = read_sequence(write_video(tmp_path / "red.mp4", rgb, rate_hz=5))
    assert sequence.frames.shape == (3, 48, 64) and sequence.modality == Modality.OTHER
    assert sequence.frames[0, 12:20, 12:20].mean() == pytest.approx(0.299 * 255, abs=3)  # BT.601 luma of red


def test_gif_keeps_its_uneven_frame_delays(tmp_path):
    pictures = [Image.fromarray(frame) for frame in moving_square(6, step_px=6)]
    pictures[0].save(
        tmp_path / "loop.gif", save_all=True, append_images=pictures[1:], duration=[50, 50, 100, 50, 50, 50], loop=0
    )
    sequence = read_sequence(tmp_path / "loop.gif")
    np.testing.assert_allclose(sequence.frame_times_s, [0.0, 0.05, 0.10, 0.20, 0.25, 0.30], atol=1e-6)
    np.testing.assert_allclose(np.diff([square_column(f) for f in sequence.frames]), 6.0, atol=0.01)


def test_read_image_on_a_video_points_to_read_sequence(tmp_path):
    path = write_video(tmp_path / "cine.mov", moving_square(4), rate_hz=10)
    with pytest.raises(InputError, match="a time sequence of 4 frames"):
        read_image(path)


@pytest.mark.parametrize("damage", ["cut in the middle", "index lost at the end", "not a video"])
def test_broken_video_is_refused_in_one_line(tmp_path, damage):
    frames = moving_square(12)
    if damage == "cut in the middle":  # the index comes first, the frames it lists are cut off
        data = write_video(tmp_path / "full.mp4", frames, rate_hz=10, movflags="faststart").read_bytes()
        data = data[: len(data) * 6 // 10]
    elif damage == "index lost at the end":  # the frames are all there, the index after them is cut
        data = write_video(tmp_path / "full.mp4", frames, rate_hz=10).read_bytes()[:-200]
    else:
        data = b"just some text, no video" * 10
    path = tmp_path / "broken.mp4"
    path.write_bytes(data)
    with pytest.raises(InputError, match=r"not a readable video|truncated or damaged") as error:
        read_sequence(path)
    assert one_line_naming(error, path)


# The registry and the sequence type.


def test_every_file_ending_is_claimed_by_one_reader(tmp_path):
    endings = [suffix for reader in READERS for suffix in reader.suffixes]
    assert len(endings) == len(set(endings))
    assert {reader_for(Path(name)).name for name in ("a.nii.gz", "b.MHA", "c.jpeg", "d.GIF")} == {
        "NIfTI",
        "MHA/MHD/NRRD",
        "PNG/JPEG",
        "video (MP4/AVI/MOV/GIF)",
    }
    dicom = write_dicom(tmp_path / "IM0001", np.ones((4, 4)), "DX")  # DICOM is known by content, not by ending
    assert reader_for(dicom).name == "DICOM"
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="unknown format"):
        reader_for(tmp_path / "notes.txt")


def test_frame_sequence_checks_its_frames_and_times():
    frames = np.zeros((3, 4, 5))
    assert FrameSequence(frames, [0.0, 0.5, 1.0]).frame_rate_hz == pytest.approx(2.0)
    assert FrameSequence(frames[:1], [0.0]).frame_rate_hz is None
    with pytest.raises(ValueError, match="frames need as many times"):
        FrameSequence(frames, [0.0, 0.5])
    with pytest.raises(ValueError, match="must not decrease"):
        FrameSequence(frames, [0.0, 0.5, 0.4])
    with pytest.raises(ValueError, match="n_frames, rows, cols"):
        FrameSequence(np.zeros((4, 5)), [0.0])


# Real files beside the repository.


def test_real_ct_dicom_series_still_reads_as_a_ct_volume():
    folder = shared("dicom", "ct_series_totalsegmentator")
    image = read_image(folder)
    assert isinstance(image, SpineImage) and image.modality == Modality.CT and image.shape == (512, 512, 20)
    assert image.spacing_mm == pytest.approx((0.9765625, 0.9765625, 2.0), rel=1e-3)
    with pytest.raises(InputError, match="not frames over time"):
        read_sequence(folder)


def test_real_ap_radiograph_jpeg_reads_as_a_radiograph_picture():
    path = next(shared("xray_ap", "images", "training").glob("*.jpg"))
    image = read_image(path, modality="XR")
    assert image.modality == Modality.RADIOGRAPH and image.is_picture and not image.spacing_known


# Geometry found in review: outputs must land where the input's voxels are.


def _seg_frames(path: Path) -> dict[int, np.ndarray]:
    """A DICOM SEG's frames by the source frame (1-based) or the source image (1) each is derived from."""
    seg = pydicom.dcmread(path)
    pixels = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    out = {}
    for k, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        source = group.DerivationImageSequence[0].SourceImageSequence[0]
        out[int(source.get("ReferencedFrameNumber", 1))] = pixels[k]
    return out


def test_a_dicom_seg_of_an_enhanced_mr_labels_each_frame_of_the_file_not_of_the_sorted_volume(tmp_path):
    """Frames stored at x = 8, 0, 4 mm are read sorted along the normal; the SEG's frames must go back to the file's
    own order: the frame stored second (x = 0, value 30) holds the label, not the second of the sorted slices."""
    from lumbar.io.dicom_write import write_dicom_seg

    path = enhanced_mr(
        tmp_path / "enhanced.dcm",
        values=[10, 30, 20],
        positions_x_mm=[8.0, 0.0, 4.0],
        FrameOfReferenceUID=generate_uid(),
    )
    image = read_image(path)
    labels = (image.array == 2 * 30 - 10).astype(np.uint8) * 3
    frames = _seg_frames(write_dicom_seg(labels, image, {3: "L3"}, tmp_path / "seg.dcm"))
    assert set(frames) == {2} and frames[2].all()  # stored frame 2 (1-based) only, every pixel of it


@pytest.mark.parametrize("shape", [(32, 32), (24, 40)])
def test_a_dicom_seg_of_a_radiograph_holds_its_labels_in_the_films_rows_and_columns(tmp_path, shape):
    """A film has no slice geometry and is read as display slices; its SEG frame must be the film's (row, col), not
    the canonical array (a marker at row 5, column 21 was written at (10, 26), and a film not square was refused)."""
    from lumbar.io.dicom_write import write_dicom_seg

    pixels = np.zeros(shape, np.uint16)
    pixels[5, 21] = 1000
    film = write_dicom(
        tmp_path / "xr.dcm",
        pixels,
        "DX",
        ImagerPixelSpacing=[0.2, 0.2],
        FrameOfReferenceUID=generate_uid(),
        ViewPosition="AP",
    )
    image = read_image(film)
    labels = (image.array == 1000).astype(np.uint8) * 3
    frame = _seg_frames(write_dicom_seg(labels, image, {3: "L3"}, tmp_path / "seg.dcm"))[1]
    assert frame.shape == shape and np.argwhere(frame).tolist() == [[5, 21]]


def test_a_multiframe_monochrome1_file_is_inverted_as_a_single_frame_one_is(tmp_path):
    path = enhanced_mr(
        tmp_path / "m1.dcm",
        values=[10, 30, 20],
        positions_x_mm=[8.0, 0.0, 4.0],
        PhotometricInterpretation="MONOCHROME1",
    )
    values = sorted(np.unique(read_image(path).array).tolist())  # stored 10, 20, 30 -> 10, 30, 50 -> inverted
    assert values == [10.0, 30.0, 50.0]
    by_x = {round(-(read_image(path).affine @ [i, 0, 0, 1])[0], 3): read_image(path).array[i].mean() for i in range(3)}
    assert by_x == {0.0: 10.0, 4.0: 30.0, 8.0: 50.0}  # the brightest stored (x = 0) now the darkest


def test_a_2d_nifti_placed_as_a_sagittal_slice_is_read_where_its_affine_puts_it(tmp_path):
    """A sagittal slice stored with anterior along its first axis and superior along its second: shown head up,
    anterior left, as the same slice stored 3D; a 2D array with the identity (no slice placement worth the name)
    keeps the picture rule."""
    import nibabel as nib

    array = np.zeros((40, 32), np.float32)
    array[30, 25] = 100.0  # far along i (anterior) and j (superior)
    affine = np.array([[0, 0, 1.0, 0], [0.5, 0, 0, 0], [0, 0.7, 0, 0], [0, 0, 0, 1]])
    for name, data in (("flat.nii.gz", array), ("deep.nii.gz", array[:, :, None])):
        nib.save(nib.Nifti1Image(data, affine), tmp_path / name)
        image = read_image(tmp_path / name)
        display = image.sagittal_slices()[0]
        assert display.shape == (32, 40) and np.argwhere(display == 100).tolist() == [[32 - 1 - 25, 40 - 1 - 30]]
        assert image.sagittal_spacing_mm() == pytest.approx((0.7, 0.5))
    nib.save(nib.Nifti1Image(array, np.eye(4)), tmp_path / "eye.nii.gz")
    picture = read_image(tmp_path / "eye.nii.gz").sagittal_slices()[0]
    assert picture.shape == (32, 40) and np.argwhere(picture == 100).tolist() == [[32 - 1 - 25, 30]]


def test_a_2d_nifti_whose_affine_is_unusable_keeps_the_picture_rule(tmp_path):
    """Placed (sform code 1) but with no third column: no volume can be built on it, so the picture rule, as before
    (it was refused: found in review)."""
    import nibabel as nib

    array = np.zeros((40, 32), np.float32)
    array[30, 25] = 100.0
    image = nib.Nifti1Image(array, None)
    header = image.header
    header["sform_code"] = 1
    header["srow_x"], header["srow_y"], header["srow_z"] = [0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.7, 0, 0]
    nib.save(image, tmp_path / "flat.nii.gz")
    assert nib.load(tmp_path / "flat.nii.gz").header["sform_code"] == 1
    picture = read_image(tmp_path / "flat.nii.gz").sagittal_slices()[0]
    assert picture.shape == (32, 40) and np.argwhere(picture == 100).tolist() == [[32 - 1 - 25, 30]]


def test_a_gantry_tilted_series_is_resampled_onto_an_upright_grid(tmp_path):
    """Axial slices 2 mm apart along their normal, each shifted 1 mm further back (a gantry tilt of atan(1 / 2),
    26.6 deg): read onto the slanted grid, every measurement took the step (2.24 mm) for the spacing and the slab for
    square. Resampled: slices 2.0 mm apart along the normal, and a bright rod that runs straight head to feet in the
    world stays in one row and column of every slice."""
    from lumbar.io.dicom import upright_grid

    series = tmp_path / "tilted"
    series.mkdir()
    uid, rows, cols = "1.2.3.4", 32, 32
    for k in range(12):
        back = float(k)  # LPS y grows to the back: each slice's rows start 1 mm further back
        pixels = np.full((rows, cols), 0, np.uint16)
        pixels[20 - k, 16] = 1000  # the rod at y = 20 mm in the world: row 20 - k of slice k
        write_dicom(
            series / f"{k:02d}.dcm",
            pixels,
            "CT",
            SeriesInstanceUID=uid,
            ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
            ImagePositionPatient=[0.0, back, -2.0 * k],
            PixelSpacing=[1.0, 1.0],
            SliceThickness=2.0,
            RescaleIntercept=0,
            InstanceNumber=k + 1,
        )
    image = read_image(series)
    assert image.series.gantry_tilt_deg == pytest.approx(26.6, abs=0.05)
    assert sorted(image.spacing_mm) == pytest.approx([1.0, 1.0, 2.0])
    direction = image.affine[:3, :3] / np.asarray(image.spacing_mm)
    assert np.allclose(direction.T @ direction, np.eye(3), atol=1e-6)  # square
    rod = np.argwhere(image.array > 500)
    assert len(rod) == 12 and sum(np.ptp(rod[:, axis]) == 0 for axis in range(3)) == 2  # one row, one column
    flat = np.zeros((4, 5, 6), np.float32)
    assert upright_grid(flat, np.diag([2.0, 1.0, 1.0, 1.0]))[2] == 0.0  # square: left as it is
