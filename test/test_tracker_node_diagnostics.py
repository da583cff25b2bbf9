"""tracker_node's diagnostics never race the worker and never stop the node (issue 10,
defect 6). The node runs in this process so the test can watch the engine lock."""

from __future__ import annotations

import time

import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn

from node_harness import (
    RANDOM_WEIGHT_PARAMS,
    detections_msg,
    image_msg,
    in_process_node,
    scene,
    scene_boxes,
)


@pytest.fixture
def node(ros_context):
    tracker = in_process_node(
        ros_context, "/diagnosed", {**RANDOM_WEIGHT_PARAMS, "mode": "lockstep"}
    )
    assert tracker.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert tracker.trigger_activate() == TransitionCallbackReturn.SUCCESS
    yield tracker
    tracker._stop_processing()
    tracker.destroy_node()


def _feed(node, frame: int) -> None:
    """One image and its detections through the node's own callbacks."""
    image = image_msg(scene(frame), 1000 + frame)
    node._on_image(image)
    node._on_detections(detections_msg(image.header, scene_boxes(frame)))


def _wait_processed(node, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while node._stats.frames_processed < count:
        assert time.monotonic() < deadline, node._stats
        time.sleep(0.02)


def test_segmenter_memory_is_read_only_under_the_engine_lock(node):
    """The segmenter's memory figure iterates the objects the worker adds and removes;
    read without the engine lock it raised 'dictionary changed size during iteration'."""
    reads: list[bool] = []
    figures: list[int] = []
    segmenter = node._segmenter
    original = segmenter.memory_bytes

    def memory_bytes() -> int:
        unlocked = node._engine_lock.acquire(blocking=False)
        if unlocked:
            node._engine_lock.release()
        reads.append(not unlocked)
        figures.append(original())
        return figures[-1]

    segmenter.memory_bytes = memory_bytes
    for frame in range(3):
        _feed(node, frame)
        _wait_processed(node, frame + 1)
        node._publish_diagnostics()  # what the diagnostics timer does
    assert reads, "the memory figure was never read: the check would be vacuous"
    assert all(reads), f"{reads.count(False)} of {len(reads)} reads without the engine lock"
    values = node._diagnostic_values()  # the latest figure the worker read
    assert float(values["tracker_memory_mb"]) == pytest.approx(figures[-1] / 2**20, abs=1e-3)


def _raise(*_args):
    raise RuntimeError("dictionary changed size during iteration")


@pytest.mark.parametrize("broken", ["segmenter_memory", "diagnostics_callback"])
def test_an_exception_while_reporting_never_stops_the_node(node, ros_context, broken):
    """An exception raised inside the diagnostics timer used to leave spin() and end the
    process. Whatever fails there is logged and counted; spinning and tracking go on."""
    published = []
    node._diagnostics_pub = _RecordingPublisher(node._diagnostics_pub, published)
    if broken == "segmenter_memory":
        node._segmenter.memory_bytes = _raise
    else:
        node._diagnostic_values = _raise
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    try:
        started = time.monotonic()
        while time.monotonic() - started < 1.0:  # diagnostics_period 0.2: ~5 timer calls
            executor.spin_once(timeout_sec=0.05)  # raised out of spin before the fix
        _feed(node, 0)
        _wait_processed(node, 1)  # still tracking
        executor.spin_once(timeout_sec=0.05)
    finally:
        executor.remove_node(node)
        executor.shutdown()
    errors = node._stats.callback_errors["_publish_diagnostics"]
    if broken == "segmenter_memory":  # never read by the timer: it publishes normally
        assert published and errors == 0
    else:  # the timer fired, failed, was counted and logged
        assert not published and errors >= 3, errors


class _RecordingPublisher:
    def __init__(self, publisher, record: list) -> None:
        self._publisher, self._record = publisher, record

    def publish(self, msg) -> None:
        self._record.append(msg)
        self._publisher.publish(msg)


def test_warnings_are_throttled_per_reason_not_all_together(node, capfd):
    """One busy reason must not hide another: each reason is logged once per throttle
    period (rclpy's throttle_duration_sec is shared by every message of a call site)."""
    capfd.readouterr()
    for _ in range(3):
        node._reject("reason_a", "first kind of problem")
        node._reject("reason_b", "second kind of problem")
    err = capfd.readouterr().err
    assert err.count("first kind of problem") == 1, err
    assert err.count("second kind of problem") == 1, err
    assert node._stats.rejected == {"reason_a": 3, "reason_b": 3}  # all counted


def test_warnings_and_errors_can_follow_each_other(node, capfd):
    """rclpy raises 'Logger severity cannot be changed between calls' when one call site
    logs at two severities: an engine error after a warning then lost its frame."""
    node._reject("a_warning", "something to warn about")
    node._reject("an_error", "something that failed", error=True)
    node._reject("another_warning", "more to warn about")
    err = capfd.readouterr().err
    assert "something that failed" in err and "more to warn about" in err


def test_scores_outside_the_unit_interval_are_counted_and_warned(node, capfd):
    """Issue 12, defect 8: such detections are tracked as given, but counted in
    diagnostics and warned about (throttled), never silently."""
    assert node._diagnostic_values()["detection_scores_outside_0_1"] == 0
    for frame in range(2):
        image = image_msg(scene(frame), 1000 + frame)
        node._on_image(image)
        boxes = scene_boxes(frame)
        scores = [1.5, -0.25, 0.5][: len(boxes)] + [0.9] * max(0, len(boxes) - 3)
        node._on_detections(detections_msg(image.header, boxes, scores=scores))
    _wait_processed(node, 2)
    outside = sum(1 for s in [1.5, -0.25, 0.5][: len(scene_boxes(0))] if not 0 <= s <= 1)
    assert outside > 0
    assert node._diagnostic_values()["detection_scores_outside_0_1"] == 2 * outside
    err = capfd.readouterr().err
    assert err.count("outside [0, 1]") == 1  # throttled: once, not per frame
