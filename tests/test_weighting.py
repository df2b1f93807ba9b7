"""T1 or T2 read from the canal's fluid against the vertebrae's marrow: known answers at both bounds."""

import numpy as np
import pytest

from lumbar.labels import CANAL_LABEL, DISC_OFFSET
from lumbar.phantom import make_phantom
from lumbar.tasks import weighting as w


def _slice(canal: float, marrow: float, disc: float = 500.0, n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """A slice of 100 pixels each of canal, vertebra and disc at the given signals (discs must not count), the canal
    cut to ``n`` pixels."""
    labels = np.zeros((30, 20), int)
    labels[:5, :] = CANAL_LABEL
    labels[5:10, :] = 3
    labels[10:15, :] = DISC_OFFSET + 3
    picture = np.zeros(labels.shape)
    picture[labels == CANAL_LABEL], picture[labels == 3], picture[labels == DISC_OFFSET + 3] = canal, marrow, disc
    if n < 100:
        labels[:5, n // 5 :] = 0
    return picture, labels


@pytest.mark.parametrize(
    ("canal", "marrow", "expected"),
    [(100.0, 100.0, "T2"), (99.0, 100.0, None), (70.0, 100.0, None), (69.0, 100.0, "T1"), (300.0, 100.0, "T2")],
)
def test_the_ratio_and_its_two_bounds(canal, marrow, expected):
    picture, labels = _slice(canal, marrow)
    ratio = w.csf_over_marrow(picture, labels)
    assert ratio == pytest.approx(canal / marrow)
    assert w.weighting(ratio) == expected


def test_too_little_canal_or_no_marrow_signal_gives_no_reading():
    assert w.csf_over_marrow(*_slice(200.0, 100.0, n=45)) is None  # 45 canal pixels, under MIN_PIXELS
    assert w.csf_over_marrow(*_slice(200.0, 100.0, n=50)) == pytest.approx(2.0)
    assert w.csf_over_marrow(*_slice(200.0, 0.0)) is None
    assert w.weighting(None) is None


@pytest.mark.parametrize(("contrast", "expected"), [("T1", "T1"), ("T2", "T2")])
def test_the_phantom_reads_as_it_was_drawn(contrast, expected):
    """End to end through the MRI pipeline: findings.json and the report say the weighting, and a T1 series' tables
    say why its Pfirrmann grades are not stated."""
    from lumbar.pipelines.mr_sagittal import analyze
    from lumbar.report.html import render_html
    from lumbar.tasks.summary import ON_T1

    result = analyze(make_phantom(contrast=contrast).image)
    findings = result.findings
    assert findings.input.weighting == expected
    assert findings.input.weighting_read_from == "image"
    assert f"MR ({expected}-weighted, as the image reads)" in render_html(findings, result.figures)
    # said in the tables even where the Summary is withheld (this phantom's T1 is, for a disc in pieces)
    assert (findings.not_validated.get("pfirrmann") == ON_T1) == (expected == "T1")


@pytest.mark.parametrize(
    ("echo", "repetition", "inversion", "expected"),
    [
        (100.0, 3000.0, None, "T2"),
        (60.0, 1000.0, None, "T2"),
        (59.9, 3000.0, None, None),  # neither: proton density or an intermediate weighting
        (30.0, 1000.0, None, "T1"),
        (30.1, 600.0, None, None),
        (10.0, 1000.1, None, None),
        (10.0, None, None, None),
        (None, 600.0, None, None),
        (70.0, 4000.0, 150.0, None),  # STIR: left to the image
    ],
)
def test_the_headers_timing_and_its_bounds(echo, repetition, inversion, expected):
    assert w.weighting_from_header(echo, repetition, inversion) == expected


def test_a_dicom_series_is_weighted_as_its_header_says_and_damaged_timing_is_no_timing(tmp_path):
    """A T1-looking phantom whose header gives a T2 spin echo's timing reads as T2, from the header; timing given as
    several values, zero or infinity is no timing."""
    import pydicom

    from lumbar.io import read_image
    from lumbar.io.dicom_header import series_info
    from lumbar.io.dicom_write import write_dicom_series
    from lumbar.pipelines.mr_sagittal import analyze

    for path in write_dicom_series(make_phantom(contrast="T1").image, tmp_path / "series"):
        ds = pydicom.dcmread(path)
        ds.EchoTime, ds.RepetitionTime = 100, 3000
        ds.save_as(path)
    findings = analyze(read_image(tmp_path / "series")).findings
    assert (findings.input.weighting, findings.input.weighting_read_from) == ("T2", "DICOM header")
    ds = pydicom.Dataset()
    for value in ([80, 90], 0, float("inf")):
        ds.EchoTime = value
        assert series_info(ds).echo_time_ms is None
    ds.EchoTime = "12.5"
    assert series_info(ds).echo_time_ms == 12.5


def test_an_enhanced_mr_files_timing_is_read_from_its_functional_groups(tmp_path):
    """Enhanced MR keeps its timing in functional groups, not at the top level (PS3.3 C.8.13.5): the echo time in
    the MR Echo group (per frame), the repetition time in the MR Timing group (shared), the inversion times in the
    MR Modifier group; a T2 spin echo's timing there reads T2, and an inversion there leaves it to the image."""
    from pydicom.dataset import Dataset

    from lumbar.io.dicom_header import series_info
    from lumbar.tasks.weighting import weighting_from_header

    def item(**attributes) -> Dataset:
        ds = Dataset()
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        return ds

    ds = item(
        SharedFunctionalGroupsSequence=[item(MRTimingAndRelatedParametersSequence=[item(RepetitionTime=3500.0)])],
        PerFrameFunctionalGroupsSequence=[item(MREchoSequence=[item(EffectiveEchoTime=102.0)]) for _ in range(3)],
    )
    info = series_info(ds)
    assert (info.echo_time_ms, info.repetition_time_ms, info.inversion_time_ms) == (102.0, 3500.0, None)
    assert weighting_from_header(info.echo_time_ms, info.repetition_time_ms, info.inversion_time_ms) == "T2"
    ds.SharedFunctionalGroupsSequence[0].MRModifierSequence = [item(InversionRecovery="YES", InversionTimes=[160.0])]
    info = series_info(ds)
    assert info.inversion_time_ms == 160.0
    assert weighting_from_header(info.echo_time_ms, info.repetition_time_ms, info.inversion_time_ms) is None
    ds.EchoTime = ""  # a classic attribute left empty (type 2: unknown) leaves it to the groups
    assert series_info(ds).echo_time_ms == 102.0
    ds.EchoTime = 12.0  # the classic attribute, where a file gives it, comes first
    assert series_info(ds).echo_time_ms == 12.0
    del ds.EchoTime
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    echo = ds.PerFrameFunctionalGroupsSequence[0].MREchoSequence[0]
    del echo.EffectiveEchoTime  # 5 bytes where a float64 takes 8: a damaged value is no timing, not a refusal
    echo._dict[Tag(0x0018, 0x9082)] = RawDataElement(Tag(0x0018, 0x9082), "FD", 5, b"\x00" * 5, 0, False, True)
    assert series_info(ds).echo_time_ms is None
