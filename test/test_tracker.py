"""Tracker.step over the scripted segmenter: the per-frame Seg2Track logic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg2track_ros.engine import mask_ops
from seg2track_ros.engine.config import ClassThresholds, TrackerConfig
from seg2track_ros.engine.tracker import Tracker, _occlusion_victims
from seg2track_ros.engine.types import Detections, InvalidInputError, TrackState

from scripted_segmenter import ScriptedSegmenter, box_mask

H, W = 48, 64
IMAGE = np.zeros((H, W, 3), np.uint8)
LEFT = [2, 4, 18, 40]
RIGHT = [40, 4, 60, 40]


def dets(boxes, scores, classes=None, masks=None) -> Detections:
    classes = classes or ["car"] * len(scores)
    return Detections(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(scores, np.float32),
        tuple(classes),
        masks,
    )


def mask(box) -> np.ndarray:
    return box_mask(H, W, box)


def make(script=None, prompt_script=None, **changes) -> tuple[Tracker, ScriptedSegmenter]:
    seg = ScriptedSegmenter(script, prompt_script)
    return Tracker(TrackerConfig(**changes), seg), seg


# --- new tracks ------------------------------------------------------------------------


def test_duplicate_detections_of_one_object_start_one_track():
    tracker, seg = make()
    result = tracker.step(IMAGE, dets([[10, 10, 30, 40], [11, 10, 31, 41]], [0.9, 0.8]))
    assert [t.track_id for t in result.tracks] == [1]
    ids, boxes, _ = seg.named("prompt")[0]
    assert ids == [1]
    np.testing.assert_allclose(boxes, [[10, 10, 30, 40]])  # the higher-scoring one


def test_new_tracks_are_output_on_their_first_frame_with_the_detection_class():
    tracker, seg = make()
    result = tracker.step(IMAGE, dets([LEFT, RIGHT], [0.7, 0.9], ["pedestrian", "car"]))
    assert tracker.num_tracks == 2
    by_id = {t.track_id: t for t in result.tracks}
    # Best score first: the car gets id 1.
    assert by_id[1].class_id == "car" and by_id[2].class_id == "pedestrian"
    np.testing.assert_array_equal(by_id[1].mask, mask(RIGHT))
    assert by_id[1].bbox == tuple(float(v) for v in RIGHT)
    for track in result.tracks:
        assert track.age == 0
        assert track.frames_since_detection == 0
        assert track.mask_score == pytest.approx(0.9)
    assert by_id[2].detection_score == pytest.approx(0.7)
    # All new tracks were prompted in one call.
    assert len(seg.named("prompt")) == 1


def test_per_class_addition_thresholds():
    # Detection B overlaps the (accepted, same-frame) box of A over 30% of its own area:
    # 70% uncovered starts a car (0.6) but not a pedestrian (0.85).
    a = [0, 0, 20, 40]
    b = [14, 0, 34, 40]
    for cls, expected in (("car", 2), ("pedestrian", 1)):
        tracker, _ = make()
        result = tracker.step(IMAGE, dets([a, b], [0.95, 0.9], ["car", cls]))
        assert len(result.tracks) == expected, cls


def test_existing_masks_count_as_covered():
    tracker, _ = make()
    tracker.step(IMAGE, dets([LEFT], [0.9], ["car"]))
    # A pedestrian detection (cannot match the car) on the car's mask starts nothing.
    result = tracker.step(IMAGE, dets([LEFT], [0.95], ["pedestrian"]))
    assert [t.track_id for t in result.tracks] == [1]


def test_detections_below_their_class_threshold_are_ignored():
    classes = {
        "car": ClassThresholds(detection_threshold=0.5),
        "pedestrian": ClassThresholds(detection_threshold=0.7, addition_threshold=0.85),
    }
    tracker, seg = make(classes=classes)
    result = tracker.step(
        IMAGE, dets([LEFT, RIGHT, [22, 4, 36, 40]], [0.6, 0.6, 0.45], ["car", "pedestrian", "car"])
    )
    assert [(t.class_id, t.bbox) for t in result.tracks] == [("car", tuple(map(float, LEFT)))]
    assert seg.named("prompt")[0][0] == [1]


def test_boxes_are_clipped_and_boxes_outside_the_image_dropped():
    tracker, seg = make()
    result = tracker.step(IMAGE, dets([[-10, -5, 20, 30], [70, 10, 90, 30]], [0.9, 0.95]))
    assert len(result.tracks) == 1
    _, boxes, _ = seg.named("prompt")[0]
    np.testing.assert_allclose(boxes, [[0, 0, 20, 30]])


def test_max_tracks():
    tracker, _ = make(max_tracks=1)
    result = tracker.step(IMAGE, dets([LEFT, RIGHT], [0.7, 0.9]))
    assert [t.bbox for t in result.tracks] == [tuple(map(float, RIGHT))]
    result = tracker.step(IMAGE, dets([LEFT, RIGHT], [0.7, 0.9]))
    assert len(result.tracks) == 1


def test_detection_masks_reach_the_segmenter():
    det_masks = np.stack([mask(LEFT), mask(RIGHT)])
    tracker, seg = make()
    tracker.step(IMAGE, dets([LEFT, RIGHT], [0.9, 0.3], masks=det_masks))  # RIGHT dropped
    _, _, masks = seg.named("prompt")[0]
    np.testing.assert_array_equal(masks, det_masks[:1])


# --- empty frames -----------------------------------------------------------------------


def test_empty_first_frame_creates_nothing():
    tracker, seg = make()
    result = tracker.step(IMAGE, Detections.empty())
    assert result.tracks == [] and tracker.num_tracks == 0
    assert [name for name, _ in seg.calls] == ["start_frame", "propagate", "finish_frame"]
    assert set(result.timing_ms) == PHASE_KEYS | {"total"}


def test_empty_frames_between_keep_tracks_propagating():
    tracker, seg = make(detection_probability=0.5)
    tracker.step(IMAGE, Detections.empty())
    tracker.step(IMAGE, dets([LEFT], [0.9]))
    for expected_gap in (1, 2):
        result = tracker.step(IMAGE, Detections.empty())
        assert [t.track_id for t in result.tracks] == [1]
        assert result.tracks[0].frames_since_detection == expected_gap
    result = tracker.step(IMAGE, dets([LEFT], [0.9]))
    assert result.tracks[0].frames_since_detection == 0
    assert result.tracks[0].age == 3
    assert seg.named("propagate") == [[], [], [1], [1], [1]]
    assert len(seg.named("prompt")) == 1


# --- removal ----------------------------------------------------------------------------

GOOD, WEAK = 0.9, 0.05  # mask scores; the logit stays 10 (visible)


def _quality_run(qualities: list[float], max_weak_frames: int = 3):
    """A track born on frame 0, then one frame per quality; returns the results and the
    segmenter. Detections score 0.55: matched (existence stays up) but below the
    reinforcement score, so weak tracks are not re-prompted."""
    script = {f + 1: {1: (mask(LEFT), q, 10.0)} for f, q in enumerate(qualities)}
    tracker, seg = make(script, max_weak_frames=max_weak_frames)
    tracker.step(IMAGE, dets([LEFT], [0.9]))
    results = [tracker.step(IMAGE, dets([LEFT], [0.55])) for _ in qualities]
    assert seg.named("prompt") == seg.named("prompt")[:1]  # no re-prompting
    return results, seg


def test_a_good_frame_resets_the_weak_counter():
    results, seg = _quality_run([WEAK, WEAK, GOOD, WEAK, WEAK])
    assert all(len(r.tracks) == 1 for r in results)
    states = [r.tracks[0].state for r in results]
    assert states == [
        TrackState.LOST,
        TrackState.LOST,
        TrackState.CONFIRMED,
        TrackState.LOST,
        TrackState.LOST,
    ]
    assert seg.named("remove") == []


def test_consecutive_weak_frames_remove_the_track():
    results, seg = _quality_run([GOOD, WEAK, WEAK, WEAK])
    assert [len(r.tracks) for r in results] == [1, 1, 1, 0]
    assert seg.named("remove") == [[1]]
    # remove comes after finish_frame of the same frame
    names = [name for name, _ in seg.frame_calls(4)]
    assert names[-2:] == ["finish_frame", "remove"]


def test_a_low_logit_is_a_weak_frame_too():
    script = {1: {1: (mask(LEFT), 0.95, 1.0)}}
    tracker, _ = make(script)
    tracker.step(IMAGE, dets([LEFT], [0.9]))
    result = tracker.step(IMAGE, dets([LEFT], [0.55]))
    assert result.tracks[0].state is TrackState.LOST


def test_a_lost_track_keeps_its_identity_for_sam2mot_lost_tolerance():
    # Issue 11, defect 5. SAM 2 believes the object hidden (logit -5) while its mask is
    # fine: LOST, and removed only after 25 consecutive lost frames (SAM2MOT), not the 5
    # "tries" of the quality rule. When the detector finds it again, it has its old id.
    config = TrackerConfig()
    assert (config.max_lost_frames, config.max_weak_frames) == (25, 5)
    hidden = {f: {1: (mask(LEFT), 0.9, -5.0)} for f in range(1, 25)}
    script = {**hidden, 25: {1: (mask(LEFT), 0.9, 10.0)}}
    tracker, seg = make(script)
    tracker.step(IMAGE, dets([LEFT], [0.9]))
    results = [tracker.step(IMAGE, Detections.empty()) for _ in range(24)]
    assert all([t.state for t in r.tracks] == [TrackState.LOST] for r in results)
    result = tracker.step(IMAGE, dets([LEFT], [0.9]))
    assert [t.track_id for t in result.tracks] == [1]
    assert result.tracks[0].state is not TrackState.LOST
    assert seg.named("remove") == []


def test_lost_frames_remove_the_track_after_max_lost_frames():
    script = {f: {1: (mask(LEFT), 0.9, -5.0)} for f in range(1, 10)}
    tracker, seg = make(script, max_lost_frames=4)
    tracker.step(IMAGE, dets([LEFT], [0.9]))
    counts = [len(tracker.step(IMAGE, Detections.empty()).tracks) for _ in range(4)]
    assert counts == [1, 1, 1, 0]
    assert seg.named("remove") == [[1]]


def test_a_lost_track_is_output_without_pixels():
    # Track 1 is LOST (logit 1): kept, but its stale mask is not reported and does not
    # take contested pixels from track 2, whose mask overlaps it.
    b = [12, 4, 30, 40]
    script = {1: {1: (mask(LEFT), 0.95, 1.0), 2: (mask(b), 0.8, 9.0)}}
    tracker, _ = make(script)
    tracker.step(IMAGE, dets([LEFT, [40, 4, 60, 40]], [0.9, 0.9]))
    result = tracker.step(IMAGE, Detections.empty())
    by_id = {t.track_id: t for t in result.tracks}
    assert by_id[1].state is TrackState.LOST
    assert not by_id[1].mask.any() and by_id[1].bbox is None
    np.testing.assert_array_equal(by_id[2].mask, mask(b))


def test_visible_tracks_are_matched_before_lost_ones():
    # Issue 11 (identity switches). Track 2 is lost (logit -5) but its segmenter still
    # holds a stale mask, as the detection-masks segmenter does, right where track 1's
    # object now is. The detection fits the stale mask better (IoU 1.0 against 0.78),
    # yet it is track 1's: a visible track gets first pick, a lost one only what is left.
    moved = [12, 4, 28, 40]
    script = {1: {1: (mask([10, 4, 26, 40]), 0.95, 10.0), 2: (mask(moved), 0.95, -5.0)}}
    tracker, _ = make(script)
    tracker.step(IMAGE, dets([LEFT, RIGHT], [0.9, 0.9]))  # tracks 1 (LEFT), 2 (RIGHT)
    result = tracker.step(IMAGE, dets([moved], [0.9]))
    by_id = {t.track_id: t for t in result.tracks}
    assert sorted(by_id) == [1, 2]
    assert by_id[1].frames_since_detection == 0
    assert by_id[2].frames_since_detection == 1 and by_id[2].state is TrackState.LOST


def test_a_lost_track_takes_a_detection_no_visible_track_takes():
    # A segmenter that cannot re-find a lost object (detection-masks) gets it back only
    # through a detection: one that no visible track takes may match the lost track.
    script = {f: {1: (mask(LEFT), 0.95, -5.0)} for f in (1, 2)}
    tracker, _ = make(script)
    tracker.step(IMAGE, dets([LEFT], [0.9]))
    assert tracker.step(IMAGE, Detections.empty()).tracks[0].state is TrackState.LOST
    result = tracker.step(IMAGE, dets([LEFT], [0.9]))
    assert [(t.track_id, t.frames_since_detection) for t in result.tracks] == [(1, 0)]


def test_a_lost_mask_does_not_block_a_new_track():
    # A pedestrian detected inside a lost car track's stale mask (no match across
    # classes) starts a track: the lost mask is no evidence that the region is tracked.
    # (It used to cover the box, so the pedestrian went untracked.)
    script = {1: {1: (mask([2, 4, 30, 40]), 0.95, -5.0)}}
    tracker, _ = make(script)
    tracker.step(IMAGE, dets([[2, 4, 30, 40]], [0.9]))
    result = tracker.step(IMAGE, dets([[8, 6, 16, 38]], [0.9], ["pedestrian"]))
    assert [(t.track_id, t.class_id) for t in result.tracks] == [(1, "car"), (2, "pedestrian")]


def test_a_lost_track_takes_no_part_in_occlusion():
    # Track 1 is lost with a stale mask on top of track 2's: it does not make track 2
    # OCCLUDED, is not OCCLUDED itself (that state is drawn) and stays without pixels.
    script = {f: {1: (mask(RIGHT), 0.95, -5.0), 2: (mask(RIGHT), 0.9, 9.0)} for f in (1, 2)}
    tracker, seg = make(script)
    tracker.step(IMAGE, dets([LEFT, RIGHT], [0.9, 0.9]))
    result = tracker.step(IMAGE, dets([RIGHT], [0.9]))
    states = {t.track_id: t.state for t in result.tracks}
    assert states == {1: TrackState.LOST, 2: TrackState.CONFIRMED}
    assert seg.named("finish_frame")[-1] == []
    assert not result.tracks[0].mask.any()


def test_a_lost_track_found_again_by_the_segmenter_is_matched_again():
    # The segmenter finds the object again (logit back to 10): its mask is evidence
    # again, the detection matches it and the track keeps its id.
    script = {1: {1: (mask(LEFT), 0.95, -5.0)}, 2: {1: (mask(LEFT), 0.95, 10.0)}}
    tracker, _ = make(script)
    tracker.step(IMAGE, dets([LEFT], [0.9]))
    assert tracker.step(IMAGE, Detections.empty()).tracks[0].state is TrackState.LOST
    result = tracker.step(IMAGE, dets([LEFT], [0.9]))
    assert [(t.track_id, t.frames_since_detection) for t in result.tracks] == [(1, 0)]


def test_ids_are_never_reused():
    script = {f: {1: (mask(LEFT), WEAK, 10.0)} for f in (1, 2)}
    tracker, seg = make(script, max_weak_frames=2)
    tracker.step(IMAGE, dets([LEFT, RIGHT], [0.9, 0.8]))  # ids 1 (LEFT), 2 (RIGHT)
    tracker.step(IMAGE, dets([RIGHT], [0.8]))
    result = tracker.step(IMAGE, dets([RIGHT], [0.8]))
    assert [t.track_id for t in result.tracks] == [2]  # 1 removed after 2 weak frames
    result = tracker.step(IMAGE, dets([LEFT, RIGHT], [0.9, 0.8]))
    assert [t.track_id for t in result.tracks] == [2, 3]
    tracker.reset()
    assert tracker.num_tracks == 0 and seg.named("reset") == [None]
    result = tracker.step(IMAGE, dets([LEFT], [0.9]))
    assert [t.track_id for t in result.tracks] == [4]
    assert result.frame_index == 0
    fresh = Tracker(TrackerConfig(), ScriptedSegmenter())
    assert [t.track_id for t in fresh.step(IMAGE, dets([LEFT], [0.9])).tracks] == [1]


# --- non-finite scores (issue 11, defect 6) ---------------------------------------------


@pytest.mark.parametrize(
    "bad", [(float("nan"), float("nan")), (0.9, float("nan")), (float("nan"), 10.0)]
)
def test_non_finite_scores_are_weak_and_remove_the_track(bad):
    # What max_object_pointers=1 produced: an empty mask with NaN scores on every frame.
    empty = np.zeros((H, W), bool)
    script = {f: {1: (empty, *bad)} for f in range(1, 7)}
    tracker, seg = make(script, max_weak_frames=3)
    tracker.step(IMAGE, dets([LEFT], [0.9]))
    results = [tracker.step(IMAGE, Detections.empty()) for _ in range(3)]
    assert [len(r.tracks) for r in results] == [1, 1, 0]
    assert [r.tracks[0].state for r in results[:2]] == [TrackState.LOST] * 2
    for track in (r.tracks[0] for r in results[:2]):
        assert np.isfinite(track.existence) and np.isfinite(track.mask_score)
    assert seg.named("remove") == [[1]]


def test_existence_never_becomes_nan():
    from seg2track_ros.engine.existence import ExistenceFilter

    existence = ExistenceFilter.from_config(TrackerConfig())
    for logit in (float("nan"), float("inf"), float("-inf")):
        for score in (None, 0.9):
            r = existence.step(0.6, logit, score)
            assert np.isfinite(r) and 0.0 <= r <= 0.6


def test_max_object_pointers_below_two_is_rejected():
    from seg2track_ros.engine.config import ConfigError, SegmenterConfig

    with pytest.raises(ConfigError, match="max_object_pointers"):
        SegmenterConfig(max_object_pointers=1).validate()
    SegmenterConfig(max_object_pointers=2).validate()


# --- reinforcement ----------------------------------------------------------------------


def _pending_run(detection_score: float, mask_score: float = 0.5):
    # Frame 1: the track drifts to a smaller, uncertain mask; the detection has the box.
    script = {1: {1: (mask([4, 8, 14, 30]), mask_score, 10.0)}}
    tracker, seg = make(script)
    tracker.step(IMAGE, dets([LEFT], [0.9]))
    result = tracker.step(IMAGE, dets([LEFT], [detection_score]))
    return result, seg


def test_pending_track_matched_to_a_confident_detection_is_reprompted():
    result, seg = _pending_run(0.9)
    prompts = seg.frame_calls(1)
    prompt_calls = [payload for name, payload in prompts if name == "prompt"]
    assert len(prompt_calls) == 1
    ids, boxes, _ = prompt_calls[0]
    assert ids == [1]
    np.testing.assert_allclose(boxes, [LEFT])
    # The prompt's output replaces the propagated one on this frame.
    track = result.tracks[0]
    np.testing.assert_array_equal(track.mask, mask(LEFT))
    assert track.mask_score == pytest.approx(0.9)


def test_no_reprompt_below_the_reinforcement_score():
    result, seg = _pending_run(0.55)
    assert not any(name == "prompt" for name, _ in seg.frame_calls(1))
    assert result.tracks[0].mask_score == pytest.approx(0.5)
    assert result.tracks[0].frames_since_detection == 0  # still associated


def test_no_reprompt_for_a_reliable_track():
    _, seg = _pending_run(0.9, mask_score=0.95)
    assert not any(name == "prompt" for name, _ in seg.frame_calls(1))


def test_one_reprompt_rule_seg2track_sam2s_quality():
    # Issue 11, defect 5: one re-prompt rule. SAM2MOT's "pending" logit (6 <= 8) with a
    # good predicted IoU (0.95) is not re-prompted (the union of both papers' rules
    # re-prompted it); a poor predicted IoU (0.5) with a reliable logit (12) is.
    for (score, logit), reprompted in (((0.95, 6.0), False), ((0.5, 12.0), True)):
        script = {1: {1: (mask([4, 8, 14, 30]), score, logit)}}
        tracker, seg = make(script)
        tracker.step(IMAGE, dets([LEFT], [0.9]))
        result = tracker.step(IMAGE, dets([LEFT], [0.9]))
        assert any(name == "prompt" for name, _ in seg.frame_calls(1)) is reprompted
        assert result.tracks[0].frames_since_detection == 0  # matched either way


def test_reprompt_and_new_tracks_share_one_prompt_call():
    script = {1: {1: (mask([4, 8, 14, 30]), 0.5, 10.0)}}
    tracker, seg = make(script)
    tracker.step(IMAGE, dets([LEFT], [0.9]))
    result = tracker.step(IMAGE, dets([LEFT, RIGHT], [0.9, 0.9]))
    prompt_calls = [p for name, p in seg.frame_calls(1) if name == "prompt"]
    assert len(prompt_calls) == 1
    assert prompt_calls[0][0] == [1, 2]
    assert [t.track_id for t in result.tracks] == [1, 2]


def test_a_detection_mostly_outside_a_pending_track_starts_a_track():
    # Issue 11, defect 3. Track 1 is pending (mask score 0.5). A car detection overlaps
    # its mask in a 3-pixel strip: 83% of the box is outside every track, and only a
    # quarter of the mask is inside the box, yet IoU 0.11 passes the 0.1 gate. It is a
    # neighbour: it must start track 2, and track 1 must not be re-prompted onto it.
    track_box, neighbour = [10, 4, 22, 40], [19, 4, 37, 40]
    script = {1: {1: (mask(track_box), 0.5, 10.0)}}
    tracker, seg = make(script)
    tracker.step(IMAGE, dets([track_box], [0.9]))
    result = tracker.step(IMAGE, dets([neighbour], [0.9]))
    assert [t.track_id for t in result.tracks] == [1, 2]
    prompt_calls = [p for name, p in seg.frame_calls(1) if name == "prompt"]
    assert [ids for ids, _, _ in prompt_calls] == [[2]]
    np.testing.assert_allclose(prompt_calls[0][1], [neighbour])
    by_id = {t.track_id: t for t in result.tracks}
    assert by_id[1].frames_since_detection == 1


def test_two_detections_of_a_reprompted_track_start_no_duplicate():
    # Issue 11, defect 7. Track 1's mask shrank to [2, 4, 14, 40]; detections a (LEFT)
    # and b of the same object arrive. a matches and re-prompts track 1 with its box;
    # b is 72% outside the old mask but half inside a's box, which becomes track 1's
    # mask on this frame: b must not start a duplicate track.
    b = [9, 4, 27, 40]
    script = {1: {1: (mask([2, 4, 14, 40]), 0.5, 10.0)}}
    tracker, seg = make(script)
    tracker.step(IMAGE, dets([LEFT], [0.9]))
    result = tracker.step(IMAGE, dets([LEFT, b], [0.9, 0.85]))
    assert [t.track_id for t in result.tracks] == [1]
    prompt_calls = [p for name, p in seg.frame_calls(1) if name == "prompt"]
    assert [ids for ids, _, _ in prompt_calls] == [[1]]
    np.testing.assert_allclose(prompt_calls[0][1], [LEFT])


# --- occlusion --------------------------------------------------------------------------

SHARED = [20, 8, 44, 40]  # both tracks' masks on the occlusion frame


def _occlusion_run(history: list[tuple[float, float]], final: tuple[float, float]):
    """Tracks 1 (LEFT) and 2 (RIGHT) with the given logits per frame, then one frame
    where their masks coincide with logits ``final``."""
    script = {
        f + 1: {1: (mask(LEFT), 0.9, a), 2: (mask(RIGHT), 0.9, b)}
        for f, (a, b) in enumerate(history)
    }
    n = len(history) + 1
    script[n] = {1: (mask(SHARED), 0.9, final[0]), 2: (mask(SHARED), 0.9, final[1])}
    tracker, seg = make(script)
    tracker.step(IMAGE, dets([LEFT, RIGHT], [0.9, 0.8]))
    for _ in history:  # detections below the reinforcement score keep existence up
        tracker.step(IMAGE, dets([LEFT, RIGHT], [0.55, 0.55]))
    return tracker.step(IMAGE, Detections.empty()), seg


def test_the_lower_logit_is_occluded():
    result, seg = _occlusion_run([], (9.0, 5.0))
    states = {t.track_id: t.state for t in result.tracks}
    assert states[2] is TrackState.OCCLUDED
    assert states[1] is not TrackState.OCCLUDED
    assert seg.named("finish_frame")[-1] == [2]


def test_close_logits_occlude_the_one_whose_logit_varied_more():
    # Track 1 flickers (3, 12, 4) while track 2 is steady; on the overlap frame track 1
    # has the higher logit, within the margin, and is still the occluded one.
    result, seg = _occlusion_run([(3.0, 9.0), (12.0, 9.0), (4.0, 9.0)], (9.5, 9.0))
    states = {t.track_id: t.state for t in result.tracks}
    assert states[1] is TrackState.OCCLUDED
    assert states[2] is not TrackState.OCCLUDED
    assert seg.named("finish_frame")[-1] == [1]


def test_no_occlusion_without_heavy_overlap():
    _, seg = _occlusion_run([(9.0, 5.0)], (9.0, 5.0))
    assert seg.named("finish_frame")[-2] == []  # frame with separate masks


def test_occlusion_iou_is_exact_for_thin_masks_at_full_resolution():
    # Issue 11, defect 8, at KITTI size (375 x 1242, where the old estimate used every
    # 2nd row and column). Two distant pedestrians' masks: one column and the same
    # column plus its right neighbour, IoU 0.5. Subsampled, the second column vanishes
    # and the IoU reads 1.0 > 0.8: the lower logit was wrongly marked occluded.
    height, width = 375, 1242
    image = np.zeros((height, width, 3), np.uint8)
    thin, wide = np.zeros((height, width), bool), np.zeros((height, width), bool)
    thin[100:300, 600] = True
    wide[100:300, 600:602] = True
    script = {1: {1: (thin, 0.9, 9.0), 2: (wide, 0.9, 5.0)}}
    seg = ScriptedSegmenter(script)
    tracker = Tracker(TrackerConfig(), seg)
    tracker.step(image, dets([[100, 100, 140, 300], [900, 100, 940, 300]], [0.9, 0.9]))
    result = tracker.step(image, Detections.empty())
    assert len(result.tracks) == 2
    assert all(t.state is not TrackState.OCCLUDED for t in result.tracks)
    assert seg.named("finish_frame")[-1] == []


def test_pairwise_mask_iou_is_exact_over_pixel_chunks():
    rng = np.random.default_rng(3)
    masks = np.zeros((5, 61, 83), bool)
    for k in range(5):  # thin random strokes
        xs = rng.integers(0, 83, 3)
        masks[k][:, xs] = rng.random((61, 3)) < 0.7
    masks[4] = False  # an empty mask
    flat = masks.reshape(5, -1).astype(np.int64)
    inter = flat @ flat.T
    area = flat.sum(1)
    union = area[:, None] + area[None, :] - inter
    expected = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    for max_pixels in (7, 1000, 61 * 83):  # chunk edges inside rows, and one chunk
        got = mask_ops.pairwise_mask_iou(torch.from_numpy(masks), max_pixels).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)


def test_occlusion_victims_of_many_pairs_follow_the_rule_pair_by_pair():
    # Every branch of the rule, decided for all pairs at once; checked pair by pair.
    ids = np.array([1, 2, 3, 4, 5, 6, 7])
    logits = np.array([9.0, 5.0, 9.5, 9.5, 9.2, 9.2, 9.6])
    spread = np.array([0.0, 0.0, 4.0, 0.5, 1.0, 1.0, 1.0])
    rows_i, rows_j = np.triu_indices(len(ids), k=1)
    victims = _occlusion_victims(ids, logits, spread, rows_i, rows_j, margin=1.0)
    for i, j, victim in zip(rows_i, rows_j, victims, strict=True):
        if abs(logits[i] - logits[j]) >= 1.0:
            expected = i if logits[i] < logits[j] else j
        elif spread[i] != spread[j]:
            expected = i if spread[i] > spread[j] else j
        elif logits[i] != logits[j]:
            expected = i if logits[i] < logits[j] else j
        else:
            expected = i if ids[i] > ids[j] else j
        assert victim == expected, (i, j)
    pairs = zip(rows_i.tolist(), rows_j.tolist(), strict=True)
    pick = dict(zip(pairs, victims.tolist(), strict=True))
    assert pick[(0, 1)] == 1  # logits 4 apart: the lower
    assert pick[(2, 3)] == 2  # within the margin: the one that varied more
    assert pick[(0, 4)] == 4  # within the margin: the one that varied more
    assert pick[(4, 6)] == 4  # within the margin, same spread: the lower logit
    assert pick[(4, 5)] == 5  # nothing else differs: the younger (higher id)


# --- overlap resolution -----------------------------------------------------------------


def test_contested_pixels_go_to_the_higher_logit():
    # The higher object-score logit owns them, whatever the predicted IoUs say.
    a, b = [10, 10, 30, 40], [24, 10, 44, 40]  # overlap 6 columns: IoU 0.18
    script = {1: {1: (mask(a), 0.95, 9.0), 2: (mask(b), 0.75, 10.0)}}
    tracker, _ = make(script)
    tracker.step(IMAGE, dets([a, [50, 10, 60, 40]], [0.9, 0.8]))  # 2 starts elsewhere
    result = tracker.step(IMAGE, Detections.empty())
    by_id = {t.track_id: t for t in result.tracks}
    contested = mask(a) & mask(b)
    assert contested.any()
    assert by_id[2].mask[contested].all()
    assert not by_id[1].mask[contested].any()
    np.testing.assert_array_equal(by_id[1].mask, mask(a) & ~contested)
    assert by_id[1].bbox == (10.0, 10.0, 24.0, 40.0)
    total = np.sum([t.mask for t in result.tracks], axis=0)
    assert total.max() == 1


def test_an_occluded_track_never_owns_contested_pixels():
    # Issue 11, defect 4. Track 1's logit flickered, so with close logits (9.5 vs 9.0)
    # it is the occluded one although its logit is the higher (and the equal predicted
    # IoUs used to give the pixels to the lower id): it must not own the pixels of
    # track 2, its occluder, in the output.
    result, seg = _occlusion_run([(3.0, 9.0), (12.0, 9.0), (4.0, 9.0)], (9.5, 9.0))
    by_id = {t.track_id: t for t in result.tracks}
    assert by_id[1].state is TrackState.OCCLUDED
    assert seg.named("finish_frame")[-1] == [1]
    np.testing.assert_array_equal(by_id[2].mask, mask(SHARED))
    assert not by_id[1].mask.any() and by_id[1].bbox is None


def test_equal_scores_give_contested_pixels_to_the_lower_id():
    masks = torch.from_numpy(np.stack([mask([10, 10, 30, 40]), mask([24, 10, 44, 40])] * 2))
    scores = torch.tensor([0.8, 0.8, 0.5, 0.9])
    labels = mask_ops.label_image(masks, scores).numpy()
    contested = mask([10, 10, 30, 40]) & mask([24, 10, 44, 40])
    # Row 3 (0.9) wins over everything it covers; rows 0 (0.8) beats 1 (0.8) and 2 (0.5).
    assert (labels[contested] == 4).all()
    assert (labels[mask([10, 10, 24, 40])] == 1).all()
    assert not np.isin(labels, [2, 3]).any()


# --- device work and host copies --------------------------------------------------------


class _SyncCounter(torch.Tensor):
    """Counts calls that read a tensor back to the host."""

    reads: list[str] = []  # noqa: RUF012 - shared on purpose, reset by the test

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in {"item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__"}:
            cls.reads.append(name)
        return super().__torch_function__(func, types, args, kwargs or {})


class _CountingSegmenter(ScriptedSegmenter):
    def _output(self, ids):
        out = super()._output(ids)
        out.masks = out.masks.as_subclass(_SyncCounter)
        out.mask_scores = out.mask_scores.as_subclass(_SyncCounter)
        out.object_score_logits = out.object_score_logits.as_subclass(_SyncCounter)
        return out


def test_one_host_copy_of_the_geometry_and_one_of_the_output_per_frame(monkeypatch):
    copies = []
    real = mask_ops.to_host

    inside = []

    def spy(*tensors):
        copies.append([tuple(t.shape) for t in tensors])
        before = len(_SyncCounter.reads)
        out = real(*tensors)
        inside.append(len(_SyncCounter.reads) - before)
        return out

    monkeypatch.setattr(mask_ops, "to_host", spy)
    seg = _CountingSegmenter()
    tracker = Tracker(TrackerConfig(), seg)
    tracker.step(IMAGE, dets([LEFT, RIGHT], [0.9, 0.9]))
    copies.clear()
    inside.clear()
    _SyncCounter.reads = []
    result = tracker.step(IMAGE, dets([LEFT, RIGHT, [22, 4, 36, 40]], [0.9, 0.9, 0.3]))
    # Nothing prompted on this frame: the geometry vector, then the output: the label
    # image, the boxes and their flags in one call, never a per-track mask.
    assert len(copies) == 2
    assert len(copies[0]) == 1 and len(copies[0][0]) == 1  # one flat vector
    assert copies[1] == [(H, W), (2, 4), (2,)]
    # Every read of a tensor derived from the segmenter's was made by those copies.
    assert _SyncCounter.reads and len(_SyncCounter.reads) == sum(inside)
    assert result.labels.dtype == np.uint16 and result.labels.shape == (H, W)
    assert [t.label for t in result.tracks] == [1, 2]


PHASE_KEYS = {"encode", "propagate", "geometry", "manage", "prompt", "memory", "labels", "output"}


def test_timings_are_reported():
    tracker, _ = make()
    result = tracker.step(IMAGE, dets([LEFT], [0.9]))
    timing = result.timing_ms
    assert set(timing) == PHASE_KEYS | {"total"}
    assert all(v >= 0 for v in timing.values())
    parts = sum(v for k, v in timing.items() if k != "total")
    assert timing["total"] == pytest.approx(parts, rel=1e-6, abs=1e-6)


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((H, W), np.uint8),
        np.zeros((H, W, 4), np.uint8),
        np.zeros((H, W, 3), np.float32),
        np.zeros((0, W, 3), np.uint8),
        np.zeros((H, 0, 3), np.uint8),
        [[[0, 0, 0]]],
    ],
)
def test_bad_image_raises(image):
    tracker, seg = make()
    with pytest.raises(InvalidInputError):
        tracker.step(image, Detections.empty())
    assert seg.calls == []


def test_detection_masks_of_the_wrong_size_raise():
    tracker, _ = make()
    with pytest.raises(InvalidInputError, match="detection masks"):
        tracker.step(IMAGE, dets([LEFT], [0.9], masks=np.zeros((1, H + 1, W), bool)))


def test_invalid_config_is_rejected():
    from seg2track_ros.engine.config import ConfigError

    with pytest.raises(ConfigError):
        Tracker(TrackerConfig(max_weak_frames=0), ScriptedSegmenter())
    with pytest.raises(ConfigError, match="match_across_classes"):
        Tracker(TrackerConfig(match_across_classes="yes"), ScriptedSegmenter())
