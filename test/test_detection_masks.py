"""The detection-masks segmenter with the real track manager."""

from __future__ import annotations

import numpy as np

from seg2track_ros.engine.config import TrackerConfig
from seg2track_ros.engine.detection_masks import DetectionMaskSegmenter
from seg2track_ros.engine.tracker import Tracker
from seg2track_ros.engine.types import Detections, TrackState

H, W = 40, 60
IMAGE = np.zeros((H, W, 3), np.uint8)


def _detection(x, score=0.7, with_mask=True):
    box = np.array([[x, 10, x + 12, 30]], np.float32)
    mask = np.zeros((1, H, W), bool)
    mask[0, 12:28, x + 2 : x + 10] = True  # smaller than the box: proves the mask is used
    return Detections(box, np.array([score], np.float32), ("car",), mask if with_mask else None)


def test_tracks_follow_the_detector_masks_with_one_id():
    tracker = Tracker(TrackerConfig(), DetectionMaskSegmenter())
    ids = set()
    for frame in range(8):
        detections = _detection(5 + 3 * frame, score=0.55)  # below reinforcement scores
        result = tracker.step(IMAGE, detections)
        (track,) = result.tracks
        ids.add(track.track_id)
        np.testing.assert_array_equal(track.mask, detections.masks[0])
    assert ids == {1}


def test_coasting_then_removal_when_the_detector_stops():
    tracker = Tracker(TrackerConfig(max_lost_frames=2), DetectionMaskSegmenter(logit_decay=4.0))
    tracker.step(IMAGE, _detection(5, score=0.95))
    tracker.step(IMAGE, _detection(5, score=0.95))  # confirmed on its second detection
    states = []
    for _ in range(6):
        result = tracker.step(IMAGE, Detections.empty())
        states.append(result.tracks[0].state if result.tracks else None)
    assert states[0] == TrackState.CONFIRMED  # coasting on its last mask
    assert TrackState.LOST in states and states[-1] is None  # then weak, then removed


def test_box_only_detections_give_filled_boxes():
    tracker = Tracker(TrackerConfig(), DetectionMaskSegmenter())
    (track,) = tracker.step(IMAGE, _detection(5, score=0.9, with_mask=False)).tracks
    assert track.mask.sum() == 12 * 20 and track.bbox == (5.0, 10.0, 17.0, 30.0)
