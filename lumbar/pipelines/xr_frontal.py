"""The frontal radiograph pipeline: each vertebra T1-L5 found, named and cornered; heights, tilts and Cobb angles.

One radiograph in, one :class:`~lumbar.pipelines.result.Result` out, nothing written. The network (registry entry
``radiograph``, trained on the AASCE 2019 frontal films) reads the letterboxed picture and gives each body's centre
and four corners (:mod:`lumbar.tasks.corners`); the corner network (``radiograph_corners``) then places each
body's corners again in a window in the body's own frame (:mod:`lumbar.tasks.body_frames`). Bodies are named top
to bottom T1 ... L5 when all 17 are found, as the films the network learnt from span exactly those; otherwise
upwards from the lowest, taken as L5, and the names are flagged. The outlines become the instance label map (one
VerSe id per body), so that the writer, the levels JSON and the viewer treat a radiograph like any other image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from lumbar.figures import Figures
from lumbar.findings import CobbAngle, Findings, FrontalVertebraMeasurements, Statement, Vertebra
from lumbar.image import SpineImage
from lumbar.labels import FRONTAL_LEVELS, VERTEBRA_IDS, Structure
from lumbar.models.registry import REGISTRY, OnnxModel, load_model
from lumbar.pipelines.result import Result, Segmentation, input_description
from lumbar.preprocess import Letterbox, normalize_intensity
from lumbar.progress import SILENT, Progress
from lumbar.tasks.body_frames import refine_corners
from lumbar.tasks.cobb import CobbAngles, cobb_angles, ordered_quad, side_heights, tilt_deg
from lumbar.tasks.corners import FoundVertebra, decode_in_image
from lumbar.tasks.frontal_levels import candidate_step, name_candidates
from lumbar.tasks.levels import Level, LevelLabelling
from lumbar.tasks.overlays import radiograph_overlay
from lumbar.tasks.segmentation import SemanticSegmentation
from lumbar.validation import load_validation
from lumbar.version import __version__

NAME = "xr_frontal"
VIEW = "frontal"  # the radiograph view it reads (the router prefers its refusal for such a film)
DESCRIPTION = "frontal (AP/PA) spine radiographs, T1 to L5"
MODALITIES = REGISTRY["radiograph"].modalities
LEVELS = FRONTAL_LEVELS  # T1 ... L5: what the training films span
LOW_SCORE = 0.15  # a body the network scores below this is flagged (1 of the 64 validation films has one)
ROUTE_SCORE, MIN_SPINE = 0.3, 9  # a picture of unstated modality is a radiograph with 9 bodies scoring 0.3 or more
GAP_FACTOR = 1.7  # a step between neighbouring bodies this many times the median: a body may be missing there...
CLOSE_FACTOR = 0.6  # ...and this fraction of it: two found bodies may be one
MAX_CANDIDATES = 60  # peaks the level network reads: T1-L5, the bodies beyond and stray peaks (20-40 a film)


def refusal(image: SpineImage) -> str | None:
    """Why this pipeline cannot read ``image`` (None when it can)."""
    spec = REGISTRY["radiograph"]
    if image.modality not in spec.modalities:
        return f"{image.modality.value} images: the radiograph model reads projection radiographs (XR) only"
    if image.view == "lateral":
        return "a lateral radiograph: the frontal radiograph model reads AP/PA films"
    if not spec.shipped:
        return "radiographs: no radiograph model ships in this installation"
    if not image.is_2d:
        return f"a radiograph is one picture; this image has {image.sagittal_slices().shape[0]} slices"
    return None


def reads_as_radiograph(image: SpineImage) -> bool:
    """For a picture whose file does not state its modality (PNG/JPEG): whether the radiograph network finds a
    frontal spine in it: at least ``MIN_SPINE`` bodies scoring ``ROUTE_SCORE`` or more. Chosen on the validation
    films (57 of 64 pass) and SPIDER's MRI pictures (none of 380 does; at most 8 bodies score that high in one):
    ``bench/radiograph.py`` measures it on the test films."""
    if not REGISTRY["radiograph"].shipped or not image.is_picture:
        return False
    found = find_vertebrae(image.sagittal_slices()[0])
    return sum(v.score >= ROUTE_SCORE for v in found) >= MIN_SPINE


def radiograph_model() -> OnnxModel:
    return load_model("radiograph")


def find_vertebrae(
    picture: np.ndarray, model: OnnxModel | None = None, max_count: int = len(LEVELS)
) -> list[FoundVertebra]:
    """The frontal network's ``max_count`` strongest bodies in a radiograph (rows, columns), top to bottom, corners in
    the picture's pixels (its first look: :func:`read_film` places the corners again)."""
    model = model or radiograph_model()
    box = Letterbox.fit(picture.shape)
    return decode_in_image(model(box.apply(picture)[None, None])[0], box, max_count=max_count)


def find_candidates(picture: np.ndarray, model: OnnxModel | None = None) -> list[FoundVertebra]:
    """Every peak of the frontal network (up to ``MAX_CANDIDATES``), top to bottom: the bodies T1-L5 and those
    beyond them, for the level network to tell apart."""
    return find_vertebrae(picture, model, MAX_CANDIDATES)


def name_vertebrae(found: list[FoundVertebra]) -> tuple[list[str], list[str]]:
    """Level names for bodies found top to bottom, and the reasons to doubt them: T1 ... L5 when 17 are found, else
    upwards from the lowest, taken as L5."""
    n = len(found)
    flags = []
    if n == len(LEVELS):
        return list(LEVELS), flags
    names = list(LEVELS[len(LEVELS) - n :])
    flags.append(
        f"found {n} of the 17 vertebrae T1-L5 a full frontal film shows: named upwards from the lowest, taken as L5"
    )
    return names, flags


@dataclass(frozen=True)
class FrontalReading:
    """What the networks read on one film: its bodies (top to bottom), their names, the reasons to doubt them, the
    networks that read it (name -> version) and one digest of their weights."""

    found: list[FoundVertebra]
    names: list[str]
    flags: list[str]
    models: dict[str, str]
    weights_sha256: str  # what a validation record of the film's angles names its weights by


def weights_digest(models: list) -> str:
    """One digest of the networks that read a film: the frontal network's own where it read alone, else the digest
    of theirs joined (a network without a digest, as a test's stand-in, counts as "")."""
    import hashlib

    digests = [getattr(m, "sha256", "") for m in models]
    return digests[0] if len(digests) == 1 else hashlib.sha256("".join(digests).encode()).hexdigest()


def corner_model() -> OnnxModel | None:
    """The corner network where it ships; without it a film's corners are the frontal network's."""
    return load_model("radiograph_corners") if REGISTRY["radiograph_corners"].shipped else None


def level_model() -> OnnxModel | None:
    """The level network where it ships; without it a film's names are counted along the 17 strongest bodies."""
    return load_model("radiograph_levels") if REGISTRY["radiograph_levels"].shipped else None


@dataclass(frozen=True)
class Named:
    """The bodies T1-L5 found on a film (top to bottom), their names, the reasons to doubt the names, whether the
    names were counted along the bodies (not read by the level network) and the spine's step (film pixels)."""

    found: list[FoundVertebra]
    names: list[str]
    flags: list[str]
    counted: bool
    step: float | None


def find_and_name(picture: np.ndarray, model: OnnxModel, level_net: OnnxModel | None) -> Named:
    """Find and name the bodies: by the level network (``level_net``) among all the frontal network's candidates,
    else counted along its 17 strongest (:func:`name_vertebrae`)."""
    if level_net is None:
        found = find_vertebrae(picture, model)
        return Named(found, *name_vertebrae(found), counted=True, step=None)
    candidates = find_candidates(picture, model)
    steps = level_net.meta.get("relative_steps")  # the training films' steps, in the network's record
    found, names = name_candidates(normalize_intensity(picture), candidates, level_net, steps)
    flags = []
    if 0 < len(found) < len(LEVELS):  # none found is said by the pipeline: "no vertebra found"
        named = names[0] if len(found) == 1 else f"{names[0]} to {names[-1]}"
        anchors = "" if {"T1", "L5"} & set(names) else "; neither T1 nor L5 recognised, so every name may be off"
        flags.append(f"named {len(found)} of the 17 vertebrae T1-L5 a full frontal film shows ({named}){anchors}")
    return Named(found, names, flags, counted=False, step=candidate_step(candidates) or None)


def read_film(
    picture: np.ndarray,
    model: OnnxModel | None = None,
    corner_net: OnnxModel | None = None,
    second_look: bool = True,
    square_pixels: bool = True,
    level_net: OnnxModel | None = None,
    by_levels: bool = True,
) -> FrontalReading:
    """Find, name and corner the bodies of a frontal radiograph (rows, columns): the frontal network (``model``,
    else the shipped one) finds and corners them; unless ``by_levels`` is off the level network (``level_net``, else
    the shipped one, if any) names them among all its candidates (:mod:`lumbar.tasks.frontal_levels`); and unless
    ``second_look`` is off the corner network (``corner_net``, else the shipped one, if any) places each body's
    corners again in the body's own window (:func:`lumbar.tasks.body_frames.refine_corners`). The corner network
    learnt on square pixels: a film whose rows and columns differ in size (``square_pixels`` off) keeps the frontal
    network's corners, and its weights' digest is then the frontal network's alone (and the level network's), which
    no validation record of them all together matches."""
    model = model or radiograph_model()
    corner_net = (corner_net or corner_model()) if second_look and square_pixels else None
    level_net = (level_net or level_model()) if by_levels else None
    named = find_and_name(picture, model, level_net)
    found, names, flags = named.found, named.names, list(named.flags)
    # the review flags judge the detection (a body missing, two peaks on one), on the centres the frontal network
    # found: their bounds were chosen on those; the corners placed again space the small upper thoracic bodies
    # closer than their centres did, and would flag many more films
    flags += gap_flags(found, names, counted=named.counted)
    versions, used = {"radiograph": model.version}, [model]
    if level_net is not None:
        versions["radiograph_levels"] = level_net.version
        used.append(level_net)
    if corner_net is not None and len(found) >= 2:
        refined = refine_corners(normalize_intensity(picture), found, corner_net, named.step)
        found = [FoundVertebra(quad.mean(0), ordered_quad(quad), v.score) for v, quad in zip(found, refined)]
        versions["radiograph_corners"] = corner_net.version
        used.append(corner_net)
    weak = [name for name, v in zip(names, found) if v.score < LOW_SCORE]
    if weak:
        flags.append(f"low detection score (below {LOW_SCORE}) for {', '.join(weak)}")
    return FrontalReading(found, names, flags, versions, weights_digest(used))


def gap_flags(found: list[FoundVertebra], names: list[str], counted: bool = True) -> list[str]:
    """A step between neighbouring bodies much longer than the others (a body may be missing there) or much shorter
    (two found bodies may be one, or one a neighbour's edge). Where the names were ``counted`` along the bodies, such
    an error moves every name above it; where the level network read them, it may move the names beside it."""
    if len(found) < 4:
        return []
    steps = np.linalg.norm(np.diff([v.centre for v in found], axis=0), axis=1)
    median = float(np.median(steps))
    which = "every name above it" if counted else "the names beside it"

    def missing(k: int) -> str:
        left_out = () if counted else LEVELS[LEVELS.index(names[k]) + 1 : LEVELS.index(names[k + 1])]
        if left_out:
            return f"{', '.join(left_out)} not found there"
        return f"a vertebra may be missing there and {which} would be wrong"

    gaps = [
        f"gap between {names[k]} and {names[k + 1]} {steps[k] / median:.1f} times the usual step: {missing(k)}"
        for k in np.flatnonzero(steps > GAP_FACTOR * median)
    ]
    close = [
        f"{names[k]} and {names[k + 1]} only {steps[k] / median:.1f} times the usual step apart: one of them may not "
        f"be a vertebra, and {which} would be wrong"
        for k in np.flatnonzero(steps < CLOSE_FACTOR * median)
    ]
    return gaps + close


def segment(
    image: SpineImage, progress: Progress = SILENT, gate: tuple[str, ...] = (), model: OnnxModel | None = None
) -> Segmentation:
    """Find and name the bodies; their outlines are the instance map. ``gate``: reasons that withhold the Summary."""
    return detect(image, progress, gate, model)[0]


def outlined(
    image: SpineImage, found: list[FoundVertebra], names: list[str], flags: list[str], model_version: str
) -> tuple[SemanticSegmentation, LevelLabelling]:
    """A radiograph's bodies (top to bottom, named) as label maps: each outline filled with its VerSe id, its
    detection score as the confidence, and the named levels caudal first, as levels are kept (frontal and lateral
    films alike)."""
    picture = image.sagittal_slices()[0]
    instances = np.zeros(picture.shape, np.int32)
    confidence = np.zeros(picture.shape, np.float32)
    levels = []
    spacing = image.sagittal_spacing_mm()
    for name, vertebra in zip(names, found):
        label = VERTEBRA_IDS[name]
        canvas = Image.new("L", picture.shape[::-1], 0)
        ImageDraw.Draw(canvas).polygon([tuple(p) for p in vertebra.corners], fill=1)
        mask = np.asarray(canvas, bool)
        instances[mask] = label
        confidence[mask] = vertebra.score
        x, y = vertebra.centre
        levels.append(Level(name, label, "vertebra", (float(y * spacing[0]), float(x * spacing[1])), int(mask.sum())))
    classes = np.where(instances > 0, int(Structure.VERTEBRA), 0).astype(np.uint8)
    semantic = SemanticSegmentation(classes[None], confidence[None], spacing, model_version)
    return semantic, LevelLabelling(instances[None], levels[::-1], flags)


def detect(
    image: SpineImage, progress: Progress = SILENT, gate: tuple[str, ...] = (), model: OnnxModel | None = None
) -> tuple[Segmentation, FrontalReading]:
    """The segmentation (outlines as instances, names, review reasons) and the reading it comes from (bodies top to
    bottom as named)."""
    progress.stage("finding vertebrae")
    rows, columns = image.sagittal_spacing_mm()
    reading = read_film(image.sagittal_slices()[0], model, square_pixels=abs(rows / columns - 1) < 0.01)
    found, names, flags = reading.found, reading.names, reading.flags
    semantic, labelling = outlined(image, found, names, flags, " + ".join(reading.models.values()))
    withheld = [*gate, *flags]
    if not found:
        withheld.append("no vertebra found: is this a frontal spine radiograph?")
    if image.modality_guessed:
        withheld.append(
            f"modality not stated by the {image.format or 'file'}: analysed as a radiograph, but no finding is stated "
            "until you confirm it is one (--modality XR)"
        )
    if image.view_guessed:
        withheld.append("view not stated by the file: read as frontal; give --view to say")
    notes = [] if image.spacing_known else ["pixel spacing unknown: heights are in pixels (give --spacing in mm)"]
    return Segmentation(image, semantic, labelling, (*withheld, *notes), tuple(withheld)), reading


def cobb_statements(angles: list[CobbAngle], model_sha256: str = "") -> tuple[list[Statement], dict[str, str]]:
    """The major curve in the Summary where its severity class was validated against the expert's angles
    (``lumbar/validation.json``, section radiographs), else in ``not_validated`` with why; the level names, which
    were measured and not validated, in ``not_validated`` always (so the Summary never names the end vertebrae), as
    are the angles' values and minor curves (only the call "40° or more" is validated) and the bodies' heights and
    tilts.
    A record holds only for the weights it was measured on (``model_sha256``)."""
    records = load_validation()
    not_validated = {
        name: records[key].basis() if key in records else "not measured against an expert"
        for name, key in (
            ("level_names", "radiograph_level_names"),
            ("cobb_angle_values", "radiograph_cobb_angle_values"),
            ("vertebra_measurements", "radiograph_vertebra_measurements"),
        )
    }
    record = records.get("cobb_major_40")
    major = next((a for a in angles if a.curve == "major"), None)
    if major is None:
        return [], not_validated
    if record is not None and record.model_sha256 and record.model_sha256 != model_sha256:
        return [], {**not_validated, "cobb_angles": "measured against the expert for other weights than these"}
    if record is None or not record.validated:
        why = record.basis() if record else "not measured against an expert's angles"
        return [], {**not_validated, "cobb_angles": why}
    if major.angle_deg < record.threshold:
        return [], not_validated
    # the call alone: the angle's value is not validated (it stays in the tables, marked), so the Summary does not
    # state it (it did: "major Cobb angle 47°", a figure no expert checked)
    text = f"Scoliosis: a major curve of 40° or more (stated where the angle read is {record.threshold:g}° or more)."
    return [Statement(level=None, finding="cobb_major_40", text=text, basis=record.basis())], not_validated


def build_findings(seg: Segmentation, reading: FrontalReading) -> Findings:
    """The findings of one frontal radiograph: per body its corners, heights and tilt; the Cobb angles."""
    image, found = seg.image, reading.found
    names = [lv.name for lv in seg.levels.levels[::-1]]
    corners = np.array([v.corners for v in found]).reshape(-1, 4, 2)
    # lengths and angles in mm where the film gives its pixel size (rows and columns may differ), else in pixels
    scale = np.array(image.sagittal_spacing_mm())[::-1] if image.spacing_known else np.ones(2)
    measured_frame = corners * scale
    heights = side_heights(measured_frame)
    tilts = tilt_deg(measured_frame) if len(corners) else np.zeros(0)
    vertebrae = [
        Vertebra(
            level=name,
            label=VERTEBRA_IDS[name],
            corners_px=tuple(tuple(map(float, p)) for p in v.corners),
            detection_score=round(v.score, 4),
            frontal=FrontalVertebraMeasurements(height_left=float(h[0]), height_right=float(h[1]), tilt_deg=float(t)),
        )
        for name, v, h, t in zip(names, found, heights, tilts)
    ]
    curves: list[CobbAngle] = []
    if len(corners) >= 2:
        measured: CobbAngles = cobb_angles(measured_frame, image.sagittal_slices().shape[1] * scale[1])
        for kind, curve in zip(("major", "minor", "minor"), (measured.major, measured.second, measured.third)):
            if curve.upper == curve.lower:
                continue  # the major curve ends at the film's top or bottom body: no curve beyond it
            curves.append(
                CobbAngle(
                    curve=kind,
                    angle_deg=round(curve.angle_deg, 2),
                    upper_vertebra=names[curve.upper],
                    lower_vertebra=names[curve.lower],
                )
            )
    summary, not_validated = cobb_statements(curves, reading.weights_sha256)
    withheld = "; ".join(seg.gate) if seg.gate else None
    return Findings(
        lumbar_version=__version__,
        input=input_description(image),
        models=dict(reading.models),
        view="frontal",
        units="mm" if image.spacing_known else "pixels",
        discs=(),
        vertebrae=vertebrae,
        cobb_angles=curves,
        needs_review=seg.review,
        summary=() if withheld else summary,
        summary_withheld=withheld,
        not_validated=not_validated,
    )


def overview(seg: Segmentation, findings: Findings) -> np.ndarray:
    """The radiograph with every body outlined and named and the Cobb curves drawn."""
    by_name = {v.level: np.array(v.corners_px) for v in findings.vertebrae if v.corners_px}
    curves = [(c.angle_deg, by_name[c.upper_vertebra], by_name[c.lower_vertebra]) for c in findings.cobb_angles]
    unique = list({(round(a, 2), u.tobytes(), lo.tobytes()): (a, u, lo) for a, u, lo in curves if a > 0}.values())
    return radiograph_overlay(seg.image.sagittal_slices()[0], list(by_name.items()), unique)


def analyze_images(
    images: list[SpineImage],
    *,
    same_patient: bool = False,
    gates: list[tuple[str, ...]] | None = None,
    progress: Progress = SILENT,
) -> list[Result]:
    """Analyse radiographs already read; each stands alone (``same_patient`` changes nothing here)."""
    results = []
    for image, gate in zip(images, gates or [()] * len(images)):
        seg, reading = detect(image, progress, gate)
        findings = build_findings(seg, reading)
        results.append(Result(seg, findings, Figures(overview(seg, findings))))
    return results


def analyze(image: SpineImage, *, gate: tuple[str, ...] = (), progress: Progress = SILENT) -> Result:
    """Analyse one frontal radiograph."""
    return analyze_images([image], gates=[gate], progress=progress)[0]
