"""Association of tracks with detections: pluggable costs and a gated Hungarian step.

A cost function takes the host geometry of one frame (``PairGeometry``) and the tracker
config and returns a (tracks x detections) cost matrix; costs are chosen by name from
``COSTS`` or passed as any callable with that signature (norfair-style). Whatever the
cost, ``associate`` never matches a pair whose mask-vs-box IoU is zero or below
``min_association_iou``, nor a pair the caller forbids (different classes). The gate
only decides which pairs may match; among those the solver minimises the total cost,
where leaving a track and a detection unmatched costs as much as the worst allowed pair.
It never trades a good pair for two poor ones just to match more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from .config import TrackerConfig


@dataclass(frozen=True)
class PairGeometry:
    """What a cost function may use, for K tracks and N detections (host arrays)."""

    iou: np.ndarray  # (K, N) IoU(track mask, filled detection box)
    centroid_distance: np.ndarray  # (K, N) mask centroid to box centre / box diagonal, <= 1
    detection_scores: np.ndarray  # (N,)
    detection_boxes: np.ndarray  # (N, 4) xyxy, clipped to the image


CostFunction = Callable[[PairGeometry, TrackerConfig], np.ndarray]


def seg2track_pp_cost(geometry: PairGeometry, config: TrackerConfig) -> np.ndarray:
    """Seg2Track++: (w_iou (1 - IoU) + w_c d) (1 + w_s (1 - s)).

    Mask IoU with the filled box, plus the mask-centroid distance, scaled up for
    low-confidence detections so a confident detection wins a contested track.
    """
    geometric = (
        config.iou_weight * (1.0 - geometry.iou)
        + config.centroid_weight * geometry.centroid_distance
    )
    modulation = 1.0 + config.confidence_weight * (1.0 - geometry.detection_scores)
    return geometric * modulation[None, :]


def mask_iou_cost(geometry: PairGeometry, config: TrackerConfig) -> np.ndarray:
    """Seg2Track-SAM2's plain cost: 1 - IoU(track mask, filled detection box)."""
    return 1.0 - geometry.iou


COSTS: dict[str, CostFunction] = {
    "seg2track_pp": seg2track_pp_cost,
    "mask_iou": mask_iou_cost,
}


def resolve_cost(cost: str | CostFunction) -> CostFunction:
    """A cost function from its name in COSTS, or the callable itself."""
    if callable(cost):
        return cost
    try:
        return COSTS[cost]
    except KeyError:
        raise ValueError(
            f"unknown association cost {cost!r} (known: {', '.join(sorted(COSTS))})"
        ) from None


def associate(
    cost: np.ndarray, allowed: np.ndarray, no_match_cost: float | None = None
) -> list[tuple[int, int]]:
    """Minimum-cost matching of rows to columns over the allowed pairs only: the matched
    (row, column) pairs.

    ``allowed`` (K, N) bool marks pairs that may match. Forbidden and non-finite entries
    never appear in the result, even when a pair is the only candidate.

    Leaving a row and a column unmatched costs ``no_match_cost`` (half for each), so the
    solver trades one pair for two others only when that lowers the summed cost, never
    merely to match more. The default is just above the highest allowed cost: every
    allowed pair is better than no match, and the gate alone decides which pairs are eligible.
    (A forbidden pair's cost used to exceed the sum of all allowed costs, which made the
    solver maximise the number of matches first: an IoU 1.0 pair was split into two
    pairs at IoU 0.13 and 0.11.)
    """
    num_rows, num_cols = cost.shape
    allowed = allowed & np.isfinite(cost)
    if not allowed.any():
        return []
    if no_match_cost is None:
        # Just above the worst allowed pair, so that matching a lone allowed pair is
        # never a tie with leaving it unmatched.
        worst = float(cost[allowed].max())
        no_match_cost = worst + 1e-6 * max(1.0, abs(worst))
    # Rows 0..K-1 are the tracks, columns 0..N-1 the detections; column N + i is "track i
    # unmatched" and row K + j "detection j unmatched", each at half the no-match cost;
    # the dummy rows and columns pair up with each other for free. A forbidden pair
    # costs exactly as much as leaving both unmatched, and is dropped if chosen.
    half = 0.5 * no_match_cost
    dummy_rows = np.full((num_cols, num_cols), np.inf)
    np.fill_diagonal(dummy_rows, half)
    dummy_cols = np.full((num_rows, num_rows), np.inf)
    np.fill_diagonal(dummy_cols, half)
    augmented = np.block(
        [
            [np.where(allowed, cost, no_match_cost), dummy_cols],
            [dummy_rows, np.zeros((num_cols, num_rows))],
        ]
    )
    rows, cols = linear_sum_assignment(augmented)
    return [
        (int(r), int(c))
        for r, c in zip(rows, cols, strict=True)
        if r < num_rows and c < num_cols and allowed[r, c]
    ]


def association_gate(
    iou: np.ndarray,
    min_iou: float,
    track_classes: list[str],
    detection_classes: list[str],
    match_across_classes: bool,
    containment: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None,
) -> np.ndarray:
    """Pairs that may match: IoU above zero and at least min_iou and (by default) equal
    class ids.

    ``containment`` = (box_coverage (K, N), mask_in_box (K, N), min_box_coverage (N,),
    min_mask_in_box) further requires that at least min_box_coverage[n] of detection n's
    box lies in the track's mask, or at least min_mask_in_box of the track's mask lies in
    the box.
    """
    allowed = (iou > 0.0) & (iou >= min_iou)
    if not match_across_classes:
        same = (
            np.asarray(track_classes, dtype=object)[:, None]
            == np.asarray(detection_classes, dtype=object)[None, :]
        )
        allowed &= same.reshape(iou.shape)
    if containment is not None:
        box_coverage, mask_in_box, min_box_coverage, min_mask_in_box = containment
        box_inside = box_coverage >= np.asarray(min_box_coverage, dtype=np.float64)[None, :]
        allowed &= box_inside | (mask_in_box >= min_mask_in_box)
    return allowed
