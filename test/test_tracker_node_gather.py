"""Several cameras share an engine call: the worker waits up to camera_gather_window for
the frames of the cameras seen in the last ticks (issue 13). In-process node with the
detection-masks segmenter; frames go straight into its queues (no DDS timing)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from rclpy.lifecycle import TransitionCallbackReturn

from seg2track_ros.ros.sync import SyncedPair
from seg2track_ros.ros.tracker_node import GATHER_TICKS, _Frame

from node_harness import image_msg, in_process_node

LATE_S = 0.15  # camera b's frame comes this long after camera a's


def _pair(stamp: int) -> SyncedPair:
    rgb = np.zeros((48, 64, 3), np.uint8)
    return SyncedPair(stamp, _Frame(image_msg(rgb, stamp).header, rgb, None, 0), None, 0)


@pytest.fixture
def two_cameras(ros_context):
    nodes = []

    def start(window: float):
        node = in_process_node(
            ros_context,
            f"/gather{len(nodes)}",
            {
                "cameras": ["a", "b"],
                "segmenter": "detection-masks",
                "mode": "lockstep",
                "camera_gather_window": window,
            },
        )
        nodes.append(node)
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        return node

    yield start
    for node in nodes:
        node._stop_processing()
        node.destroy_node()


def _processed(node, camera: str) -> int:
    with node._stats_lock:
        return node._cameras[camera].stats.frames_processed


def _wait(node, counts: dict[str, int], timeout: float = 30.0) -> float:
    """Seconds until each camera has processed its count of frames."""
    start = time.monotonic()
    while any(_processed(node, c) < n for c, n in counts.items()):
        assert time.monotonic() - start < timeout, counts
        time.sleep(0.005)
    return time.monotonic() - start


def _ticks(node) -> list[int]:
    with node._stats_lock:
        return list(node._tick_cameras)


@pytest.mark.parametrize(
    ("window", "ticks"),
    [(1.0, [2, 2, 2]), (0.0, [1, 1] * 3)],  # without a window the late camera goes alone
)
def test_frames_of_one_instant_share_a_tick(two_cameras, window, ticks):
    node = two_cameras(window=window)
    for k in range(3):
        node._enqueue([_pair(10 + k)], node._cameras["a"])
        time.sleep(LATE_S)
        node._enqueue([_pair(10 + k)], node._cameras["b"])
        _wait(node, {"a": k + 1, "b": k + 1})
    assert _ticks(node) == ticks
    mean = sum(ticks) / len(ticks)
    assert node._diagnostic_values(node._cameras["b"])["cameras_per_tick"] == mean


def test_a_camera_that_stops_is_waited_for_only_a_few_ticks(two_cameras):
    window = 1.0
    node = two_cameras(window=window)
    node._enqueue([_pair(1)], node._cameras["a"])
    node._enqueue([_pair(1)], node._cameras["b"])
    _wait(node, {"a": 1, "b": 1})
    # b stops: a's next GATHER_TICKS frames wait the window for it, then none waits
    waits = []
    for k in range(GATHER_TICKS + 3):
        node._enqueue([_pair(2 + k)], node._cameras["a"])
        waits.append(_wait(node, {"a": 2 + k}))
    assert all(w >= window * 0.9 for w in waits[:GATHER_TICKS]), waits
    assert all(w < window / 2 for w in waits[GATHER_TICKS:]), waits
    # b comes back: it is in a tick again, and is waited for again
    node._enqueue([_pair(50)], node._cameras["b"])
    _wait(node, {"b": 2})
    node._enqueue([_pair(51)], node._cameras["a"])
    time.sleep(LATE_S)
    node._enqueue([_pair(51)], node._cameras["b"])
    _wait(node, {"a": GATHER_TICKS + 5, "b": 3})
    assert _ticks(node)[-1] == 2


def test_one_camera_never_waits(ros_context):
    node = in_process_node(
        ros_context,
        "/gather_one",
        {"segmenter": "detection-masks", "mode": "lockstep", "camera_gather_window": 1.0},
    )
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        node._enqueue([_pair(1)])
        assert _wait(node, {"": 1}) < 0.5
        assert "cameras_per_tick" not in node._diagnostic_values()
    finally:
        node._stop_processing()
        node.destroy_node()
