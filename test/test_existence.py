"""Bernoulli existence filter: the update, confirmation latching, ghost removal."""

from __future__ import annotations

import numpy as np
import pytest

from seg2track_ros.engine.config import TrackerConfig
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
    # later bring r below confirm_existence, but the track stays CONFIRMED.
    seg = ScriptedSegmenter()
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
