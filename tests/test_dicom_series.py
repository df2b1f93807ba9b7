"""DICOM series of a folder: grouped, picked and stacked as a reader expects, with damaged geometry or values refused
in one line. Every file is written here with pydicom: small slices whose geometry each test states."""

import json
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import shared
from pydicom.uid import generate_uid
from test_readers import AXIAL, CORONAL, SAGITTAL, SOP_CLASSES, as_float_pixels, dataset_alone, item, write_dicom
from typer.testing import CliRunner

from lumbar.cli import app
from lumbar.errors import InputError
from lumbar.io import read_image
from lumbar.io.dicom_header import is_dicom_file, plane

MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage (one slice a file)


def write_slice(path: Path, pixels: np.ndarray, **attributes: object) -> Path:
    """One single-frame MR slice of ``pixels`` (rows, cols), in one study, with ``attributes`` (geometry, ...)."""
    return write_dicom(path, pixels, "MR", **{"SOPClassUID": MR_IMAGE, "StudyInstanceUID": "1.2.3", **attributes})


def write_series(
    folder: Path,
    slices: int,
    *,
    iop: tuple[float, ...] = SAGITTAL,
    step_mm: float = 4.0,
    shape: tuple[int, int] = (16, 12),
    **attributes: object,
) -> list[Path]:
    """A series of ``slices`` slices ``step_mm`` apart along the normal of ``iop``, slice k filled with k + 1, named
    by number and description (``SeriesNumber``, ``SeriesDescription`` in ``attributes``, else 3 and SAG T2)."""
    attributes = {"SeriesNumber": 3, "SeriesDescription": "SAG T2", "SeriesInstanceUID": generate_uid(), **attributes}
    normal = np.cross(np.array(iop[:3], float), np.array(iop[3:], float))
    normal = normal / (np.linalg.norm(normal) or 1.0)
    files = []
    for k in range(slices):
        geometry = {
            "ImageOrientationPatient": list(iop),
            "ImagePositionPatient": [float(v) for v in normal * step_mm * k],
            "PixelSpacing": [0.7, 0.5],
            "InstanceNumber": k + 1,
        }
        pixels = np.full(shape, k + 1, np.uint16)
        name = f"{attributes['SeriesDescription']}_{k:03d}.dcm".replace(" ", "_")
        files.append(write_slice(folder / name, pixels, **{**geometry, **attributes}))
    return files


def rewrite(path: Path, **attributes: object) -> None:
    """Change ``attributes`` of the file at ``path``, the rest as written."""
    ds = pydicom.dcmread(path)
    for name, value in attributes.items():
        setattr(ds, name, value)
    ds.save_as(path)


def info(path: Path, *options: str) -> tuple[int, str]:
    """``lumbar info --json``: its exit code and what it printed."""
    result = CliRunner().invoke(app, ["info", str(path), "--json", *options])
    return result.exit_code, result.output


def refused_in_one_line(path: Path, *options: str) -> str:
    """``lumbar info``'s one-line refusal (exit code 2, naming the input)."""
    result = CliRunner().invoke(app, ["info", str(path), *options])
    message = result.stderr.strip()
    assert result.exit_code == 2 and "\n" not in message and str(path.name) in message, result.output
    return message


# Empty values


def test_an_empty_series_number_is_empty_not_the_word_none(tmp_path):
    """A series number left empty (type 2: unknown) is shown as unknown, not as the string "None"."""
    from lumbar.io.study import read_study

    write_series(tmp_path / "study" / "sag", 5, SeriesNumber=None, SeriesDescription=None)
    write_series(tmp_path / "study" / "ax", 3, iop=AXIAL, SeriesNumber=None, SeriesDescription="AX T1")
    code, output = info(tmp_path / "study")
    described = json.loads(output)
    assert code == 0 and described["series_number"] == "" and described["series_description"] == ""
    assert "None" not in output and described["other_series"][0].startswith("#? AX T1")
    write_series(tmp_path / "study" / "ax", 3, iop=AXIAL, SeriesNumber=4, SeriesDescription="AX T1")
    assert [name for name, _ in read_study([tmp_path / "study"]).series] == ["study_s1", "study_s4"]


def test_the_real_ct_series_without_a_number_has_an_empty_one():
    code, output = info(shared("dicom", "ct_series_totalsegmentator"))
    assert code == 0 and json.loads(output)["series_number"] == ""


# Orientation


@pytest.mark.parametrize(
    "iop",
    [(0, 0, 0, 0, 0, 0), (0, 1, 0, 0, 1, 0), (0, 1, 0, 0, 0.5, -0.5)],
    ids=["zero", "parallel", "skewed by 45 degrees"],
)
def test_a_slice_whose_orientation_gives_no_plane_is_refused_in_one_line(tmp_path, iop):
    [path] = write_series(tmp_path / "series", 1, iop=iop)
    assert "ImageOrientationPatient" in refused_in_one_line(path)
    assert plane(pydicom.dcmread(path)) is None  # was "sagittal" for the zero cosines


def test_direction_cosines_longer_than_one_are_scaled_to_unit_length(tmp_path):
    """The row and column directions give directions only: cosines written twice too long (0, 2, 0, 0, 0, -2) still
    give the stated pixel size, not twice it."""
    write_series(tmp_path / "series", 5, iop=(0, 2, 0, 0, 0, -2))
    image = read_image(tmp_path / "series")
    assert image.spacing_mm == pytest.approx((4.0, 0.5, 0.7)) and image.plane == "sagittal"


# Values


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")  # pydicom, writing what the test means to write
@pytest.mark.parametrize("rescale", [{"RescaleSlope": "NaN"}, {"RescaleSlope": "inf"}, {"RescaleIntercept": "-inf"}])
def test_a_rescale_that_is_not_a_finite_number_is_refused_in_one_line(tmp_path, rescale):
    """A slope of NaN made every voxel NaN, read without a word (the other formats' readers refuse such voxels)."""
    write_series(tmp_path / "series", 3, **rescale)
    assert f"{next(iter(rescale))} " in refused_in_one_line(tmp_path / "series")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_slices_holding_nan_read_as_a_nifti_does_and_infinity_is_refused(tmp_path, dtype):
    """NaN and infinite values of float pixel data went on into the analysis: NaN becomes the lowest value (the
    NIfTI reader's rule), infinity is refused in one line."""
    files = write_series(tmp_path / "series", 3)
    for k, path in enumerate(files):
        as_float_pixels(path, np.full((16, 12), k + 0.5, dtype))
    as_float_pixels(files[1], np.where(np.eye(16, 12, dtype=bool), np.nan, 1.5).astype(dtype))
    values = read_image(tmp_path / "series").array
    assert np.isfinite(values).all() and values.min() == 0.5
    as_float_pixels(files[2], np.full((16, 12), -np.inf, dtype))
    message = refused_in_one_line(tmp_path / "series")
    assert "infinite voxel values" in message and message.startswith(f"error: {files[2]}:")  # the file at fault


@pytest.mark.filterwarnings("error")  # numpy's overflow warning is a second line
def test_a_rescale_past_the_range_of_float32_is_refused_in_one_line(tmp_path):
    """A finite slope of 1e38 over stored values up to 5 gave infinite voxels, read on."""
    write_series(tmp_path / "series", 5, RescaleSlope=1e38)
    assert "infinite voxel values" in refused_in_one_line(tmp_path / "series")


# Slice spacing


@pytest.mark.parametrize("between_mm", [None, -4.5, 0.0])
def test_a_single_slice_takes_its_thickness_where_its_spacing_between_slices_says_nothing_usable(tmp_path, between_mm):
    """An empty SpacingBetweenSlices hid SliceThickness (1 mm was read); a negative one turned the slice around."""
    [path] = write_series(tmp_path / "series", 1, SliceThickness=4.0, SpacingBetweenSlices=between_mm)
    described = json.loads(info(path)[1])
    assert described["spacing_mm"][0] == 4.0 and described["source_orientation"] == "RIP"


def test_a_slice_shifted_within_its_plane_is_refused_though_its_steps_are_evenly_long(tmp_path):
    """Slices 4 mm apart, the third 1.5 mm further back: steps of 4.0-4.3 mm passed the spacing check, and the
    volume was stacked as if every slice lay on one line."""
    files = write_series(tmp_path / "series", 5)
    rewrite(files[2], ImagePositionPatient=[-8.0, 1.5, 0.0])
    assert "stray up to 1.50 mm from even steps along one line" in refused_in_one_line(tmp_path / "series")


def test_a_header_declaring_more_voxels_than_a_scan_holds_is_refused_before_allocating(tmp_path):
    """Rows and Columns of 65535 over a tiny file asked for 16 GiB a slice (an unexpected MemoryError)."""
    for path in write_series(tmp_path / "series", 3):
        rewrite(path, Rows=65535, Columns=65535)
    assert "voxels" in refused_in_one_line(tmp_path / "series")


# Picking a series


def _three_plane_localizer(folder: Path) -> None:
    """One series of 5 sagittal, 5 axial and 5 coronal views, as a scanner's first localizer writes them."""
    uid = generate_uid()
    for name, iop in (("a_sag", SAGITTAL), ("b_ax", AXIAL), ("c_cor", CORONAL)):
        write_series(
            folder / name,
            5,
            iop=iop,
            SeriesInstanceUID=uid,
            SeriesNumber=1,
            SeriesDescription="3-Plane Loc",
            ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"],
        )


def test_the_automatic_pick_passes_over_localizers_and_names_them(tmp_path):
    """A three-plane localizer (15 files, the first sagittal) was picked over the 13-slice sagittal series and
    failed the study: its planes are parts of their own, localizers are picked last, and all are named."""
    _three_plane_localizer(tmp_path / "study" / "loc")
    write_series(tmp_path / "study" / "sagloc", 20, SeriesNumber=2, SeriesDescription="SAG LOC", ImageType="LOCALIZER")
    write_series(tmp_path / "study" / "fse", 13, SeriesNumber=4, SeriesDescription="SAG FSE")
    code, output = info(tmp_path / "study")
    described = json.loads(output)
    assert code == 0 and described["series_description"] == "SAG FSE", output
    assert sorted(other.split(" uid ")[0] for other in described["other_series"]) == [
        "#1.1 3-Plane Loc [MR, sagittal, localizer, 5 images]",
        "#1.2 3-Plane Loc [MR, axial, localizer, 5 images]",
        "#1.3 3-Plane Loc [MR, coronal, localizer, 5 images]",
        "#2 SAG LOC [MR, sagittal, localizer, 20 images]",
    ]
    assert read_image(tmp_path / "study", series="2").series.description == "SAG LOC"  # asked for: read


def test_series_listed_in_findings_carry_no_uid_but_lumbar_info_shows_the_one_that_picks_them(tmp_path):
    """``other_series`` went into findings and level files with each series' UID; the console still shows it."""
    from lumbar.pipelines.result import input_description

    write_series(tmp_path / "study" / "sag", 5, SeriesNumber=3)
    axial = write_series(tmp_path / "study" / "ax", 3, iop=AXIAL, SeriesNumber=4, SeriesDescription="AX T1")
    uid = str(pydicom.dcmread(axial[0]).SeriesInstanceUID)
    image = read_image(tmp_path / "study")
    assert image.describe()["other_series"] == ["#4 AX T1 [MR, axial, 3 images]"]
    assert uid not in json.dumps(image.describe()) and uid not in input_description(image).model_dump_json()
    listed = json.loads(info(tmp_path / "study")[1])["other_series"]
    assert listed == [f"#4 AX T1 [MR, axial, 3 images] uid {uid}"]
    assert read_image(tmp_path / "study", series=uid).series.description == "AX T1"


def test_a_series_number_that_two_series_share_is_refused_as_ambiguous(tmp_path):
    """``--series 3`` took whichever of two series numbered 3 came first."""
    write_series(tmp_path / "study" / "t2", 5, SeriesNumber=3, SeriesDescription="SAG T2")
    write_series(tmp_path / "study" / "t1", 5, SeriesNumber=3, SeriesDescription="SAG T1")
    message = refused_in_one_line(tmp_path / "study", "--series", "3")
    assert "#3 SAG T2 [MR, sagittal, 5 images]" in message and "#3 SAG T1 [MR, sagittal, 5 images]" in message
    assert "SeriesInstanceUID" in message
    uids = json.loads(info(tmp_path / "study")[1])
    assert read_image(tmp_path / "study", series=uids["series_uid"]).series.uid == uids["series_uid"]


# Finding DICOM in folders


@pytest.mark.parametrize("name", ["{k}.dcm", "IM{k:04d}", "1.2.840.9999.{k}"])
def test_a_cds_dicom_folder_is_found_behind_its_viewers_files(tmp_path, name):
    """``lumbar info cd`` read the series, ``lumbar analyze cd`` said it held none: discovery probed the first 20
    files in name order, all of them the viewer's."""
    from lumbar.io import discover_studies

    for k in range(25):
        (tmp_path / "cd" / "CDVIEWER").mkdir(parents=True, exist_ok=True)
        (tmp_path / "cd" / "CDVIEWER" / f"lib{k:02d}.dll").write_bytes(b"MZ" + bytes(200))
    for k, path in enumerate(write_series(tmp_path / "cd" / "DICOM" / "S1", 3)):
        path.rename(path.with_name(name.format(k=k)))
    assert discover_studies([tmp_path / "cd"]) == [tmp_path / "cd"]


def test_a_folder_of_thousands_of_other_files_is_refused_after_a_bounded_number_of_probes(tmp_path, monkeypatch):
    from lumbar.io import dicom, discover_studies

    for k in range(5000):
        (tmp_path / "junk" / f"{k // 100}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "junk" / f"{k // 100}" / f"note{k}.txt").write_bytes(b"x")
    probed = []
    monkeypatch.setattr(dicom, "is_dicom_file", lambda path: probed.append(path) or False)
    with pytest.raises(InputError, match="no DICOM"):
        discover_studies([tmp_path / "junk"])
    assert len(probed) == dicom.MAX_PROBED_FILES


def test_dicom_behind_a_readme_and_thumbnails_of_dicom_like_names_is_found_but_a_dicomdir_alone_is_no_study(tmp_path):
    """An export's README and 25 thumbnails named 0000, 0001, ... came before its images IM_0000, ... in the 20 files
    probed, and the folder was said to hold no DICOM; its DICOMDIR, which reading skips, counted as DICOM."""
    from lumbar.io import discover_studies

    export = tmp_path / "export"
    write_dicom(export / "DICOMDIR", np.zeros((2, 2)), "MR")  # an index with a DICOM preamble, no image
    (export / "README").write_text("Exported by a viewer\n")
    for k in range(25):
        (export / f"{k:04d}").write_bytes(b"\xff\xd8\xff\xe0" + bytes(300))  # JPEG thumbnails
    with pytest.raises(InputError, match="no DICOM"):
        discover_studies([export])
    for k, path in enumerate(write_series(tmp_path / "series", 3)):
        path.rename(export / f"IM_{k:04d}")
    assert discover_studies([export]) == [export]


def test_a_zipped_study_gives_every_series_as_its_folder_does(tmp_path):
    """``--same-patient`` read a zipped DICOM study as one series (the one an automatic pick takes)."""
    import zipfile

    from lumbar.io.study import read_study

    write_series(tmp_path / "study" / "t2", 5, SeriesNumber=3, SeriesDescription="SAG T2")
    write_series(tmp_path / "study" / "t1", 5, SeriesNumber=2, SeriesDescription="SAG T1")
    with zipfile.ZipFile(tmp_path / "study.zip", "w") as archive:
        for path in sorted((tmp_path / "study").rglob("*.dcm")):
            archive.write(path, path.relative_to(tmp_path / "study"))
    folder, zipped = read_study([tmp_path / "study"]), read_study([tmp_path / "study.zip"])
    assert [name for name, _ in zipped.series] == [name for name, _ in folder.series] == ["study_s2", "study_s3"]
    assert {image.source for image in zipped.images} == {str(tmp_path / "study.zip")}


# Enhanced objects of one frame


def _enhanced_slices(folder: Path, count: int) -> list[Path]:
    """``count`` Enhanced MR files of one frame each, 2 mm apart toward the patient's left, whose geometry lies in
    their functional groups alone; file k is filled with k + 1 and numbered backwards (the order is the positions')."""
    uid, files = generate_uid(), []
    for k in range(count):
        shared_groups = item(
            PlaneOrientationSequence=[item(ImageOrientationPatient=list(SAGITTAL))],
            PixelMeasuresSequence=[item(PixelSpacing=[0.7, 0.5], SliceThickness=2.0)],
        )
        frame = item(PlanePositionSequence=[item(ImagePositionPatient=[2.0 * k, 0.0, 0.0])])
        files.append(
            write_slice(
                folder / f"{k}.dcm",
                np.full((16, 12), k + 1),
                SOPClassUID=SOP_CLASSES["MR"],  # Enhanced MR: geometry in functional groups
                SeriesInstanceUID=uid,
                SeriesNumber=5,
                InstanceNumber=count - k,
                NumberOfFrames=1,
                SharedFunctionalGroupsSequence=[shared_groups],
                PerFrameFunctionalGroupsSequence=[frame],
            )
        )
    return files


def test_enhanced_files_of_one_frame_each_stack_by_their_functional_groups(tmp_path):
    """Their geometry was read from the top level alone: no spacing (0.5, 0.7, 0.5 mm) and slices mirrored."""
    files = _enhanced_slices(tmp_path / "series", 6)
    image = read_image(tmp_path / "series")
    assert image.spacing_mm == pytest.approx((2.0, 0.5, 0.7)) and image.plane == "sagittal"
    assert image.array[:, 0, 0].tolist() == [6, 5, 4, 3, 2, 1]  # RAS: the leftmost slice (x = 10 mm LPS) first
    assert read_image(files[0]).spacing_mm[0] == pytest.approx(2.0)  # one slice: the group's SliceThickness


# --series where it cannot apply


def test_series_is_refused_where_the_file_is_not_that_series_or_holds_none(tmp_path):
    """``lumbar info file.dcm --series 42`` read the file and said nothing of the series asked for."""
    import nibabel as nib

    [path] = write_series(tmp_path / "series", 1, SeriesNumber=3)
    assert "no series '42'" in refused_in_one_line(path, "--series", "42")
    assert info(path, "--series", "3")[0] == 0
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.eye(4)), tmp_path / "scan.nii.gz")
    assert "--series" in refused_in_one_line(tmp_path / "scan.nii.gz", "--series", "42")


# Images of one UID that cannot stack together


def test_a_localizers_planes_filed_under_one_uid_are_parts_that_series_picks(tmp_path):
    """A same-UID localizer of three planes was refused ("different orientations") and ``--series`` could not
    help: each plane is a part, numbered 1.1, 1.2, 1.3, that its number or its UID followed by the part picks."""
    _three_plane_localizer(tmp_path / "loc")
    uid = str(pydicom.dcmread(next((tmp_path / "loc" / "b_ax").iterdir())).SeriesInstanceUID)
    axial = read_image(tmp_path / "loc", series="1.2")
    assert axial.plane == "axial" and axial.shape[2] == 5 and axial.series.number == "1.2"
    assert read_image(tmp_path / "loc", series=f"{uid}.3").plane == "coronal"
    for whole in ("1", uid):  # the number or UID of the split series names all three parts
        assert "names 3 series" in refused_in_one_line(tmp_path / "loc", "--series", whole)


def test_the_echoes_of_a_dual_echo_series_are_read_apart(tmp_path):
    """Two echoes at the same positions under one UID read as duplicated slices; they are parts 4.1 and 4.2, and a
    study reads both (a check for the same series given twice took them for one series)."""
    from lumbar.io.study import read_study

    uid = generate_uid()
    for echo in (1, 2):
        write_series(tmp_path / "study" / f"echo{echo}", 5, SeriesInstanceUID=uid, SeriesNumber=4, EchoNumbers=echo)
    image = read_image(tmp_path / "study")
    assert image.shape[0] == 5 and image.series.number == "4.1"
    assert [o.shown for o in image.other_series] == ["#4.2 SAG T2 [MR, sagittal, 5 images]"]
    assert read_image(tmp_path / "study", series="4.2").series.number == "4.2"
    shown = json.loads(info(tmp_path / "study", "--series", "4.2")[1])["series_uid"]  # was the UID, naming both parts
    assert shown == f"{uid}.2" and read_image(tmp_path / "study", series=shown).series.number == "4.2"
    assert [name for name, _ in read_study([tmp_path / "study"]).series] == ["study_s4.1", "study_s4.2"]


def test_a_radiographs_frontal_and_lateral_views_under_one_uid_are_read_apart(tmp_path):
    """A DX series holding an AP and a LAT view was refused ("mixes image sizes"), whatever --series said."""
    uid = generate_uid()
    for view, shape in (("AP", (40, 30)), ("LAT", (40, 36))):
        write_slice(
            tmp_path / "xr" / f"{view}.dcm",
            np.ones(shape),
            SOPClassUID="1.2.840.10008.5.1.4.1.1.1.1",
            Modality="DX",
            SeriesInstanceUID=uid,
            SeriesNumber=1,
            ViewPosition=view,
            ImagerPixelSpacing=[0.2, 0.2],
        )
    assert read_image(tmp_path / "xr").view == "frontal"  # the first part
    assert read_image(tmp_path / "xr", series="1.2").view == "lateral"


# Datasets stored without the preamble and "DICM" (straight from the network, or by ACR-NEMA-era systems)


def without_preamble(path: Path, *, implicit: bool) -> Path:
    """The file at ``path`` rewritten as its dataset alone (:func:`dataset_alone`)."""
    path.write_bytes(dataset_alone(pydicom.dcmread(path), implicit=implicit))
    return path


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit VR", "explicit VR"])
def test_a_series_stored_without_the_preamble_reads_as_its_part10_files_do(tmp_path, implicit):
    part10 = write_series(tmp_path / "part10", 5)
    raw = write_series(tmp_path / "raw", 5, SeriesInstanceUID=pydicom.dcmread(part10[0]).SeriesInstanceUID)
    for path in raw:
        without_preamble(path, implicit=implicit)
    head = raw[0].read_bytes()[:132]
    assert head[:2] == b"\x08\x00" and head[128:132] != b"DICM"  # the dataset alone, no meta header to read
    expected, got = read_image(tmp_path / "part10"), read_image(tmp_path / "raw")
    assert np.array_equal(got.array, expected.array) and np.allclose(got.affine, expected.affine)
    assert np.array_equal(read_image(raw[2]).array, read_image(part10[2]).array)  # one file given alone
    assert json.loads(info(raw[0])[1])["shape"] == json.loads(info(part10[0])[1])["shape"]


def test_bytes_that_begin_as_a_dataset_does_but_hold_none_are_not_dicom(tmp_path, rng):
    path = tmp_path / "IM0001"
    path.write_bytes(b"\x08\x00\x05\x00" + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    assert not is_dicom_file(path)
    refused_in_one_line(path)
    cut = without_preamble(write_slice(tmp_path / "cut.dcm", np.ones((40, 30))), implicit=False)
    damaged = bytearray(cut.read_bytes())
    damaged[300:310] = b"\xff" * 10
    cut.write_bytes(bytes(damaged[:350]))
    with warnings.catch_warnings(record=True) as caught:  # a warning would be printed beside the one line
        warnings.simplefilter("always")
        refused_in_one_line(cut)
    assert not caught, [str(w.message) for w in caught]
    unnamed = without_preamble(write_slice(tmp_path / "IM0002", np.ones((4, 4))), implicit=True)
    ds = pydicom.dcmread(unnamed, force=True)
    ds.SOPClassUID = "not a uid"
    unnamed.write_bytes(dataset_alone(ds, implicit=True))
    assert not is_dicom_file(unnamed)
    with warnings.catch_warnings(record=True) as caught:  # pydicom warns of the bad UID when the value is read
        warnings.simplefilter("always")
        refused_in_one_line(unnamed)
    assert not caught, [str(w.message) for w in caught]
