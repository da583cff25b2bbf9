"""Lockstep mode's queue is bounded in bytes, not only in frames (issue 10, defect 7)."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.lifecycle import TransitionCallbackReturn

from seg2track_ros.ros.sync import SyncedPair
from seg2track_ros.ros.tracker_node import _Frame

from node_harness import (
    RANDOM_WEIGHT_PARAMS,
    NodeUnderTest,
    detections_msg,
    image_msg,
    in_process_node,
)

FRAME_BYTES = 72 * 96 * 3


@pytest.fixture
def configured(ros_context):
    """Configured, not active: no worker takes frames off the queue."""
    node = in_process_node(
        ros_context,
        "/queued",
        {**RANDOM_WEIGHT_PARAMS, "mode": "lockstep", "lockstep_queue_bytes": 3 * FRAME_BYTES},
    )
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    yield node
    node._stop_processing()
    node.destroy_node()


def _pair(stamp: int, height: int = 72, width: int = 96) -> SyncedPair:
    rgb = np.zeros((height, width, 3), np.uint8)
    frame = _Frame(image_msg(rgb, stamp).header, rgb, None, 0)
    return SyncedPair(stamp, frame, None, 0)


def test_the_oldest_frames_make_room_and_every_drop_is_counted(configured):
    node = configured
    for stamp in range(10):
        node._enqueue([_pair(stamp)])
        assert sum(f.rgb.nbytes for f in node._queue) <= 3 * FRAME_BYTES, f"frame {stamp}"
    assert [f.header.stamp.sec for f in node._queue] == [7, 8, 9]  # order kept, newest kept
    assert node._queue_bytes == sum(f.rgb.nbytes for f in node._queue)
    values = node._diagnostic_values()
    assert values["frames_dropped"] == 7
    assert values["rejected_lockstep_queue_full"] == 7
    assert values["queue_bytes_peak"] == 3 * FRAME_BYTES


def test_a_frame_above_the_bound_is_still_tracked_alone(configured):
    node = configured
    node._enqueue([_pair(1)])
    node._enqueue([_pair(2, height=480, width=640)])  # bigger than the whole bound
    assert [f.header.stamp.sec for f in node._queue] == [2]
    node._enqueue([_pair(3)])
    assert [f.header.stamp.sec for f in node._queue] == [3]


def test_a_tenfold_overload_stays_within_the_byte_bound_and_is_accounted(ros_context):
    height, width = 240, 320
    bound = 3 * height * width * 3
    params = {"mode": "lockstep", "lockstep_queue_bytes": bound, "input_depth": 100}
    node = NodeUnderTest(ros_context, {**RANDOM_WEIGHT_PARAMS, **params}, "overloaded")
    try:
        node.wait_active()
        sent = 30  # ten times what the queue may hold, in one burst
        rgb = np.full((height, width, 3), 90, np.uint8)
        for stamp in range(1, sent + 1):
            image = image_msg(rgb, stamp)
            node.images.publish(image)
            node.detections.publish(detections_msg(image.header, [(100, 100, 300, 300)]))
        node.spin_until(
            lambda: (
                int(node.diagnostics.get("frames_processed", 0))
                + int(node.diagnostics.get("frames_dropped", 0))
                >= sent
            ),
            60,
        )
        values = {k: int(float(v)) for k, v in node.diagnostics.items()}
        assert values["frames_in"] == sent
        assert values["frames_processed"] + values["frames_dropped"] == sent, values
        assert values["frames_dropped"] > 0 and values["rejected_lockstep_queue_full"] > 0
        assert 0 < values["queue_bytes_peak"] <= bound, values
        # the node goes on: the next frame is tracked
        image = image_msg(rgb, sent + 1)
        count = len(node.received["tracks"])
        node.images.publish(image)
        node.detections.publish(detections_msg(image.header, [(100, 100, 300, 300)]))
        assert node.spin_until(lambda: len(node.received["tracks"]) > count, 30)
    finally:
        node.close()
