"""tracker_node selects its segmenter by name (parameter `segmenter`): the
detection-masks segmenter (no model; each detection's filled box is its mask), a
plugin registered by another installed package, and an unknown name, which fails
configure with the installed names and leaves the node up."""

from __future__ import annotations

import os

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from node_harness import NodeUnderTest, scene_boxes
from scripted_segmenter import box_mask
from segmenter_plugin import make_plugin

LOCKSTEP = {"input_reliability": "reliable", "mode": "lockstep", "diagnostics_period": 0.2}
HEIGHT, WIDTH = 72, 96  # node_harness.scene


def _masks(tracks) -> dict[int, np.ndarray]:
    out = {}
    for obj in tracks.objects:
        rle = mask_utils.frPyObjects(
            {"size": [obj.mask.height, obj.mask.width], "counts": list(obj.mask.counts)},
            obj.mask.height,
            obj.mask.width,
        )
        out[obj.track_id] = mask_utils.decode(rle).astype(bool)
    return out


@pytest.fixture
def make_node(ros_context):
    nodes = []

    def start(params: dict, name: str, **kwargs) -> NodeUnderTest:
        node = NodeUnderTest(ros_context, params, name=name, **kwargs)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.close()


def test_detection_masks_segmenter_tracks_filled_boxes(make_node):
    node = make_node({**LOCKSTEP, "segmenter": "detection-masks"}, "dm_node")
    node.wait_active()
    for frame in range(5):
        masks = _masks(node.send_and_wait(frame))
        expected = sorted(box_mask(HEIGHT, WIDTH, b).sum() for b in scene_boxes(frame))
        assert sorted(int(m.sum()) for m in masks.values()) == expected, frame
        for box in scene_boxes(frame):
            assert any((m == box_mask(HEIGHT, WIDTH, box)).all() for m in masks.values()), box
    assert sorted(masks) == [1, 2]  # the same two tracks all along
    assert "segmenter detection-masks on cpu" in node.output()
    assert node.spin_until(lambda: node.diagnostics.get("frames_processed") == "5", 10)


def test_a_plugin_segmenter_runs_in_the_node_by_name(make_node, tmp_path):
    site = make_plugin(tmp_path / "site", {"left-half": "s2t_test_plugin:build"})
    pythonpath = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    node = make_node(
        {**LOCKSTEP, "segmenter": "left-half"}, "plugin_node", extra_env={"PYTHONPATH": pythonpath}
    )
    node.wait_active()
    masks = _masks(node.send_and_wait(0))
    for x0, y0, x1, y1 in scene_boxes(0):
        half = box_mask(HEIGHT, WIDTH, (x0, y0, (x0 + x1) / 2, y1))
        assert any((m == half).all() for m in masks.values())


def test_an_unknown_segmenter_fails_configure_and_the_node_stays_up(make_node):
    node = make_node({**LOCKSTEP, "segmenter": "yolo-masks"}, "unknown_seg_node")
    expected = (
        "configure failed: parameter 'segmenter': segmenter 'yolo-masks' is not installed;"
        " installed: detection-masks, sam2"
    )
    assert node.spin_until(lambda: expected in node.output(), 60), node.output()
    assert node.state() == "unconfigured"
    assert node.process.poll() is None
