"""Replaying a bag through tracker_node over DDS."""

from __future__ import annotations

import numpy as np
import pytest

from seg2track_ros.bags.replay import ReplayError, ReplayOptions, replay_bag
from seg2track_ros.bags.writer import BagFrame, write_bag
from seg2track_ros.engine.types import Detections

from node_harness import scene, scene_boxes

TINY = {"model": "tiny", "checkpoint": "random", "device": "cpu", "image_size": 64}


def _bag(path, frames=5):
    def frame(i):
        rgb = scene(i)
        boxes = np.array(scene_boxes(i), np.float32)
        detections = Detections(boxes, np.full(len(boxes), 0.9, np.float32), ("car",) * len(boxes))
        return BagFrame(2_000_000_000 + i * 100_000_000, rgb[..., ::-1].copy(), detections)

    write_bag(path, (frame(i) for i in range(frames)))
    return path


def test_lockstep_replay_answers_every_frame_in_order(tmp_path):
    bag = _bag(tmp_path / "bag")
    seen = []
    summary = replay_bag(
        bag,
        ReplayOptions(lockstep=True, overrides=TINY, progress=False),
        lambda frame, msg, raw: seen.append((frame, msg.header.frame_id, len(raw) > 0)),
    )
    assert summary.frames_sent == 5 and summary.tracks_received == 5
    assert seen == [(i, "camera_color_left", True) for i in range(5)]


def test_replay_reports_a_node_that_cannot_start(tmp_path):
    bag = _bag(tmp_path / "bag", frames=1)
    options = ReplayOptions(
        overrides={**TINY, "checkpoint": "/nonexistent.pt"},
        startup_timeout_s=60,
        progress=False,
    )
    with pytest.raises(ReplayError, match=r"configure failed: .*seg2track download-checkpoints"):
        replay_bag(bag, options, lambda *args: None)
