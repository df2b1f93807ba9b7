"""``Study``: one patient's series, analysed together (as TorchIO's ``Subject`` groups a patient's images)."""

from __future__ import annotations

from dataclasses import dataclass

from lumbar.errors import InputError
from lumbar.image import SpineImage


@dataclass(frozen=True)
class Study:
    """The series of one patient, each with the name its outputs go under, and notes on series left out.

    Built by :func:`lumbar.io.study.read_study`; refuses fewer than two series, a series given twice, two
    series sharing an output name, and DICOM series of different patients."""

    images: tuple[SpineImage, ...]
    names: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.images) != len(self.names):
            raise ValueError("a Study needs one output name per series")
        if len(self.images) < 2:
            raise InputError(
                "--same-patient needs at least two series of the patient (files, or a DICOM folder holding them)"
            )
        # a series split in parts (echoes, planes: lumbar.io.dicom_series) gives parts of one UID, numbered apart
        series = [(i.series.uid, i.series.number) for i in self.images if i.series is not None and i.series.uid]
        if len(set(series)) < len(series):
            raise InputError("--same-patient: the same series is given twice")
        if len({image.patient_id for image in self.images if image.patient_id}) > 1:
            raise InputError("--same-patient: the DICOM series belong to different patients (PatientID differs)")
        if len(set(self.names)) < len(self.names):
            raise InputError("--same-patient: two series would share an output folder; rename one of the inputs")

    @property
    def series(self) -> list[tuple[str, SpineImage]]:
        """(output name, image) of every series."""
        return list(zip(self.names, self.images))
