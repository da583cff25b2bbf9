"""seg2track_msgs and vision_msgs travel through rclpy over Fast DDS unchanged."""

from __future__ import annotations

import time

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from seg2track_msgs.msg import TrackedObject, TrackedObjectArray
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from seg2track_ros.ros.conversions import mask_to_bbox_msg, mask_to_rle_msg, rle_msg_to_mask

QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def _two_masks(height: int = 48, width: int = 64) -> list[np.ndarray]:
    first = np.zeros((height, width), dtype=np.uint8)
    first[5:20, 3:30] = 1
    second = np.zeros((height, width), dtype=np.uint8)
    yy, xx = np.mgrid[:height, :width]
    second[(yy - 32) ** 2 + (xx - 45) ** 2 < 100] = 1
    second[0, 0] = 1  # a foreground first pixel: counts must start with a 0 run
    return [first, second]


def _tracked_objects(masks: list[np.ndarray]) -> TrackedObjectArray:
    msg = TrackedObjectArray()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000, 123_456_789
    msg.header.frame_id = "camera_color_left"
    for index, mask in enumerate(masks):
        obj = TrackedObject()
        obj.track_id = 7 + index
        obj.class_id = ["car", "pedestrian"][index]
        obj.detection_score = 0.875
        obj.mask_score = 0.5 + 0.125 * index
        obj.existence = 0.96875
        obj.state = [TrackedObject.STATE_CONFIRMED, TrackedObject.STATE_OCCLUDED][index]
        obj.age = 42 + index
        obj.frames_since_detection = index
        obj.bbox = mask_to_bbox_msg(mask)
        obj.mask = mask_to_rle_msg(mask)
        msg.objects.append(obj)
    return msg


def _detections() -> Detection2DArray:
    msg = Detection2DArray()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 12, 500
    msg.header.frame_id = "camera"
    for index in range(3):
        det = Detection2D()
        det.header = msg.header
        det.id = f"det-{index}"
        det.bbox.center.position.x = 100.5 + index
        det.bbox.center.position.y = 50.25
        det.bbox.center.theta = 0.1 * index
        det.bbox.size_x, det.bbox.size_y = 30.0, 60.0 + index
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = "pedestrian"
        hypothesis.hypothesis.score = 0.9 - 0.1 * index
        hypothesis.pose.pose.position.x = float(index)
        hypothesis.pose.covariance[0] = 0.5
        det.results.append(hypothesis)
        msg.detections.append(det)
    return msg


def _exchange(context, msg_type, message, timeout_s: float = 10.0):
    """Publish one message from one node and receive it on another, over DDS."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    publisher_node = Node("roundtrip_publisher", context=context)
    subscriber_node = Node("roundtrip_subscriber", context=context)
    received = []
    subscriber_node.create_subscription(msg_type, "roundtrip", received.append, QOS)
    publisher = publisher_node.create_publisher(msg_type, "roundtrip", QOS)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(subscriber_node)
    try:
        deadline = time.monotonic() + timeout_s
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert publisher.get_subscription_count() == 1, "subscriber never matched"
        publisher.publish(message)
        while not received and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        publisher_node.destroy_node()
        subscriber_node.destroy_node()
    assert rclpy.ok(context=context)
    assert len(received) == 1, "message not received within the timeout"
    return received[0]


def test_tracked_object_array_round_trip(ros_context):
    masks = _two_masks()
    sent = _tracked_objects(masks)
    got = _exchange(ros_context, TrackedObjectArray, sent)

    assert got == sent  # rosidl equality compares every field, nested ones included
    assert got.header.frame_id == "camera_color_left"
    assert (got.header.stamp.sec, got.header.stamp.nanosec) == (1_700_000_000, 123_456_789)
    assert [o.track_id for o in got.objects] == [7, 8]
    assert [o.class_id for o in got.objects] == ["car", "pedestrian"]
    assert got.objects[1].state == TrackedObject.STATE_OCCLUDED
    assert got.objects[1].mask.counts[0] == 0
    for obj, mask in zip(got.objects, masks, strict=True):
        np.testing.assert_array_equal(rle_msg_to_mask(obj.mask), mask)
        assert obj.bbox == mask_to_bbox_msg(mask)


def test_detection2darray_round_trip(ros_context):
    sent = _detections()
    got = _exchange(ros_context, Detection2DArray, sent)

    assert got == sent
    assert [d.id for d in got.detections] == ["det-0", "det-1", "det-2"]
    assert got.detections[2].bbox.center.theta == pytest.approx(0.2)
    assert got.detections[1].results[0].hypothesis.score == pytest.approx(0.8)
    assert got.detections[0].results[0].pose.covariance[0] == 0.5


def test_state_constants_are_distinct():
    states = {
        TrackedObject.STATE_TENTATIVE,
        TrackedObject.STATE_CONFIRMED,
        TrackedObject.STATE_OCCLUDED,
        TrackedObject.STATE_LOST,
    }
    assert len(states) == 4
