"""Bernoulli existence filter: the update, confirmation latching, ghost removal."""

from __future__ import annotations

import numpy as np
import pytest

from seg2track_ros.engine.config import ConfigError, TrackerConfig
from seg2track_ros.engine.existence import (
    ExistenceFilter,
    detection_probability,
    likelihood_ratio,
    sigmoid,
    update,
)
from seg2track_ros.engine.tracker import Tracker
from seg2track_ros.engine.types import Detections, TrackState

from scripted_segmenter import ScriptedSegmenter, box_mask

H, W = 48, 64
IMAGE = np.zeros((H, W, 3), np.uint8)
BOX = [10, 10, 30, 40]


def one(box=BOX, score=0.9, cls="car") -> Detections:
    return Detections(np.array([box], np.float32), np.array([score], np.float32), (cls,))


def test_update_matches_the_formula():
    r, p_d, s = 0.4, 0.8, 0.75
    ratio = s / (1 - s)
    expected = (1 - p_d + p_d * ratio) * r / (1 - p_d * r + p_d * ratio * r)
    assert update(r, p_d, ratio) == pytest.approx(expected)
    # A miss (l = 0) lowers r, a detection with s > 0.5 raises it, s = 0.5 leaves it.
    assert update(r, p_d, 0.0) < r < update(r, p_d, ratio)
    assert update(r, p_d, 1.0) == pytest.approx(r)


def test_filter_step_is_predict_then_update():
    f = ExistenceFilter(birth_existence=0.5, survival_probability=0.9, detection_probability=0.8)
    p_d = 0.8 * sigmoid(3.0)
    expected = update(0.9 * 0.6, p_d, likelihood_ratio(0.7))
    assert f.step(0.6, 3.0, 0.7) == pytest.approx(expected)


def test_likelihood_ratio_clips_scores():
    assert likelihood_ratio(None) == 0.0
    assert likelihood_ratio(1.0) == pytest.approx(0.99 / 0.01)
    assert likelihood_ratio(0.0) == pytest.approx(0.01 / 0.99)


def test_sigmoid_is_stable_for_huge_logits():
    assert sigmoid(-1024.0) == 0.0
    assert sigmoid(1024.0) == 1.0
    assert sigmoid(0.0) == 0.5


def test_update_edge_case_certain_object_certainly_missed():
    assert update(1.0, 1.0, 0.0) == 0.0


def test_a_miss_barely_lowers_r_when_the_segmenter_says_hidden():
    f = ExistenceFilter(birth_existence=0.5, survival_probability=1.0, detection_probability=0.9)
    assert detection_probability(-20.0, 0.9) < 1e-6
    hidden = f.step(0.9, -20.0, None)
    visible = f.step(0.9, 10.0, None)
    assert hidden == pytest.approx(0.9, abs=1e-5)
    assert visible < 0.5


def _tracker(segmenter, **changes) -> Tracker:
    return Tracker(TrackerConfig(**changes), segmenter)


def test_confirmation_latches():
    # A weak first detection leaves the track tentative; two more confirm it; misses
    # later (SAM 2 unsure: pending logit 6) bring r below confirm_existence, but the track
    # stays CONFIRMED.
    pending = {f: {1: (box_mask(H, W, BOX), 0.9, 6.0)} for f in range(3, 20)}
    seg = ScriptedSegmenter(pending)
    tracker = _tracker(seg, detection_probability=0.5, min_existence=0.01)
    first = tracker.step(IMAGE, one(score=0.62))
    assert first.tracks[0].state is TrackState.TENTATIVE
    assert first.tracks[0].existence < 0.8
    states, existence = [], []
    for _ in range(2):
        result = tracker.step(IMAGE, one(score=0.9))
        states.append(result.tracks[0].state)
        existence.append(result.tracks[0].existence)
    assert existence[-1] >= 0.8
    for _ in range(10):
        result = tracker.step(IMAGE, Detections.empty())
        states.append(result.tracks[0].state)
        existence.append(result.tracks[0].existence)
        if existence[-1] < 0.8:
            break
    assert existence[-1] < 0.8
    assert states == [TrackState.CONFIRMED] * len(states)


def test_ghost_track_is_removed_below_min_existence():
    seg = ScriptedSegmenter()
    tracker = _tracker(seg)
    tracker.step(IMAGE, one())
    alive, states = [], []
    for _ in range(30):
        result = tracker.step(IMAGE, Detections.empty())
        alive.append(len(result.tracks))
        states += [t.state for t in result.tracks]
        if not result.tracks:
            break
    # Visible to the segmenter (logit 10) but never detected again: a ghost, removed
    # within about ten frames (the defaults halve the odds per missed detection).
    assert alive[-1] == 0
    assert 3 <= len(alive) <= 12
    assert tracker.num_tracks == 0
    assert seg.named("remove") == [[1]]
    # It was output on every frame before the one that removed it.
    assert all(n == 1 for n in alive[:-1])


def test_hidden_track_survives_missing_detections():
    # The segmenter says the object is hidden (logit very negative, but its predicted IoU
    # fine): missing detections barely lower r. The frames are weak (logit <= lost_logit),
    # so the weak-frame limit, not existence, ends the track.
    mask = box_mask(H, W, BOX)
    script = {f: {1: (mask, 0.9, -20.0)} for f in range(1, 8)}
    seg = ScriptedSegmenter(script)
    tracker = _tracker(seg, max_weak_frames=10)
    born = tracker.step(IMAGE, one()).tracks[0].existence
    for _ in range(7):
        result = tracker.step(IMAGE, Detections.empty())
    track = result.tracks[0]
    assert track.state is TrackState.LOST
    assert track.existence > 0.9 * born


# --- issue 11, defect 1: SAM 2's own evidence, confirmation over more than one frame ----


def _confident_track(frames_without_detection: int, **changes):
    """A car detected on frames 0-2 (0.9), then never again while SAM 2 keeps segmenting
    it confidently (logit 15, predicted IoU 0.95) for the given number of frames."""
    mask = box_mask(H, W, BOX)
    script = {f: {1: (mask, 0.95, 15.0)} for f in range(1, 3 + frames_without_detection)}
    seg = ScriptedSegmenter(script)
    tracker = _tracker(seg, **changes)
    for _ in range(3):
        result = tracker.step(IMAGE, one(score=0.9))
    assert [t.state for t in result.tracks] == [TrackState.CONFIRMED]
    results = [tracker.step(IMAGE, Detections.empty()) for _ in range(frames_without_detection)]
    return results, seg


def test_a_confirmed_confidently_segmented_track_survives_missed_detections():
    results, seg = _confident_track(40)
    # Kept, CONFIRMED and with its existence intact on every frame: a missed detection
    # of an object SAM 2 segments confidently is no evidence of absence. (Before the
    # fix the defaults removed it after 11 frames.)
    assert all([t.track_id for t in r.tracks] == [1] for r in results)
    assert all(r.tracks[0].state is TrackState.CONFIRMED for r in results)
    assert results[-1].tracks[0].existence == pytest.approx(results[0].tracks[0].existence)
    assert results[-1].tracks[0].existence >= 0.8
    assert seg.named("remove") == []


def test_a_miss_still_counts_when_sam2_is_unsure():
    # The same track with a pending logit (6 <= reliable_logit) or a poor predicted IoU
    # (0.5 < reinforcement_quality): SAM 2 does not vouch for it, so misses lower r.
    for score, logit in ((0.95, 6.0), (0.5, 15.0)):
        mask = box_mask(H, W, BOX)
        script = {f: {1: (mask, score, logit)} for f in range(1, 40)}
        script.update({f: {1: (mask, 0.95, 15.0)} for f in (1, 2)})
        tracker = _tracker(ScriptedSegmenter(script))
        for _ in range(3):
            tracker.step(IMAGE, one(score=0.9))
        before = tracker.step(IMAGE, Detections.empty()).tracks[0].existence
        after = tracker.step(IMAGE, Detections.empty()).tracks[0].existence
        assert after < before, (score, logit)


def test_an_unconfirmed_confident_ghost_is_still_removed():
    # Born from one detection, never detected again: SAM 2's confidence alone does not
    # keep a TENTATIVE track (a false positive that SAM 2 happily segments).
    mask = box_mask(H, W, BOX)
    seg = ScriptedSegmenter({f: {1: (mask, 0.95, 15.0)} for f in range(1, 30)})
    tracker = _tracker(seg)
    states = [t.state for t in tracker.step(IMAGE, one(score=0.9)).tracks]
    for _ in range(20):
        result = tracker.step(IMAGE, Detections.empty())
        states += [t.state for t in result.tracks]
        if not result.tracks:
            break
    assert not result.tracks and seg.named("remove") == [[1]]
    assert set(states) == {TrackState.TENTATIVE}


def test_one_confident_detection_does_not_confirm_a_track_at_birth():
    seg = ScriptedSegmenter()
    tracker = _tracker(seg)
    born = tracker.step(IMAGE, one(score=0.9)).tracks[0]
    # Existence is already above confirm_existence, yet one frame is not enough.
    assert born.existence >= 0.8
    assert born.state is TrackState.TENTATIVE
    assert tracker.step(IMAGE, one(score=0.9)).tracks[0].state is TrackState.CONFIRMED


def test_min_confirm_frames_is_configurable():
    tracker = _tracker(ScriptedSegmenter(), min_confirm_frames=1)
    assert tracker.step(IMAGE, one(score=0.9)).tracks[0].state is TrackState.CONFIRMED
    tracker = _tracker(ScriptedSegmenter(), min_confirm_frames=3)
    states = [tracker.step(IMAGE, one(score=0.9)).tracks[0].state for _ in range(3)]
    assert states == [TrackState.TENTATIVE, TrackState.TENTATIVE, TrackState.CONFIRMED]
    with pytest.raises(ConfigError, match="min_confirm_frames"):
        TrackerConfig(min_confirm_frames=0).validate()
