"""Level names on a frontal radiograph from two anchors, T1 and L5, and the count between them.

The frontal network finds bodies but cannot tell which is which: a U-Net's view is a few bodies wide, and counting
17 of them down from the strongest peaks shifts every name where a cervical body outscores a faint L5. The level
network (``radiograph_levels``) reads a wide window around each candidate body (``LEVEL_WINDOW``: four of the
spine's steps each way, where the first ribs, the clavicles, the iliac crests and the sacrum lie) and says what the
candidate is: above T1, T1, a body between T1 and L5, L5, below L5, or no body at all (``LEVEL_CLASSES``).

:func:`align_levels` then names the candidates, top to bottom, as one chain: each is skipped (no body), above the
spine, one of T1 ... L5, or below it, the named ones in order with a penalty for every level passed over (a body the
frontal network missed). The best chain by the sum of the network's log-probabilities (each body class weighed by
the candidate's detection score, :func:`with_detection`) is a Viterbi path; a single mislabelled candidate cannot
shift the names, as a count from one end does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lumbar.labels import FRONTAL_LEVEL_CLASSES as LEVEL_CLASSES
from lumbar.labels import FRONTAL_LEVELS
from lumbar.preprocess import LEVEL_WINDOW
from lumbar.tasks.body_frames import body_angle, body_frames, spine_step, windows_both_ways
from lumbar.tasks.corners import FoundVertebra

ABOVE, TOP, BETWEEN, BOTTOM, BELOW, NONE = range(len(LEVEL_CLASSES))
MISSED_LOG_PROB = float(np.log(0.1))  # a level passed over in the chain: one body in ten is missed by the detector
SCORE_WEIGHT = 0.5  # the detection score's log added to a candidate's body classes (chosen on the validation films)

Network = Callable[[np.ndarray], np.ndarray]  # windows (n, 1, size, size) in, class logits (n, 6) out


def level_class(level: int, count: int = len(FRONTAL_LEVELS)) -> int:
    """The class of level index ``level`` (0 = T1 ... ``count - 1`` = L5; below 0 above the spine, past the end
    below it)."""
    if level < 0:
        return ABOVE
    if level >= count:
        return BELOW
    return TOP if level == 0 else BOTTOM if level == count - 1 else BETWEEN


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def align_levels(
    log_probs: np.ndarray, count: int = len(FRONTAL_LEVELS), missed: float = MISSED_LOG_PROB
) -> list[int | None]:
    """The level index (0 ... ``count - 1``) of each candidate, top to bottom, or None for a candidate left unnamed
    (no body, above or below the spine), from the candidates' class log-probabilities ``(n, 6)``.

    A chain reads, top to bottom: candidates above the spine, the named levels in increasing order, candidates
    below it, with candidates that are no body anywhere. Each level passed over between two named candidates, or
    between a candidate above the spine and the first named one, or between the last named one and a candidate below
    it, costs ``missed``; levels beyond the film's first or last named candidate cost nothing (a film may be cut).
    At least one candidate is named when there is any. Of equal chains the first found is kept."""
    scores = np.asarray(log_probs, np.float64).reshape(-1, len(LEVEL_CLASSES))
    n = len(scores)
    if n == 0:
        return []
    start, above, after = 0, 1, count + 2  # states; 2 + k: level k named last
    states = count + 3
    level_state = np.arange(count) + 2
    best = np.full(states, -np.inf)
    best[start] = 0.0
    back = np.zeros((n, states), int)  # the state before each candidate, per state after it
    for i, row in enumerate(scores):
        emit = np.array([row[level_class(k, count)] for k in range(count)])
        new = best + row[NONE]  # a candidate that is no body leaves the chain where it is
        back[i] = np.arange(states)
        options = [(start, above, row[ABOVE]), (above, above, row[ABOVE]), (after, after, row[BELOW])]
        options += [(j, after, row[BELOW] + missed * (count - 1 - (j - 2))) for j in level_state]
        for k, state in enumerate(level_state):
            options += [(start, state, emit[k]), (above, state, emit[k] + missed * k)]
            options += [(j, state, emit[k] + missed * (k - (j - 2) - 1)) for j in level_state[:k]]
        for prev, state, gain in options:
            if best[prev] + gain > new[state]:
                new[state], back[i, state] = best[prev] + gain, prev
        best = new
    ends = np.concatenate([level_state, [after]])
    state = int(ends[np.argmax(best[ends])])
    named: list[int | None] = [None] * n
    for i in range(n - 1, -1, -1):
        prev = int(back[i, state])
        if prev != state and state in level_state:
            named[i] = state - 2
        state = prev
    return named


def level_log_probs(film: np.ndarray, candidates: list[FoundVertebra], level_net: Network) -> np.ndarray:
    """Each candidate's class log-probabilities ``(n, 6)``: the level network reads its window on ``film`` (grey
    values in [0, 1]), centred on the candidate and turned by its tilt, scaled by the spine's step
    (:func:`candidate_step`), as it lies and flipped left to right; the two readings' log-probabilities are
    averaged."""
    n = len(candidates)
    if n == 0:
        return np.zeros((0, len(LEVEL_CLASSES)))
    centres = np.array([c.centre for c in candidates], np.float64)
    frames = body_frames(centres, [body_angle(c.corners) for c in candidates], LEVEL_WINDOW, candidate_step(candidates))
    logits = np.asarray(level_net(windows_both_ways(film, frames)), np.float64)
    return (log_softmax(logits[:n]) + log_softmax(logits[n:])) / 2


def with_detection(log_probs: np.ndarray, scores: np.ndarray, weight: float = SCORE_WEIGHT) -> np.ndarray:
    """The level network's log-probabilities with the frontal network's say added: ``weight`` times the log of each
    candidate's detection score on every class but "no body" (a faint peak is less likely a body). Chosen on the
    validation films with an earlier network (0.5: 748 bodies named right, none: 729, 1: 719); with the shipped one
    0.5 names 781, none 744, 1 787 and 2 578."""
    out = np.array(log_probs, np.float64, copy=True)
    out[:, :NONE] += weight * np.log(np.clip(np.asarray(scores, np.float64), 1e-3, 1.0))[:, None]
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
    film: np.ndarray, candidates: list[FoundVertebra], level_net: Network
) -> tuple[list[FoundVertebra], list[str]]:
    """The candidates named T1 ... L5 (top to bottom) and their names; the others (above or below the spine, or no
    body) left out. Fewer than two candidates give no spine's step to read a window by: nothing is named."""
    if not candidate_step(candidates) > 0:
        return [], []
    evidence = with_detection(level_log_probs(film, candidates, level_net), np.array([c.score for c in candidates]))
    named = align_levels(evidence)
    kept = [(c, FRONTAL_LEVELS[k]) for c, k in zip(candidates, named) if k is not None]
    return [c for c, _ in kept], [name for _, name in kept]
