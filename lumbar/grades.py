"""The per-disc grades the project predicts and where each sits in a grading network's output.

Kept apart from the networks so that inference (which reads these names) never imports torch or MONAI.
"""

from __future__ import annotations

ORDINAL_GRADES = {"pfirrmann": (1, 2, 3, 4, 5), "modic": (0, 1, 2, 3)}
BINARY_GRADES = ("herniation", "bulging", "narrowing", "endplate_upper", "endplate_lower", "spondylolisthesis")


def grading_outputs() -> dict[str, slice]:
    """Where each grade's logits sit in the network's output vector: one per class, one per binary grade."""
    out, start = {}, 0
    for name, classes in ORDINAL_GRADES.items():
        out[name] = slice(start, start + len(classes))
        start += len(classes)
    for name in BINARY_GRADES:
        out[name] = slice(start, start + 1)
        start += 1
    return out


def is_abnormal(grade: str, value: int) -> bool:
    """Pfirrmann 4-5 (dark, collapsing disc), Modic 1-3, and any binary finding present."""
    return value >= 4 if grade == "pfirrmann" else value >= 1


def called_below_even_odds(grade: str, value: int, probability: float) -> bool:
    """A binary finding called present although its probability is below 50%: its threshold, chosen for
    balanced accuracy, lies lower. The report marks such a call "1?"."""
    return grade in BINARY_GRADES and value == 1 and probability < 0.5


def n_grading_outputs() -> int:
    return sum(len(c) for c in ORDINAL_GRADES.values()) + len(BINARY_GRADES)
