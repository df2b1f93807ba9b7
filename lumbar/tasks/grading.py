"""Per-disc grades from straightened disc crops: calibrated probabilities, decisions and evidence maps.

The network gives one logit per class (Pfirrmann 1-5, Modic 0-3) and one per binary grade. Each grade
has its own temperature (Guo et al., ICML 2017) fitted on validation patients, and each binary grade a
decision threshold chosen there for balanced accuracy, never on test patients. Evidence maps come from
occlusion (Zeiler & Fergus, ECCV 2014): how much the predicted class's probability drops when a patch of
the crop is hidden. A disc seen in several series of one patient (T1 and T2) is graded from the mean of
its calibrated probabilities in each.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt

from lumbar.grades import BINARY_GRADES, ORDINAL_GRADES, grading_outputs
from lumbar.labels import CANAL_LABEL
from lumbar.preprocess import normalize_intensity


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def calibrated_probabilities(logits: np.ndarray, temperatures: dict[str, float]) -> dict[str, np.ndarray]:
    """Per grade: class probabilities ``(N, C)`` for ordinal grades, positive probability ``(N,)`` for binary ones."""
    out = {}
    for name, where in grading_outputs().items():
        scaled = logits[:, where] / temperatures.get(name, 1.0)
        out[name] = _softmax(scaled) if name in ORDINAL_GRADES else 1 / (1 + np.exp(-scaled[:, 0]))
    return out


def decide(probabilities: dict[str, np.ndarray], thresholds: dict[str, float]) -> dict[str, np.ndarray]:
    """Grade values: the most probable class, or positive above the grade's threshold."""
    out = {}
    for name, p in probabilities.items():
        if name in ORDINAL_GRADES:
            out[name] = np.asarray(ORDINAL_GRADES[name])[p.argmax(1)]
        else:
            out[name] = (p >= thresholds.get(name, 0.5)).astype(int)
    return out


def prepare_crops(crops: list[np.ndarray]) -> np.ndarray:
    """Crops as the network's batch ``(N, 1, H, W)``, each scaled to [0, 1]."""
    return np.stack([normalize_intensity(c) for c in crops])[:, None].astype(np.float32)


def disc_probabilities(crops: list[np.ndarray], model) -> list[dict[str, np.ndarray]]:
    """Calibrated probabilities of every disc crop of one study, each read beside the study's other discs
    (the network's context): per grade, class probabilities (ordinal) or the positive probability (binary)."""
    if not crops:
        return []
    batch = prepare_crops(crops)
    probs = calibrated_probabilities(model(batch, context=batch), model.meta.get("temperatures", {}))
    return [{name: p[i] for name, p in probs.items()} for i in range(len(crops))]


def fuse_same_disc(probabilities: dict[str, np.ndarray], discs: list[str]) -> dict[str, np.ndarray]:
    """Rows ``(N, ...)`` that name the same disc (``discs[i]``, e.g. "patient L4/L5": its T1, T2, ... views)
    all get their mean probabilities; a disc seen once keeps its own."""
    keys, inverse = np.unique(np.asarray(discs), return_inverse=True)
    counts = np.bincount(inverse, minlength=len(keys)).astype(float)
    fused = {}
    for name, p in probabilities.items():
        p = np.asarray(p, float)
        sums = np.zeros((len(keys), *p.shape[1:]))
        np.add.at(sums, inverse, p)
        fused[name] = (sums / counts.reshape(-1, *([1] * (p.ndim - 1))))[inverse]
    return fused


def per_value(name: str, p: np.ndarray) -> dict[str, float]:
    """A grade's probabilities by value name: each class of Pfirrmann and Modic, "0" and "1" of a binary grade."""
    if name in ORDINAL_GRADES:
        return {str(c): float(v) for c, v in zip(ORDINAL_GRADES[name], np.asarray(p))}
    p1 = float(p)
    return {"0": 1 - p1, "1": p1}


def grades_from(
    probabilities: dict[str, np.ndarray],
    thresholds: dict[str, float],
    high_specificity: dict[str, tuple[float, float]] | None = None,
    views: dict[str, dict[str, np.ndarray]] | None = None,
) -> dict[str, dict]:
    """One disc's grades: ``{"value", "probability"}`` per grade, ``"probabilities"`` for Pfirrmann and Modic,
    and for binary grades the decision ``"threshold"`` (balanced accuracy) and, where ``high_specificity`` gives
    the grade's (threshold, specificity) point, the value at that threshold too.

    ``views``: where ``probabilities`` is the mean of several series' (a patient's T1 and T2), each series' own, by
    its name. Each grade then lists them (``"per_series"``), and the high-specificity value is 1 only where every
    series reaches the threshold: that point was chosen and measured on series graded alone, and a disc called only
    where each of its series calls it is called no more often than by any one of them (a mean can reach a threshold
    that one series alone does not, at a false-positive rate nobody measured)."""
    values = decide({name: np.asarray(p)[None] for name, p in probabilities.items()}, thresholds)
    several = views if views and len(views) > 1 else {}
    grades = {}
    for name in (*ORDINAL_GRADES, *BINARY_GRADES):
        value = int(values[name][0])
        if name in ORDINAL_GRADES:
            classes = ORDINAL_GRADES[name]
            p = probabilities[name]
            grades[name] = {
                "value": value,
                "probability": float(p[classes.index(value)]),
                "probabilities": per_value(name, p),
            }
        else:
            p1 = float(probabilities[name])
            grades[name] = {
                "value": value,
                "probability": p1 if value else 1 - p1,
                "threshold": float(thresholds.get(name, 0.5)),
            }
            if high_specificity and name in high_specificity:
                threshold, specificity = high_specificity[name]
                least = min([p1, *(float(view[name]) for view in several.values())])
                grades[name].update(
                    threshold_high_specificity=threshold,
                    specificity_high=specificity,
                    value_high_specificity=int(least >= threshold),
                )
        if several:
            grades[name]["per_series"] = {source: per_value(name, view[name]) for source, view in several.items()}
    return grades


def grade_crops(crops: list[np.ndarray], model) -> list[dict[str, dict]]:
    """Grades of the disc crops of one study (see :func:`disc_probabilities` and :func:`grades_from`)."""
    return [grades_from(p, model.meta.get("thresholds", {})) for p in disc_probabilities(crops, model)]


def occlusion_maps(
    crop: np.ndarray,
    model,
    decisions: dict[str, int],
    study: list[np.ndarray] | None = None,
    patch: int = 12,
    stride: int = 8,
) -> dict[str, np.ndarray]:
    """Evidence for each ``grade = value`` in ``decisions``: the drop in that value's probability when each
    patch of the crop is hidden, scaled to [0, 1]. One batch of occluded crops serves every grade; the
    study's discs (``study``, default the crop alone) stay the context, unoccluded."""
    image = prepare_crops([crop])[0, 0]
    h, w = image.shape
    starts = [sorted({*range(0, n - patch + 1, stride), n - patch}) for n in (h, w)]  # the far edges covered too
    boxes = [(r, c) for r in starts[0] for c in starts[1]]
    batch = np.repeat(image[None, None], len(boxes) + 1, axis=0)
    for k, (r, c) in enumerate(boxes, start=1):
        batch[k, 0, r : r + patch, c : c + patch] = image.mean()
    context = prepare_crops(study) if study else batch[:1]
    probs = calibrated_probabilities(model(batch, context=context), model.meta.get("temperatures", {}))
    count = np.zeros((h, w))
    for r, c in boxes:
        count[r : r + patch, c : c + patch] += 1
    maps = {}
    for grade, value in decisions.items():
        p = (
            probs[grade][:, ORDINAL_GRADES[grade].index(value)]
            if grade in ORDINAL_GRADES
            else (probs[grade] if value else 1 - probs[grade])
        )
        drop = np.clip(p[0] - p[1:], 0, None)
        heat = np.zeros((h, w))
        for d, (r, c) in zip(drop, boxes):
            heat[r : r + patch, c : c + patch] += d
        heat = heat / np.maximum(count, 1)
        maps[grade] = heat / heat.max() if heat.max() > 0 else heat
    return maps


EVIDENCE_MARGIN_MM = 2.0  # a disc's outline as segmented, widened by this much: a bulge's edge lies just outside it


def crop_regions(
    labels: np.ndarray,
    disc_label: int,
    vertebra_labels: set[int],
    mm_per_pixel: float,
    margin_mm: float = EVIDENCE_MARGIN_MM,
) -> dict[str, np.ndarray]:
    """A disc crop split into the regions its evidence is judged by (``labels``: the instance under each pixel),
    each pixel in exactly one: the disc (within ``margin_mm`` of its outline), the vertebrae beside it, the canal,
    and elsewhere (soft tissue, the picture's edge)."""
    disc = labels == disc_label
    if disc.any():
        disc = distance_transform_edt(~disc) * mm_per_pixel <= margin_mm
    vertebrae = np.isin(labels, list(vertebra_labels)) & ~disc
    canal = (labels == CANAL_LABEL) & ~disc & ~vertebrae
    return {"disc": disc, "vertebrae": vertebrae, "canal": canal, "elsewhere": ~(disc | vertebrae | canal)}


def evidence_share(heat: np.ndarray, regions: dict[str, np.ndarray]) -> dict[str, float]:
    """The share of an evidence map's mass in each region (:func:`crop_regions`); NaN for a map with no mass."""
    total = float(heat.sum())
    return {name: float(heat[mask].sum()) / total if total > 0 else float("nan") for name, mask in regions.items()}


def hottest_region(heat: np.ndarray, regions: dict[str, np.ndarray]) -> str:
    """The region that holds the map's hottest pixel; "none" for a map with no mass."""
    if heat.max() <= 0:
        return "none"
    peak = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return next(name for name, mask in regions.items() if mask[peak])
