"""Association of tracks with detections: pluggable costs and a gated Hungarian step.

A cost function takes the host geometry of one frame (``PairGeometry``) and the tracker
config and returns a (tracks x detections) cost matrix; costs are chosen by name from
``COSTS`` or passed as any callable with that signature (norfair-style). Whatever the
cost, ``associate`` never matches a pair whose mask-vs-box IoU is zero or below
``min_association_iou``, nor a pair the caller forbids (different classes): forbidden
pairs get a large constant so the solver first maximises the number of allowed matches,
and any forbidden pair it still returns is dropped.
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
    mask_boxes: np.ndarray  # (K, 4) tight xyxy of the track masks (zeros when empty)


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


@dataclass(frozen=True)
class Matches:
    """Matched (track row, detection column) pairs and the rows/columns left over."""

    pairs: list[tuple[int, int]]
    unmatched_tracks: list[int]
    unmatched_detections: list[int]


def associate(cost: np.ndarray, allowed: np.ndarray) -> Matches:
    """Minimum-cost matching of rows to columns over the allowed pairs only.

    ``allowed`` (K, N) bool marks pairs that may match. Forbidden and non-finite entries
    never appear in the result, even when a pair is the only candidate.
    """
    num_tracks, num_detections = cost.shape
    allowed = allowed & np.isfinite(cost)
    pairs: list[tuple[int, int]] = []
    if allowed.any():
        # Larger than the sum of all allowed costs: one more allowed match always beats
        # any change in the cost of the others.
        forbidden_cost = 1.0 + 2.0 * float(np.abs(cost[allowed]).sum())
        padded = np.where(allowed, cost, forbidden_cost)
        rows, cols = linear_sum_assignment(padded)
        pairs = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if allowed[r, c]]
    matched_rows = {r for r, _ in pairs}
    matched_cols = {c for _, c in pairs}
    return Matches(
        pairs=pairs,
        unmatched_tracks=[r for r in range(num_tracks) if r not in matched_rows],
        unmatched_detections=[c for c in range(num_detections) if c not in matched_cols],
    )


def association_gate(
    iou: np.ndarray,
    min_iou: float,
    track_classes: list[str],
    detection_classes: list[str],
    match_across_classes: bool,
) -> np.ndarray:
    """Pairs that may match: IoU above zero and at least min_iou, and (by default) equal
    class ids."""
    allowed = (iou > 0.0) & (iou >= min_iou)
    if not match_across_classes:
        same = (
            np.asarray(track_classes, dtype=object)[:, None]
            == np.asarray(detection_classes, dtype=object)[None, :]
        )
        allowed &= same.reshape(iou.shape)
    return allowed
