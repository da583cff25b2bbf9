"""Gated Hungarian association and the pluggable costs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg2track_ros.engine import mask_ops
from seg2track_ros.engine.association import (
    COSTS,
    PairGeometry,
    associate,
    association_gate,
    mask_iou_cost,
    resolve_cost,
    seg2track_pp_cost,
)
from seg2track_ros.engine.config import TrackerConfig
from seg2track_ros.engine.tracker import Tracker
from seg2track_ros.engine.types import Detections

from scripted_segmenter import ScriptedSegmenter, box_mask

H, W = 48, 64
IMAGE = np.zeros((H, W, 3), np.uint8)


def detections(boxes, scores, classes=None) -> Detections:
    classes = classes or ["car"] * len(scores)
    return Detections(np.array(boxes, np.float32), np.array(scores, np.float32), tuple(classes))


def geometry(iou, distance=None, scores=None) -> PairGeometry:
    iou = np.asarray(iou, dtype=np.float64)
    n = iou.shape[1]
    return PairGeometry(
        iou=iou,
        centroid_distance=np.zeros_like(iou) if distance is None else np.asarray(distance),
        detection_scores=np.ones(n) if scores is None else np.asarray(scores),
        detection_boxes=np.zeros((n, 4)),
    )


def test_zero_overlap_pair_is_never_matched_even_when_it_is_the_only_option():
    iou = np.array([[0.0]])
    cost = mask_iou_cost(geometry(iou), TrackerConfig())
    assert np.isfinite(cost).all()  # the cost alone would allow the pair
    allowed = association_gate(iou, 0.0, ["car"], ["car"], match_across_classes=False)
    assert associate(cost, allowed) == []


def test_pairs_below_min_association_iou_are_forbidden():
    iou = np.array([[0.05, 0.3]])
    allowed = association_gate(iou, 0.1, ["car"], ["car", "car"], match_across_classes=False)
    assert allowed.tolist() == [[False, True]]
    # Even a cost that prefers the gated pair cannot match it.
    assert associate(np.array([[0.0, 5.0]]), allowed) == [(0, 1)]


def test_hungarian_picks_the_globally_better_assignment():
    # Greedy takes the cheapest pair (0, 0) = 0.1 first and must then pay (1, 1) = 0.9:
    # 1.0 in all. The optimum is (0, 1) + (1, 0) = 0.2 + 0.3 = 0.5.
    cost = np.array([[0.1, 0.2], [0.3, 0.9]])
    assert sorted(associate(cost, np.ones_like(cost, dtype=bool))) == [(0, 1), (1, 0)]


def test_a_perfect_pair_is_never_split_to_match_more():
    # Issue 11, defect 2: track 0's mask is detection 0's box (IoU 1.0); the other pairs
    # overlap at IoU 0.13 and 0.11 and (1, 1) is gated out. Matching (0, 1) and (1, 0)
    # would match two tracks instead of one, at the price of two wrong identities.
    iou = np.array([[1.0, 0.13], [0.11, 0.0]])
    cost = mask_iou_cost(geometry(iou), TrackerConfig())
    allowed = association_gate(iou, 0.1, ["car"] * 2, ["car"] * 2, match_across_classes=False)
    assert allowed.tolist() == [[True, True], [True, False]]
    assert associate(cost, allowed) == [(0, 0)]


def test_a_lone_allowed_pair_is_matched_whatever_its_cost():
    assert associate(np.array([[0.95]]), np.ones((1, 1), bool)) == [(0, 0)]
    assert associate(np.array([[-2.0]]), np.ones((1, 1), bool)) == [(0, 0)]
    # Two equally bad pairs that do not compete both match.
    cost = np.array([[0.9, 0.0], [0.0, 0.9]])
    allowed = np.eye(2, dtype=bool)
    assert sorted(associate(cost, allowed)) == [(0, 0), (1, 1)]


def test_two_pairs_win_only_when_they_cost_less_than_one_pair_and_no_match():
    # Breaking (0, 0) at cost c for (0, 1) + (1, 0) pays off only when their sum is below
    # c plus the cost of leaving track 1 and detection 1 unmatched.
    allowed = np.array([[True, True], [True, False]])
    cost = np.array([[0.1, 0.3], [0.3, 0.0]])
    assert sorted(associate(cost, allowed, no_match_cost=1.0)) == [(0, 1), (1, 0)]
    assert associate(cost, allowed, no_match_cost=0.3) == [(0, 0)]


def test_non_finite_costs_are_never_matched():
    assert associate(np.array([[np.nan, np.inf]]), np.ones((1, 2), bool)) == []
    # A non-finite entry does not disturb the finite ones.
    assert associate(np.array([[np.nan, 0.5]]), np.ones((1, 2), bool)) == [(0, 1)]


def test_containment_gate():
    # Detection 0: 17% of its box in the mask, 25% of the mask in the box: forbidden.
    # Detection 1: 38% of its box in the mask, but all of the mask in the box: allowed.
    # Detection 2: 45% of its box in the mask (car: 1 - 0.6 = 0.4 needed): allowed.
    iou = np.full((1, 3), 0.3)
    coverage = np.array([[0.17, 0.38, 0.45]])
    inside = np.array([[0.25, 1.0, 0.3]])
    gate = association_gate(
        iou, 0.1, ["car"], ["car"] * 3, False, containment=(coverage, inside, [0.4] * 3, 0.5)
    )
    assert gate.tolist() == [[False, True, True]]


def test_class_gate():
    iou = np.full((2, 2), 0.5)
    same = association_gate(iou, 0.1, ["car", "pedestrian"], ["pedestrian", "car"], False)
    assert same.tolist() == [[False, True], [True, False]]
    across = association_gate(iou, 0.1, ["car", "pedestrian"], ["pedestrian", "car"], True)
    assert across.all()


def test_empty_association():
    assert associate(np.zeros((0, 3)), np.zeros((0, 3), bool)) == []
    assert associate(np.zeros((2, 0)), np.zeros((2, 0), bool)) == []
    gate = association_gate(np.zeros((2, 0)), 0.1, ["car", "car"], [], False)
    assert gate.shape == (2, 0)


def test_seg2track_pp_cost_formula():
    config = TrackerConfig(iou_weight=1.0, centroid_weight=0.5, confidence_weight=0.5)
    geo = geometry([[0.6, 0.2]], distance=[[0.1, 1.0]], scores=[1.0, 0.5])
    cost = seg2track_pp_cost(geo, config)
    expected = [[(0.4 + 0.05) * 1.0, (0.8 + 0.5) * 1.25]]
    np.testing.assert_allclose(cost, expected)
    # With the centroid and confidence terms off it is Seg2Track-SAM2's 1 - IoU.
    plain = TrackerConfig(centroid_weight=0.0, confidence_weight=0.0)
    np.testing.assert_allclose(seg2track_pp_cost(geo, plain), mask_iou_cost(geo, plain))


def test_resolve_cost_by_name_or_callable():
    assert resolve_cost("mask_iou") is COSTS["mask_iou"]

    def custom(geo, config):
        return np.zeros_like(geo.iou)

    assert resolve_cost(custom) is custom
    with pytest.raises(ValueError, match="unknown association cost"):
        resolve_cost("nope")


# --- through the tracker ---------------------------------------------------------------


def test_tracker_does_not_match_a_detection_that_misses_the_mask():
    config = TrackerConfig(min_association_iou=0.0)  # only the IoU > 0 rule remains
    seg = ScriptedSegmenter()
    tracker = Tracker(config, seg)
    tracker.step(IMAGE, detections([[2, 2, 14, 20]], [0.9]))
    # Frame 1: the only detection lies far from the only track.
    result = tracker.step(IMAGE, detections([[40, 20, 60, 44]], [0.95]))
    first = next(t for t in result.tracks if t.track_id == 1)
    assert first.frames_since_detection == 1
    assert first.detection_score == pytest.approx(0.9)
    # The unmatched detection started a track of its own instead.
    assert [t.track_id for t in result.tracks] == [1, 2]


def test_tracker_matches_only_equal_classes_by_default():
    box = [10, 10, 30, 40]

    def run(config):
        tracker = Tracker(config, ScriptedSegmenter())
        tracker.step(IMAGE, detections([box], [0.9], ["car"]))
        return tracker.step(IMAGE, detections([box], [0.95], ["pedestrian"]))

    same_class = run(TrackerConfig())
    assert [t.frames_since_detection for t in same_class.tracks] == [1]
    across = run(TrackerConfig(match_across_classes=True))
    assert [t.frames_since_detection for t in across.tracks] == [0]
    assert [t.class_id for t in across.tracks] == ["car"]  # the track keeps its class


def test_tracker_uses_a_custom_cost_callable():
    seen = []

    def custom(geo, config):
        seen.append(geo.iou.shape)
        return 1.0 - geo.iou

    seg = ScriptedSegmenter()
    tracker = Tracker(TrackerConfig(), seg, cost=custom)
    tracker.step(IMAGE, detections([[2, 2, 14, 20]], [0.9]))
    result = tracker.step(IMAGE, detections([[2, 2, 14, 20], [40, 20, 60, 44]], [0.9, 0.9]))
    assert seen == [(1, 2)]  # not called on the first frame: no tracks yet
    assert [t.frames_since_detection for t in result.tracks] == [0, 0]
    assert box_mask(H, W, [2, 2, 14, 20]).sum() == result.tracks[0].mask.sum()


# --- the device geometry against a brute-force reference -------------------------------


def test_association_geometry_matches_brute_force(monkeypatch):
    rng = np.random.default_rng(0)
    masks = rng.random((4, H, W)) < 0.3
    masks[1] = False  # an empty mask
    masks[2] = box_mask(H, W, [5, 6, 30, 40])
    masks[3] = masks[2].copy()
    masks[3][:, 28:30] = False  # near-duplicate of mask 2
    boxes = np.array([[0.4, 2.6, 20.2, 30.0], [25, 5, 64, 48], [3, 3, 9, 9]], np.float32)
    pixel_boxes = np.floor(boxes + 0.5).astype(np.int64)
    scores = torch.tensor([0.9, 0.1, 0.5, 0.6])
    logits = torch.tensor([1.0, -2.0, 3.0, 4.0])
    # A tiny chunk forces several integral-image chunks.
    monkeypatch.setattr(mask_ops, "INTEGRAL_CHUNK_PIXELS", H * W * 3)
    geo = mask_ops.association_geometry(torch.from_numpy(masks), scores, logits, boxes, pixel_boxes)
    filled = np.stack([box_mask(H, W, b) for b in boxes])
    np.testing.assert_array_equal(filled.sum(axis=(1, 2)), [
        (b[2] - b[0]) * (b[3] - b[1]) for b in pixel_boxes
    ])  # fmt: skip
    inter = np.einsum("khw,nhw->kn", masks.astype(np.int64), filled.astype(np.int64))
    area = masks.sum(axis=(1, 2))
    union = area[:, None] + filled.sum(axis=(1, 2))[None, :] - inter
    np.testing.assert_allclose(geo.iou, inter / union, rtol=1e-6)
    np.testing.assert_allclose(geo.box_coverage, inter / filled.sum(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(geo.mask_in_box, inter / np.maximum(area, 1)[:, None], rtol=1e-6)
    np.testing.assert_allclose(geo.mask_scores, scores.numpy())
    np.testing.assert_allclose(geo.logits, logits.numpy())

    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    for k in (0, 2, 3):
        cx = (xs * masks[k]).sum() / area[k]
        cy = (ys * masks[k]).sum() / area[k]
        np.testing.assert_allclose(geo.centroids[k], [cx, cy], rtol=1e-5)
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        diagonal = np.linalg.norm(boxes[:, 2:] - boxes[:, :2], axis=1)
        expected = np.minimum(1, np.linalg.norm(centre - [cx, cy], axis=1) / diagonal)
        np.testing.assert_allclose(geo.centroid_distance[k], expected, rtol=1e-5)
    np.testing.assert_array_equal(geo.centroid_distance[1], 1.0)  # empty mask

    flat = masks.reshape(4, -1).astype(np.int64)
    pair_inter = flat @ flat.T
    pair_union = area[:, None] + area[None, :] - pair_inter
    expected_pairs = np.where(pair_union > 0, pair_inter / np.maximum(pair_union, 1), 0)
    np.testing.assert_allclose(geo.mask_iou, expected_pairs, rtol=1e-6)
    assert geo.mask_iou[2, 3] > 0.9

    union_mask = masks.any(axis=0)
    for n, box in enumerate(pixel_boxes):
        expected = (union_mask & filled[n]).sum() / filled[n].sum()
        assert geo.covered_fraction(box) == pytest.approx(expected)
    # Coverage counting box 0 as taken: union of the masks and box 0, inside box 1.
    boxed = np.zeros(geo.grid_covered.shape, bool)
    boxed[geo.grid_span(pixel_boxes[0])] = True
    expected = ((union_mask | filled[0]) & filled[1]).sum() / filled[1].sum()
    assert geo.covered_fraction(pixel_boxes[1], boxed) == pytest.approx(expected)


def test_association_geometry_without_tracks_or_detections():
    empty_masks = torch.zeros((0, H, W), dtype=torch.bool)
    none = torch.zeros(0)
    boxes = np.array([[1, 1, 10, 10]], np.float32)
    geo = mask_ops.association_geometry(empty_masks, none, none, boxes, boxes.astype(np.int64))
    assert geo.iou.shape == (0, 1)
    assert geo.covered_fraction(boxes[0].astype(np.int64)) == 0.0
    masks = torch.ones((2, H, W), dtype=torch.bool)
    geo = mask_ops.association_geometry(
        masks, torch.ones(2), torch.ones(2), np.zeros((0, 4), np.float32), np.zeros((0, 4), int)
    )
    assert geo.iou.shape == (2, 0) and geo.grid_covered.shape == (0, 0)
    np.testing.assert_allclose(geo.mask_iou, 1.0)
