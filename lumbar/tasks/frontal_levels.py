"""Level names on a frontal radiograph from two anchors, T1 and L5, and the count between them.

The frontal network finds bodies but cannot tell which is which: a U-Net's view is a few bodies wide, and counting
17 of them down from the strongest peaks shifts every name where a cervical body outscores a faint L5. The level
network (``radiograph_levels``) reads a wide window around each candidate body (``LEVEL_WINDOW``: four of the
spine's steps each way, where the first ribs, the clavicles, the iliac crests and the sacrum lie) and says what the
candidate is: above T1, T1, a body between T1 and L5, L5, below L5, or no body at all (``LEVEL_CLASSES``).

:func:`align_levels` then names the candidates, top to bottom, as one chain: each is skipped (no body), above the
spine, one of T1 ... L5, or below it, the named ones in order with a penalty for every level passed over (a body the
frontal network missed) and, given the spine's expected steps (:class:`Spacing`), every step between named bodies
that strays from the expected one. The best chain by the sum of the network's log-probabilities (each body class
weighed by the candidate's detection score, :func:`with_detection`) and these costs is found exactly by dynamic
programming; a single mislabelled candidate cannot shift the names, as a count from one end does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax

from lumbar.labels import FRONTAL_LEVEL_CLASSES as LEVEL_CLASSES
from lumbar.labels import FRONTAL_LEVELS
from lumbar.preprocess import LEVEL_WINDOW
from lumbar.tasks.body_frames import body_angle, body_frames, spine_step, windows_both_ways
from lumbar.tasks.corners import FoundVertebra

ABOVE, TOP, BETWEEN, BOTTOM, BELOW, NONE = range(len(LEVEL_CLASSES))
MISSED_LOG_PROB = float(np.log(0.1))  # a level passed over in the chain: one body in ten is missed by the detector
SCORE_WEIGHT = 0.5  # the detection score's log added to a candidate's body classes (chosen on the validation films)
SPACING_SIGMA = 0.35  # how far (log ratio) a step between named bodies may stray from the expected one (validation)

Network = Callable[[np.ndarray], np.ndarray]  # windows (n, 1, size, size) in, class logits (n, 6) out


def level_class(level: int, count: int = len(FRONTAL_LEVELS)) -> int:
    """The class of level index ``level`` (0 = T1 ... ``count - 1`` = L5; below 0 above the spine, past the end
    below it)."""
    if level < 0:
        return ABOVE
    if level >= count:
        return BELOW
    return TOP if level == 0 else BOTTOM if level == count - 1 else BETWEEN


@dataclass(frozen=True)
class Spacing:
    """Where the named bodies should lie: the candidates' centres ``(n, 2)`` and the expected distance between each
    level and the next (``count - 1`` film pixels). A step between two named candidates costs the squared log of its
    ratio to the expected one over ``2 sigma^2`` (a stray peak between two bodies makes two half steps)."""

    centres: np.ndarray
    steps: np.ndarray
    sigma: float = SPACING_SIGMA


def align_levels(
    log_probs: np.ndarray,
    count: int = len(FRONTAL_LEVELS),
    missed: float = MISSED_LOG_PROB,
    spacing: Spacing | None = None,
) -> list[int | None]:
    """The level index (0 ... ``count - 1``) of each candidate, top to bottom, or None for a candidate left unnamed
    (no body, above or below the spine), from the candidates' class log-probabilities ``(n, 6)``.

    A chain reads, top to bottom: candidates above the spine, the named levels in increasing order, candidates
    below it, with candidates that are no body anywhere. Each level passed over between two named candidates, or
    between a candidate above the spine and the first named one, or between the last named one and a candidate below
    it, costs ``missed``; levels beyond the film's first or last named candidate cost nothing (a film may be cut).
    With ``spacing``, each step between consecutive named candidates costs its misfit too. At least one candidate is
    named when there is any. Of equal chains the first found is kept.

    Solved exactly by dynamic programming over (candidate, level): the best chain whose last named candidate is ``i``
    at level ``k`` comes from the best whose last is an earlier ``j`` at a lower level (or from none)."""
    scores = np.asarray(log_probs, np.float64).reshape(-1, len(LEVEL_CLASSES))
    n = len(scores)
    if n == 0:
        return []
    levels = np.arange(count)
    emit = scores[:, [level_class(k, count) for k in levels]]  # (n, count)
    none = np.concatenate([[0.0], np.cumsum(scores[:, NONE])])  # none[i]: candidates before i all no body
    above_or_none = np.concatenate([[0.0], np.cumsum(np.maximum(scores[:, ABOVE], scores[:, NONE]))])
    below_or_none = np.concatenate([[0.0], np.cumsum(np.maximum(scores[:, BELOW], scores[:, NONE]))])
    passed = missed * np.maximum(levels[None, :] - levels[:, None] - 1, 0)  # (from level, to level)
    later = levels[None, :] > levels[:, None]
    if spacing is not None:
        centres = np.asarray(spacing.centres, np.float64)
        along = np.concatenate([[0.0], np.cumsum(spacing.steps)])
        expected = np.maximum(along[None, :] - along[:, None], 1e-9)  # (from level, to level)
    best = np.full((n, count), -np.inf)
    back = np.full((n, count, 2), -1)
    for i in range(n):
        # the chain starts at i: the candidates before it no body, or some above the spine and the levels above k
        # passed over
        with_above = above_or_none[i] + missed * levels if above_or_none[i] > none[i] else np.full(count, -np.inf)
        best[i] = np.maximum(none[i], with_above)
        if i:
            gain = best[:i, :, None] + passed[None] + (none[i] - none[1 : i + 1])[:, None, None]  # (j, from, to)
            if spacing is not None:
                distance = np.linalg.norm(centres[:i] - centres[i], axis=1)
                ratio = np.maximum(distance, 1e-9)[:, None, None] / expected[None]
                gain = gain - np.log(ratio) ** 2 / (2 * spacing.sigma**2)
            gain = np.where(later[None], gain, -np.inf).reshape(-1, count)
            source = np.argmax(gain, axis=0)
            improves = gain[source, levels] > best[i]
            best[i] = np.where(improves, gain[source, levels], best[i])
            back[i][improves] = np.stack(np.divmod(source[improves], count), axis=1)
        best[i] += emit[i]
    # the chain ends at i: the candidates after it no body, or some below the spine and the levels below k passed over
    rest_none = none[n] - none[1:]
    rest_below = below_or_none[n] - below_or_none[1:]
    with_below = np.where(
        (rest_below > rest_none)[:, None], rest_below[:, None] + missed * (count - 1 - levels)[None], -np.inf
    )
    total = best + np.maximum(rest_none[:, None], with_below)
    i, k = np.unravel_index(int(np.argmax(total)), total.shape)
    named: list[int | None] = [None] * n
    while i >= 0:
        named[int(i)] = int(k)
        i, k = back[i, k]
    return named


def level_log_probs(
    film: np.ndarray, candidates: list[FoundVertebra], level_net: Network, step: float | None = None
) -> np.ndarray:
    """Each candidate's class log-probabilities ``(n, 6)``: the level network reads its window on ``film`` (grey
    values in [0, 1]), centred on the candidate and turned by its tilt, scaled by the spine's ``step`` (else
    :func:`candidate_step`), as it lies and flipped left to right; the two readings' log-probabilities are
    averaged."""
    n = len(candidates)
    if n == 0:
        return np.zeros((0, len(LEVEL_CLASSES)))
    centres = np.array([c.centre for c in candidates], np.float64)
    step = candidate_step(candidates) if step is None else step
    frames = body_frames(centres, [body_angle(c.corners) for c in candidates], LEVEL_WINDOW, step)
    logits = np.asarray(level_net(windows_both_ways(film, frames)), np.float64)
    return (log_softmax(logits[:n], axis=1) + log_softmax(logits[n:], axis=1)) / 2


def with_detection(log_probs: np.ndarray, scores: np.ndarray, weight: float = SCORE_WEIGHT) -> np.ndarray:
    """The level network's log-probabilities with the frontal network's say added: ``weight`` times the log of each
    candidate's detection score on every class but "no body" (a faint peak is less likely a body). The weight and
    the step term's sigma were chosen on the validation films: ``python bench/radiograph_levels.py`` names them
    with each."""
    out = np.array(log_probs, np.float64, copy=True)
    bodies = np.arange(len(LEVEL_CLASSES)) != NONE
    out[:, bodies] += weight * np.log(np.clip(np.asarray(scores, np.float64), 1e-3, 1.0))[:, None]
    return out


def candidate_step(candidates: list[FoundVertebra], count: int = len(FRONTAL_LEVELS)) -> float:
    """The spine's step the windows are scaled by: the median distance between neighbouring bodies among the
    ``count`` strongest candidates, top to bottom (0 with fewer than two). The weaker peaks are left out: on a film
    the frontal network never saw, stray peaks from ribs and pelvis fall between the bodies and would shorten it."""
    strongest = sorted(candidates, key=lambda c: -c.score)[:count]
    if len(strongest) < 2:
        return 0.0
    return spine_step(np.array([c.centre for c in sorted(strongest, key=lambda c: c.centre[1])]))


def name_candidates(
    film: np.ndarray,
    candidates: list[FoundVertebra],
    level_net: Network,
    relative_steps: list[float] | None = None,
) -> tuple[list[FoundVertebra], list[str]]:
    """The candidates named T1 ... L5 (top to bottom) and their names; the others (above or below the spine, or no
    body) left out. ``relative_steps``: each level's step to the next over a spine's median step (the training
    films'; the level network's record holds them): the chain's steps are held to them times the candidates' step
    (:class:`Spacing`). Fewer than two candidates give no spine's step to read a window by: nothing is named."""
    step = candidate_step(candidates)
    if not step > 0:
        return [], []
    scores = np.array([c.score for c in candidates])
    evidence = with_detection(level_log_probs(film, candidates, level_net, step), scores)
    spacing = None
    if relative_steps is not None:
        spacing = Spacing(np.array([c.centre for c in candidates]), np.asarray(relative_steps, np.float64) * step)
    named = align_levels(evidence, spacing=spacing)
    kept = [(c, FRONTAL_LEVELS[k]) for c, k in zip(candidates, named) if k is not None]
    return [c for c, _ in kept], [name for _, name in kept]
