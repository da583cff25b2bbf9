"""End-to-end latency through ROS 2: image published -> `tracks` received.

tracker_node runs as a subprocess (its installed executable) and talks to this process
over Fast DDS on loopback. Each image's stamp is its publish time; latency is the time
its `tracks` message arrives. Realtime mode publishes at a fixed rate whatever the node
does (frames it cannot keep up with are dropped and counted); lockstep publishes the
next frame when the previous one answered.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from seg2track_ros.bench.engine import FRAME_SIZE, STEADY_STATE, grid_boxes


@dataclass
class LatencyResult:
    mode: str
    objects: int
    rate_hz: float | None
    sent: int
    latencies_ms: list[float]

    @property
    def received(self) -> int:
        return len(self.latencies_ms)

    @property
    def dropped(self) -> int:
        return self.sent - self.received


def _steady_state_overrides() -> dict:
    return {
        "tracker.removal_quality": STEADY_STATE.removal_quality,
        "tracker.lost_logit": STEADY_STATE.lost_logit,
        "tracker.reliable_logit": STEADY_STATE.reliable_logit,
        "tracker.reinforcement_quality": STEADY_STATE.reinforcement_quality,
        "tracker.detection_probability": STEADY_STATE.detection_probability,
        "tracker.survival_probability": STEADY_STATE.survival_probability,
    }


def frame_messages(
    pixels: bytes,
    frame_size: tuple[int, int],
    boxes: np.ndarray | None,
    stamp_ns: int,
    frame_id: str = "camera",
):
    """An rgb8 Image of `pixels` and its Detection2DArray (the `boxes`, class car, score
    0.9; none when None), both stamped `stamp_ns`."""
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    height, width = frame_size
    image = Image(height=height, width=width, encoding="rgb8", step=width * 3, data=pixels)
    image.header.stamp.sec, image.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    image.header.frame_id = frame_id
    array = Detection2DArray(header=image.header)
    for x0, y0, x1, y1 in [] if boxes is None else boxes.tolist():
        det = Detection2D(header=image.header)
        det.bbox.center.position.x, det.bbox.center.position.y = (x0 + x1) / 2, (y0 + y1) / 2
        det.bbox.size_x, det.bbox.size_y = x1 - x0, y1 - y0
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id, hypothesis.hypothesis.score = "car", 0.9
        det.results.append(hypothesis)
        array.detections.append(det)
    return image, array


def measure_latency(
    mode: str,
    objects: int,
    frames: int,
    rate_hz: float,
    model: str,
    image_size: int,
    device: str,
    warmup: int = 3,
) -> LatencyResult:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from seg2track_msgs.msg import TrackedObjectArray
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from seg2track_ros.bags.replay import (
        ReplayError,
        ReplayOptions,
        spin_node_until,
        start_tracker_node,
        stop_node,
    )

    namespace = f"seg2track_bench_{os.getpid()}_{mode}_{objects}"
    overrides = {
        "model": model,
        "checkpoint": "random",
        "device": device,
        "image_size": image_size,
        **_steady_state_overrides(),
    }
    process, log = start_tracker_node(
        namespace, ReplayOptions(lockstep=(mode == "lockstep"), overrides=overrides)
    )
    context = Context()
    rclpy.init(context=context)
    node = Node("seg2track_bench", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    arrivals: dict[int, float] = {}
    measured = False

    def on_tracks(msg: TrackedObjectArray) -> None:
        arrivals[msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec] = time.time()

    node.create_subscription(TrackedObjectArray, f"/{namespace}/tracks", on_tracks, qos)
    images = node.create_publisher(Image, f"/{namespace}/image", qos)
    detections = node.create_publisher(Detection2DArray, f"/{namespace}/detections", qos)
    height, width = FRAME_SIZE
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8).tobytes()
    boxes = grid_boxes(objects)

    def publish(with_boxes: bool = False) -> int:
        now = time.time_ns()
        image, array = frame_messages(pixels, FRAME_SIZE, boxes if with_boxes else None, now)
        images.publish(image)
        detections.publish(array)
        return now

    def spin_until(condition, timeout: float, what: str = "measuring") -> bool:
        return spin_node_until(
            executor, process, log, condition, timeout, what, tick=0.002, raise_on_timeout=False
        )

    try:
        ready = spin_until(
            lambda: images.get_subscription_count() > 0 and detections.get_subscription_count() > 0,
            300,
            "waiting for tracker_node to start",
        )
        if not ready:
            raise ReplayError("tracker_node did not subscribe within 300 s")
        # The objects are prompted on the first warm-up frame, as in the engine benchmark;
        # later frames carry empty detection messages (random weights cannot match them).
        for index in range(warmup):  # model warm-up, not measured
            stamp = publish(with_boxes=index == 0)
            spin_until(lambda stamp=stamp: stamp in arrivals, 300)
        sent: list[int] = []
        if mode == "lockstep":
            for _ in range(frames):
                stamp = publish()
                sent.append(stamp)
                spin_until(lambda stamp=stamp: stamp in arrivals, 300)
        else:
            period = 1.0 / rate_hz
            start = time.monotonic()
            for index in range(frames):
                spin_until(lambda index=index: time.monotonic() >= start + index * period, 60)
                sent.append(publish())
            spin_until(lambda: all(s in arrivals for s in sent), 30)
        latencies = [(arrivals[s] * 1e9 - s) / 1e6 for s in sent if s in arrivals]
        measured = True
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
        stop_node(process)
        log.finish(succeeded=measured)  # a temporary log is kept only after a failure
    return LatencyResult(
        mode, objects, rate_hz if mode == "realtime" else None, len(sent), latencies
    )
