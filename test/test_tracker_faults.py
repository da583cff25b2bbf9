"""A failed Tracker.step costs exactly its own frame (issue 10, defect 3).

The fault is injected with the engine's test hook (FaultInjectingSegmenter) around a real
segmenter: the detection-masks segmenter here, SAM 2 in the node test."""

from __future__ import annotations

import numpy as np
import pytest

from seg2track_ros.engine.config import TrackerConfig
from seg2track_ros.engine.detection_masks import DetectionMaskSegmenter
from seg2track_ros.engine.faults import FaultInjectingSegmenter, InjectedFault
from seg2track_ros.engine.tracker import Tracker, TrackerStepError
from seg2track_ros.engine.types import Detections

H, W = 40, 80
IMAGE = np.zeros((H, W, 3), np.uint8)


def _detections(frame: int, newcomer: bool = False) -> Detections:
    """Two cars crossing; ``newcomer`` adds a third, born on this frame."""
    boxes = [[5 + frame, 5, 20 + frame, 30], [60 - frame, 10, 75 - frame, 35]]
    if newcomer:
        boxes.append([35, 32, 45, 40])
    scores = np.full(len(boxes), 0.9, np.float32)
    return Detections(np.array(boxes, np.float32), scores, ("car",) * len(boxes))


def test_an_injected_fault_loses_only_its_frame_and_the_next_frame_is_tracked():
    segmenter = FaultInjectingSegmenter(DetectionMaskSegmenter(), every=5)
    tracker = Tracker(TrackerConfig(), segmenter)
    failed, ids_before_fault = [], set()
    for frame in range(1, 23):
        try:
            # A birth on each faulty frame: the segmenter is prompted with an object the
            # failed step never records (before the fix every later frame then failed).
            result = tracker.step(IMAGE, _detections(frame, newcomer=frame % 5 == 0))
        except TrackerStepError as error:
            assert isinstance(error.__cause__, InjectedFault)
            assert "all tracks were reset" in str(error)
            assert tracker.num_tracks == 0
            failed.append(frame)
            continue
        assert len(result.tracks) == 2, f"frame {frame}: {result.tracks}"
        ids = {t.track_id for t in result.tracks}
        if failed and failed[-1] == frame - 1:  # the frame right after a fault
            assert min(ids) > max(ids_before_fault), "ids must keep increasing after a reset"
        ids_before_fault = ids
    assert failed == [5, 10, 15, 20]  # exactly one frame per injected fault
    assert segmenter.faults == 4


def test_the_fault_hits_after_the_segmenter_was_prompted():
    """The worst half-done state: the segmenter holds objects the tracker never
    recorded. Without the tracker's reset every later frame failed."""
    segmenter = FaultInjectingSegmenter(DetectionMaskSegmenter(), every=1)
    tracker = Tracker(TrackerConfig(), segmenter)
    with pytest.raises(TrackerStepError) as error:
        tracker.step(IMAGE, _detections(0))
    assert "in prompt" in str(error.value.__cause__)
    assert segmenter.inner.memory_bytes() == 0  # the reset reached the segmenter too
    segmenter.every = 1000
    assert len(tracker.step(IMAGE, _detections(1)).tracks) == 2


def test_a_frame_without_prompts_fails_at_finish_frame():
    segmenter = FaultInjectingSegmenter(DetectionMaskSegmenter(), every=1)
    tracker = Tracker(TrackerConfig(), segmenter)
    with pytest.raises(TrackerStepError) as error:
        tracker.step(IMAGE, Detections.empty())
    assert "in finish_frame" in str(error.value.__cause__)


def test_invalid_input_is_refused_without_a_reset():
    tracker = Tracker(TrackerConfig(), DetectionMaskSegmenter())
    tracker.step(IMAGE, _detections(0))
    from seg2track_ros.engine.types import InvalidInputError

    with pytest.raises(InvalidInputError):
        tracker.step(np.zeros((H, W), np.uint8), _detections(1))
    assert tracker.num_tracks == 2  # bad input changes nothing


def test_the_hook_is_off_unless_asked_for():
    with pytest.raises(ValueError):
        FaultInjectingSegmenter(DetectionMaskSegmenter(), every=0)
