"""The lateral radiograph pipeline: each vertebra found, named from the sacrum, cornered; heights, slips, lordosis.

One radiograph in, one :class:`~lumbar.pipelines.result.Result` out, nothing written. The network (registry entry
``radiograph_lateral``) was trained on synthetic lateral films only (rendered from MRI label maps: its card says
how), always with the patient facing left; the film is read as it is and mirrored, and the reading with the
stronger bodies decides which way the patient faces. Bodies are named upwards from S1, the body at the network's
S1 peak; without one they are named upwards from the lowest body, taken as L5, and the names are flagged. From the
corners (:mod:`lumbar.tasks.lateral`): heights and Genant grade per body, per disc its heights, angle and slip
(Meyerding for an anterolisthesis), lordosis L1-S1. Nothing on a lateral film has been validated against an
expert's reading of real films, so its Summary is always withheld and every value is marked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumbar.figures import Figures
from lumbar.findings import Disc, DiscMeasurements, Findings, Vertebra, VertebraMeasurements
from lumbar.image import SpineImage
from lumbar.labels import REPORTED_DISCS, SPINE_ORDER, VERTEBRA_IDS, disc_label
from lumbar.models.registry import REGISTRY, OnnxModel, load_model
from lumbar.pipelines import xr_frontal
from lumbar.pipelines.result import Result, Segmentation, input_description
from lumbar.pipelines.xr_frontal import gap_flags
from lumbar.preprocess import LATERAL_SHAPE, Letterbox
from lumbar.progress import SILENT, Progress
from lumbar.tasks import lateral
from lumbar.tasks.corners import FoundVertebra, decode, sigmoid
from lumbar.tasks.measurements import (
    CUT_BY_EDGE,
    MAX_PLAUSIBLE_RETRO_PERCENT,
    MAX_PLAUSIBLE_SLIP_PERCENT,
    genant_grade,
    meyerding_grade,
)
from lumbar.tasks.overlays import radiograph_overlay
from lumbar.version import __version__

NAME = "xr_lateral"
VIEW = "lateral"  # the radiograph view it reads (the router prefers its refusal for such a film)
DESCRIPTION = "lateral lumbar spine radiographs (bodies named from the sacrum)"
MODALITIES = REGISTRY["radiograph_lateral"].modalities
MAX_BODIES = 12  # T8 ... S1: more than a lumbar film's height holds
S1_SCORE = 0.3  # an S1 peak below this is no sacrum: the names are counted from the lowest body instead
# A lumbar disc on a lateral film is about a third of its bodies' height, at most about half (L4/L5, L5/S1); a space
# between neighbouring bodies this many times their height holds a body the network missed. Measured on the network's
# own readings, whose bodies read short: at 0.8 (which almost no space between the anatomies' own corners passes) it
# flagged 31% of the validation patients' synthetic films with no body missed; 1.3 flags at most 5% of them
# (bench/radiograph_lateral.py, which measures both).
TALL_SPACE_FACTOR = 1.3
LOW_SCORE = 0.15
OFF_COLUMN = 0.5  # see on_column
VIEW_MARGIN = -0.08  # see radiograph_view
MIN_LATERAL_STRENGTH = 0.2  # a film the lateral network reads no spine in is not called lateral (nor is noise)
ROUTE_SCORE, MIN_SPINE = 0.3, 5  # see reads_as_lateral
UNVALIDATED = ("level_names", "vertebra_measurements", "disc_measurements", "slip", "lordosis")
NOT_VALIDATED = "trained on synthetic lateral films only; not measured against an expert on real radiographs"
CORNERS_OUT_OF_ORDER = (
    "corners out of order (crossed, run the other way, or a side of no length): the body and the discs beside it "
    "are not measured"
)


def refusal(image: SpineImage) -> str | None:
    """Why this pipeline cannot read ``image`` (None when it can): a lateral projection radiograph."""
    spec = REGISTRY["radiograph_lateral"]
    if image.modality not in spec.modalities:
        return f"{image.modality.value} images: the lateral radiograph model reads projection radiographs (XR) only"
    if image.view != "lateral":
        return "not a lateral radiograph"
    if not spec.shipped:
        return "lateral radiographs: no lateral radiograph model ships in this installation"
    if not image.is_2d:
        return f"a radiograph is one picture; this image has {image.sagittal_slices().shape[0]} slices"
    return None


def lateral_model() -> OnnxModel:
    return load_model("radiograph_lateral")


def body_strength(scores: list[float]) -> float:
    """How strongly a network reads a film as its kind of spine: the mean score of its six strongest bodies."""
    strongest = sorted(scores, reverse=True)[:6]
    return float(np.mean(strongest)) if strongest else 0.0


def radiograph_view(picture: np.ndarray, model: OnnxModel | None = None) -> str:
    """A radiograph's view where its file does not say: "lateral" where the lateral network's bodies score more
    than ``VIEW_MARGIN`` above the frontal network's, else "frontal"; with one network shipped, its view. The
    margin lies halfway between the highest of 80 real frontal training films (-0.20) and the lowest of 32 synthetic
    validation films (+0.04): a real lateral film reads weaker than a synthetic one, so the cut leans frontal's way
    no further than the frontal films need. A film in which the lateral network's bodies score under
    ``MIN_LATERAL_STRENGTH`` stays frontal, whose pipeline says when it finds no spine either."""
    if model is None and not REGISTRY["radiograph_lateral"].shipped:
        return "frontal"
    if not REGISTRY["radiograph"].shipped:
        return "lateral"
    frontal = body_strength([v.score for v in xr_frontal.find_vertebrae(picture)])
    lateral_reading = body_strength([v.score for v in read_film(picture, model).bodies])
    return "lateral" if lateral_reading > max(frontal + VIEW_MARGIN, MIN_LATERAL_STRENGTH) else "frontal"


def reads_as_lateral(image: SpineImage, model: OnnxModel | None = None) -> bool:
    """For a picture whose file does not state its modality: whether the lateral network finds a lateral spine in
    it (``MIN_SPINE`` bodies scoring ``ROUTE_SCORE`` or more and S1 found)."""
    if (model is None and not REGISTRY["radiograph_lateral"].shipped) or not image.is_picture:
        return False
    reading = read_film(image.sagittal_slices()[0], model)
    return sum(v.score >= ROUTE_SCORE for v in reading.bodies) >= MIN_SPINE and reading.s1_score >= S1_SCORE


@dataclass(frozen=True)
class LateralReading:
    """What the network reads on a film: the bodies top to bottom (centres and corners in the film's pixels, the
    corners anterior-superior, posterior-superior, posterior-inferior, anterior-inferior), where S1's channel peaks
    and how high, which way the patient faces, and how strongly the film reads as a lateral spine (the mean score
    of its six strongest bodies plus the S1 peak's: which way round the film is read)."""

    bodies: list[FoundVertebra]
    s1_at: np.ndarray
    s1_score: float
    faces_right: bool
    strength: float


def read_film(picture: np.ndarray, model: OnnxModel | None = None) -> LateralReading:
    """The film read as it is and mirrored (the network learnt patients facing left); the stronger reading wins."""
    model = model or lateral_model()
    box = Letterbox.fit(picture.shape, LATERAL_SHAPE)
    fitted = box.apply(picture, LATERAL_SHAPE)
    logits = model(np.stack([fitted, fitted[:, ::-1]])[:, None])
    width = LATERAL_SHAPE[1]
    readings = []
    for k, faces_right in enumerate((False, True)):
        bodies = decode(logits[k, :9], MAX_BODIES, reorder=False)
        heat = sigmoid(logits[k, 9])
        peak = np.unravel_index(int(np.argmax(heat)), heat.shape)
        s1_at = np.array([peak[1], peak[0]], float)
        strongest = sorted((v.score for v in bodies), reverse=True)[:6]
        strength = (float(np.mean(strongest)) if strongest else 0.0) + float(heat.max())
        if faces_right:  # read mirrored: back into the film's pixels, each corner keeping its anatomical role
            bodies = [
                FoundVertebra(lateral.facing_left(v.centre, width), lateral.facing_left(v.corners, width), v.score)
                for v in bodies
            ]
            s1_at = lateral.facing_left(s1_at, width)
        bodies = [FoundVertebra(box.to_image(v.centre), box.to_image(v.corners), v.score) for v in bodies]
        readings.append(LateralReading(bodies, box.to_image(s1_at), float(heat.max()), faces_right, strength))
    return max(readings, key=lambda r: r.strength)


def on_column(found: list[FoundVertebra]) -> list[FoundVertebra]:
    """The bodies in line with the column (top to bottom). A curve (x a polynomial in y: quadratic, cubic from
    seven bodies on, for a lordosis under a kyphosis) is fitted through the centres; while the centre furthest from
    it lies more than ``OFF_COLUMN`` of a body's depth away, that outline is something else (a posterior element,
    a rib, an iliac crest), left out, and the curve fitted again."""
    kept = list(found)
    if len(kept) < 4:
        return kept
    depth = float(np.median([np.linalg.norm(v.corners[lateral.AS] - v.corners[lateral.PS]) for v in kept]))
    while len(kept) >= 4:
        centres = np.array([v.centre for v in kept])
        curve = np.polyfit(centres[:, 1], centres[:, 0], 3 if len(kept) >= 7 else 2)
        residual = np.abs(centres[:, 0] - np.polyval(curve, centres[:, 1]))
        worst = int(np.argmax(residual))
        if residual[worst] <= OFF_COLUMN * depth:
            break
        kept.pop(worst)
    return kept


def names_and_flags(reading: LateralReading) -> tuple[list[FoundVertebra], list[str], list[str]]:
    """The bodies kept (in line with the column, and none below S1: sacral segments and the coccyx are not named),
    their names upwards from S1, and the reasons to doubt them."""
    flags, s1 = [], None
    found = on_column(reading.bodies)
    if len(found) < len(reading.bodies):
        flags.append(f"{len(reading.bodies) - len(found)} outline(s) off the spinal column left out")
    if found and reading.s1_score >= S1_SCORE:
        nearest = int(np.argmin([np.linalg.norm(v.centre - reading.s1_at) for v in found]))
        height = float(np.mean(lateral.heights(found[nearest].corners)[0]))
        if np.linalg.norm(found[nearest].centre - reading.s1_at) <= max(height, 1.0):
            s1 = nearest
    if s1 is None:
        if found:
            flags.append("no sacrum found: names counted upwards from the lowest body found, taken as L5")
        bottom = "L5"
    else:
        bottom, found = "S1", found[: s1 + 1]
    start = SPINE_ORDER.index(bottom)
    found = found[-(start + 1) :]  # never above T1
    names = list(SPINE_ORDER[start - len(found) + 1 : start + 1])
    flags += gap_flags(found, names) + tall_space_flags(found, names)
    weak = [name for name, v in zip(names, found) if v.score < LOW_SCORE]
    if weak:
        flags.append(f"low detection score (below {LOW_SCORE}) for {', '.join(weak)}")
    return found, names, flags


def tall_space_flags(found: list[FoundVertebra], names: list[str]) -> list[str]:
    """A space between neighbouring bodies as tall as a body (more than ``TALL_SPACE_FACTOR`` of their mean middle
    height): no disc is, so a body was missed there. The step between centres alone can miss it where the bodies
    beside it are found short or a stray sits near."""
    return [
        f"space between {names[k]} and {names[k + 1]} {ratio:.1f} times their height, taller than any disc: "
        "a vertebra may be missing there and every name above it would be wrong"
        for k, ratio in enumerate(lateral.space_ratios([v.corners for v in found], names))
        if ratio > TALL_SPACE_FACTOR
    ]


def detect(
    image: SpineImage, progress: Progress = SILENT, gate: tuple[str, ...] = (), model: OnnxModel | None = None
) -> tuple[Segmentation, list[FoundVertebra], bool]:
    """The segmentation (outlines as instances, names, review reasons), the bodies top to bottom as named, and
    whether the patient faces right."""
    progress.stage("finding vertebrae")
    picture = image.sagittal_slices()[0]
    model = model or lateral_model()
    reading = read_film(picture, model)
    found, names, flags = names_and_flags(reading)
    semantic, labelling = xr_frontal.outlined(image, found, names, flags, model.version)
    withheld = [*gate, *flags, f"lateral radiographs: {NOT_VALIDATED}"]
    if not found:
        withheld.append("no vertebra found: is this a lateral spine radiograph?")
    if image.view_guessed:
        withheld.append("view not stated by the file: read as lateral by the networks; give --view to say")
    if image.modality_guessed:
        withheld.append(
            f"modality not stated by the {image.format or 'file'}: analysed as a radiograph, but no finding is stated "
            "until you confirm it is one (--modality XR)"
        )
    notes = [] if image.spacing_known else ["pixel spacing unknown: lengths are in pixels (give --spacing in mm)"]
    return Segmentation(image, semantic, labelling, (*withheld, *notes), tuple(withheld)), found, reading.faces_right


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")


def measured_corners(
    corners: np.ndarray, names: list[str], shape: tuple[int, int], faces_right: bool, scale: np.ndarray
) -> tuple[np.ndarray, list[str | None]]:
    """The corners (``(n, 4, 2)`` film pixels, top to bottom) as measured: the patient facing left, times ``scale``
    (mm per pixel, [x, y]); and per body why it measures nothing (its corners NaN, and so the discs beside it), or
    None. A body measures nothing where its corners outline none (:data:`CORNERS_OUT_OF_ORDER`) or one lies beyond
    the film of ``shape`` (:data:`lumbar.tasks.measurements.CUT_BY_EDGE`; S1 by its superior pair alone, its
    inferior pair being a definition)."""
    measured = (lateral.facing_left(corners, shape[1]) if faces_right else np.array(corners, np.float64)) * scale
    beyond = lateral.beyond_film(corners, shape)
    if names and names[-1] == "S1":
        beyond[-1] = lateral.beyond_film(corners[-1:, :2], shape)[0]
    in_order = lateral.corners_in_order(measured)
    reasons = [
        CUT_BY_EDGE if cut else None if ordered else CORNERS_OUT_OF_ORDER for cut, ordered in zip(beyond, in_order)
    ]
    measured[[reason is not None for reason in reasons]] = np.nan
    return measured, reasons


def build_findings(seg: Segmentation, found: list[FoundVertebra], faces_right: bool) -> Findings:
    """Per body its corners, heights, wedging and Genant grade; per disc its heights, angle and slip; lordosis."""
    image = seg.image
    names = [lv.name for lv in seg.levels.levels[::-1]]
    corners = np.array([v.corners for v in found]).reshape(-1, 4, 2)
    scale = np.array(image.sagittal_spacing_mm())[::-1] if image.spacing_known else np.ones(2)
    shape = image.sagittal_slices().shape[1:]
    measured, reasons = measured_corners(corners, names, shape, faces_right, scale)
    body_heights = lateral.heights(measured)
    tilts = lateral.superior_tilt_deg(measured)
    vertebrae = []
    for name, v, h, c, tilt, reason in zip(names, found, body_heights, measured, tilts, reasons):
        grade, _ = genant_grade(tuple(h)) if name != "S1" else (None, None)
        depth = float(np.linalg.norm(c[lateral.AS] - c[lateral.PS]))
        vertebrae.append(
            Vertebra(
                level=name,
                label=VERTEBRA_IDS[name],
                corners_px=tuple(tuple(map(float, p)) for p in v.corners),
                detection_score=round(v.score, 4),
                measurements=None
                if name == "S1"
                else VertebraMeasurements(
                    height_anterior_mm=float(h[0]),
                    height_middle_mm=float(h[1]),
                    height_posterior_mm=float(h[2]),
                    depth_mm=depth,
                    wedge_ratio=_ratio(h[0], h[2]),
                    biconcave_ratio=_ratio(h[1], max(h[0], h[2])),
                    genant_grade=grade,
                    genant_not_graded=reason,
                    upper_endplate_deg=float(tilt),
                ),
            )
        )
    align = lateral.alignment(names, measured)
    discs = []
    for k in range(len(names) - 1):
        upper, lower = measured[k], measured[k + 1]
        if f"{names[k]}/{names[k + 1]}" not in REPORTED_DISCS:  # above T9/T10 (a thoracic film) or not neighbours
            continue
        anterior, middle, posterior = lateral.disc_heights(upper, lower)
        bodies = [np.mean(body_heights[j]) for j in (k, k + 1) if names[j] != "S1"]
        slip, percent = lateral.slip(upper, lower)
        if not -MAX_PLAUSIBLE_RETRO_PERCENT <= percent <= MAX_PLAUSIBLE_SLIP_PERCENT:  # no spine puts bodies there
            slip, percent = float("nan"), float("nan")
        discs.append(
            Disc(
                level=f"{names[k]}/{names[k + 1]}",
                label=disc_label(names[k]),
                measurements=DiscMeasurements(
                    height_anterior_mm=anterior,
                    height_middle_mm=middle,
                    height_posterior_mm=posterior,
                    height_index=_ratio((anterior + middle + posterior) / 3, float(np.mean(bodies))),
                    canal_ap_mm=None,
                    slip_mm=slip,
                    slip_percent=percent,
                    meyerding_grade=meyerding_grade(
                        percent, slip if image.spacing_known else None, in_pixels=not image.spacing_known
                    ),
                    angle_deg=align.disc_angles_deg.get(names[k]),
                ),
            )
        )
    not_validated = dict.fromkeys(
        ("level_names", "vertebra_measurements", "disc_measurements", "slip", "lordosis"), NOT_VALIDATED
    )
    return Findings(
        lumbar_version=__version__,
        input=input_description(image),
        models={"radiograph_lateral": seg.semantic.model_version},
        view="lateral",
        units="mm" if image.spacing_known else "pixels",
        discs=tuple(discs),
        vertebrae=vertebrae,
        lordosis_deg=align.lordosis_deg,
        needs_review=[
            *seg.review,
            *(
                f"{name}: {CORNERS_OUT_OF_ORDER}"
                for name, reason in zip(names, reasons)
                if reason == CORNERS_OUT_OF_ORDER
            ),
            *align.review,
        ],
        summary=(),
        summary_withheld="; ".join(seg.gate),
        not_validated=not_validated,
    )


def overview(seg: Segmentation, findings: Findings) -> np.ndarray:
    """The radiograph with every body outlined and named."""
    by_name = [(v.level, np.array(v.corners_px)) for v in findings.vertebrae if v.corners_px]
    return radiograph_overlay(seg.image.sagittal_slices()[0], by_name, [])


def segment(
    image: SpineImage, progress: Progress = SILENT, gate: tuple[str, ...] = (), model: OnnxModel | None = None
) -> Segmentation:
    """Find and name the bodies; their outlines are the instance map. ``gate``: reasons that withhold the Summary."""
    return detect(image, progress, gate, model)[0]


def analyze_images(
    images: list[SpineImage],
    *,
    same_patient: bool = False,
    gates: list[tuple[str, ...]] | None = None,
    progress: Progress = SILENT,
) -> list[Result]:
    """Analyse lateral radiographs already read; each stands alone (``same_patient`` changes nothing here)."""
    results = []
    for image, gate in zip(images, gates or [()] * len(images)):
        seg, found, faces_right = detect(image, progress, gate, lateral_model())
        findings = build_findings(seg, found, faces_right)
        results.append(Result(seg, findings, Figures(overview(seg, findings))))
    return results


def analyze(image: SpineImage, *, gate: tuple[str, ...] = (), progress: Progress = SILENT) -> Result:
    """Analyse one lateral radiograph."""
    return analyze_images([image], gates=[gate], progress=progress)[0]
