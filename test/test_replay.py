"""Replaying a bag through tracker_node over DDS."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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


def test_lockstep_replay_answers_every_frame_in_order(tmp_path, monkeypatch):
    # As on a ROS install: tracker_node is in <prefix>/lib/seg2track_ros, not on PATH
    # (issue 12, defect 1); it is found through the ament index.
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not p.endswith("lib/seg2track_ros")]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    assert shutil.which("tracker_node") is None
    bag = _bag(tmp_path / "bag")
    seen, logs = [], []
    summary = replay_bag(
        bag,
        ReplayOptions(lockstep=True, overrides=TINY, progress=False, on_node_log=logs.append),
        lambda frame, msg, raw: seen.append((frame, msg.header.frame_id, len(raw) > 0)),
    )
    assert summary.frames_sent == 5 and summary.tracks_received == 5
    assert seen == [(i, "camera_color_left", True) for i in range(5)]
    # The node's log (issue 12, defect 4): its path was announced, its warnings (random
    # weights) come back, and the temporary file is gone after a successful replay.
    assert len(logs) == 1 and logs[0].name.startswith("seg2track_node_")
    assert any("random weights" in line.lower() for line in summary.node_warnings)
    assert summary.node_log_path is None and not logs[0].exists()


def test_replay_reports_a_node_that_cannot_start(tmp_path):
    bag = _bag(tmp_path / "bag", frames=1)
    options = ReplayOptions(
        overrides={**TINY, "checkpoint": "/nonexistent.pt"},
        startup_timeout_s=60,
        progress=False,
        node_log=tmp_path / "node.log",
    )
    with pytest.raises(ReplayError, match=r"configure failed: .*seg2track download-checkpoints"):
        replay_bag(bag, options, lambda *args: None)


def test_a_failed_replay_keeps_the_node_log_and_a_given_log_is_kept(tmp_path):
    bag = _bag(tmp_path / "bag", frames=1)
    options = ReplayOptions(
        overrides={**TINY, "checkpoint": "/nonexistent.pt"}, startup_timeout_s=60, progress=False
    )
    with pytest.raises(ReplayError) as error:
        replay_bag(bag, options, lambda *args: None)
    kept = Path(str(error.value).rsplit("tracker_node's log: ", 1)[1].rstrip(")"))
    try:
        assert kept.is_file() and "configure failed" in kept.read_text()
    finally:
        kept.unlink()
    given = tmp_path / "logs" / "node.log"
    options = ReplayOptions(overrides=TINY, progress=False, node_log=given)
    summary = replay_bag(bag, options, lambda *args: None)
    assert summary.node_log_path == given and "random weights" in given.read_text().lower()


def test_replay_hands_a_flat_params_file_to_the_node(tmp_path):
    """Issue 12, defect 6: the node used to crash on a params file without
    `/**: ros__parameters:`; now the one loader reads it and its values reach the node
    (here a checkpoint path the node then fails to find, naming it)."""
    bag = _bag(tmp_path / "bag", frames=1)
    flat = tmp_path / "flat.yaml"
    flat.write_text("checkpoint: /nonexistent/flat_file.pt\n")
    tiny = {k: v for k, v in TINY.items() if k != "checkpoint"}
    options = ReplayOptions(
        overrides=tiny,
        params_files=(flat,),
        startup_timeout_s=60,
        progress=False,
        node_log=tmp_path / "node.log",
    )
    with pytest.raises(ReplayError, match=r"flat_file\.pt"):
        replay_bag(bag, options, lambda *args: None)


def test_the_node_renames_detection_classes_with_its_class_map(tmp_path):
    """Issue 12, defect 2: tracker_node's `class_map` parameter renames a COCO detector's
    classes before tracking; the published tracks carry the benchmark's name."""

    def frame(i):
        boxes = np.array(scene_boxes(i), np.float32)
        detections = Detections(boxes, np.full(len(boxes), 0.9, np.float32), ("0",) * len(boxes))
        return BagFrame(2_000_000_000 + i * 100_000_000, scene(i)[..., ::-1].copy(), detections)

    bag = tmp_path / "bag"
    write_bag(bag, (frame(i) for i in range(3)))
    classes = set()
    options = ReplayOptions(overrides={**TINY, "class_map": "coco"}, progress=False)
    replay_bag(bag, options, lambda f, msg, raw: classes.update(o.class_id for o in msg.objects))
    assert classes == {"pedestrian"}
