"""Run the installed tracker_node executable as a subprocess and talk to it over DDS."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections import defaultdict

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from seg2track_msgs.msg import TrackedObjectArray
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

# parameters as `seg2track replay` passes them: YAML ('' for an empty string, [a, b])
from seg2track_ros.bags.replay import _ros_value
from seg2track_ros.executables import find_executable

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)

# Random weights give meaningless scores: keep tracks alive so outputs have content.
RANDOM_WEIGHT_PARAMS = {
    "model": "tiny",
    "checkpoint": "random",
    "device": "cpu",
    "image_size": 64,
    "input_reliability": "reliable",
    "tracker.lost_logit": -1000.0,
    "tracker.reliable_logit": -999.0,
    "tracker.removal_quality": 0.0,
    "diagnostics_period": 0.2,
}


def scene(frame: int, height: int = 72, width: int = 96) -> np.ndarray:
    """A synthetic RGB frame: two rectangles moving over a gradient."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.linspace(0, 120, width, dtype=np.uint8)[None, :]
    x = 10 + 2 * frame
    image[20:45, x : x + 20] = (200, 40, 40)
    image[40:65, 60 - frame : 80 - frame] = (40, 200, 60)
    return image


def image_msg(rgb: np.ndarray, stamp_s: int, frame_id: str = "camera") -> Image:
    msg = Image(
        height=rgb.shape[0],
        width=rgb.shape[1],
        encoding="rgb8",
        step=rgb.shape[1] * 3,
        data=rgb.tobytes(),
    )
    msg.header.stamp.sec = stamp_s
    msg.header.frame_id = frame_id
    return msg


def detections_msg(header, boxes, scores=None, classes=None) -> Detection2DArray:
    msg = Detection2DArray()
    msg.header = header
    for i, box in enumerate(boxes):
        x0, y0, x1, y1 = (float(v) for v in box)  # rosidl aborts on ints in float64 fields
        det = Detection2D()
        det.header = header
        det.bbox.center.position.x, det.bbox.center.position.y = (x0 + x1) / 2, (y0 + y1) / 2
        det.bbox.size_x, det.bbox.size_y = x1 - x0, y1 - y0
        if classes is None or classes[i] is not None:
            hypothesis = ObjectHypothesisWithPose()
            hypothesis.hypothesis.class_id = "car" if classes is None else classes[i]
            hypothesis.hypothesis.score = 0.9 if scores is None else float(scores[i])
            det.results.append(hypothesis)
        msg.detections.append(det)
    return msg


def scene_boxes(frame: int) -> list[tuple[float, float, float, float]]:
    x = 10 + 2 * frame
    return [(x, 20, x + 20, 45), (60 - frame, 40, 80 - frame, 65)]


# Seconds given to DDS discovery after the node's inputs are matched (wait_active).
DISCOVERY_SETTLE_S = 0.5


class NodeUnderTest:
    """tracker_node in a subprocess plus a client node with every input and output."""

    def __init__(
        self,
        context,
        params: dict,
        name: str = "tracker_node",
        params_file=None,
        extra_env: dict[str, str] | None = None,
        remaps: dict[str, str] | None = None,
    ) -> None:
        # As `seg2track replay` finds it: the ament index, as `ros2 run` does.
        executable = str(find_executable("tracker_node"))
        # Each node in its own namespace, so several under test never hear each other.
        args = [executable, "--ros-args", "-r", f"__node:={name}", "-r", f"__ns:=/{name}"]
        if params_file is not None:
            args += ["--params-file", str(params_file)]
        for key, value in params.items():
            args += ["-p", f"{key}:={_ros_value(value)}"]
        for source, target in (remaps or {}).items():
            args += ["-r", f"{source}:={target}"]
        self.name = name
        # A file, not a pipe: a pipe nobody reads fills up and blocks the node.
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in close())
        self.process = subprocess.Popen(
            args,
            env={**os.environ, **(extra_env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.client = Node(f"{name}_test_client", context=context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=context)
        self.executor.add_node(self.client)
        self.received = defaultdict(list)
        for topic, msg_type in (
            ("tracks", TrackedObjectArray),
            ("tracked_detections", Detection2DArray),
            ("instance_labels", Image),
            ("overlay", Image),
        ):
            self.client.create_subscription(
                msg_type, f"/{name}/{topic}", self.received[topic].append, RELIABLE
            )
        self.client.create_subscription(
            DiagnosticArray, "/diagnostics", self._on_diagnostics, RELIABLE
        )
        self.diagnostics: dict[str, str] = {}
        self.images = self.client.create_publisher(Image, f"/{name}/image", RELIABLE)
        self.detections = self.client.create_publisher(
            Detection2DArray, f"/{name}/detections", RELIABLE
        )
        node_path = f"/{name}/{name}"
        self.change_state = self.client.create_client(ChangeState, f"{node_path}/change_state")
        self.get_state = self.client.create_client(GetState, f"{node_path}/get_state")
        self.reset = self.client.create_client(Trigger, f"{node_path}/reset")

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(f"{self.name}:"):
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def spin_until(self, condition, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if self.process.poll() is not None:
                raise AssertionError(f"tracker_node exited:\n{self.output()}")
            self.executor.spin_once(timeout_sec=0.02)
        return condition()

    def wait_active(self, timeout: float = 120.0) -> None:
        assert self.spin_until(
            lambda: (
                self.images.get_subscription_count() > 0
                and self.detections.get_subscription_count() > 0
            ),
            timeout,
        ), f"tracker_node never subscribed:\n{self.output()}"
        # Our publishers see the node's subscriptions, but DDS discovery is one-sided:
        # the node's readers may not have matched our writers yet, and what we send
        # before they do is lost. Let discovery settle before the first frame.
        self.spin_until(lambda: False, DISCOVERY_SETTLE_S)

    def send(self, frame: int, stamp_s: int | None = None, boxes=None, **det_kwargs) -> Image:
        image = image_msg(scene(frame), stamp_s if stamp_s is not None else 1000 + frame)
        self.images.publish(image)
        self.detections.publish(
            detections_msg(
                image.header, scene_boxes(frame) if boxes is None else boxes, **det_kwargs
            )
        )
        return image

    def send_and_wait(self, frame: int, **kwargs) -> TrackedObjectArray:
        count = len(self.received["tracks"])
        image = self.send(frame, **kwargs)
        assert self.spin_until(lambda: len(self.received["tracks"]) > count), (
            f"no tracks for frame {frame}:\n{self.output()}"
        )
        out = self.received["tracks"][-1]
        assert out.header.stamp == image.header.stamp
        return out

    def call(self, client, request, timeout: float = 30.0):
        assert client.wait_for_service(timeout_sec=timeout), f"{client.srv_name} not available"
        future = client.call_async(request)
        assert self.spin_until(future.done, timeout)
        return future.result()

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition_id
        return self.call(self.change_state, request).success

    def state(self) -> str:
        # GetState is idempotent, so it is retried: under load a response can be lost when
        # the server answers before it has discovered the client's response reader.
        for _attempt in range(3):
            assert self.get_state.wait_for_service(timeout_sec=30), "get_state not available"
            future = self.get_state.call_async(GetState.Request())
            if self.spin_until(future.done, 15):
                return future.result().current_state.label
            self.get_state.remove_pending_request(future)
        raise AssertionError(f"get_state never answered:\n{self.output()}")

    def rss_kb(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def cpu_seconds(self) -> float:
        """User + system CPU time the node process has used so far."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def graph_counts(self) -> dict[str, int]:
        """Subscriptions on the node's inputs and publishers on its outputs, as the ROS
        graph sees them (what `ros2 topic info` reports)."""
        base = f"/{self.name}"
        counts = {
            topic: self.client.count_subscribers(f"{base}/{topic}")
            for topic in ("image", "detections")
        }
        for topic in ("tracks", "tracked_detections", "instance_labels"):
            counts[topic] = self.client.count_publishers(f"{base}/{topic}")
        counts["diagnostics"] = sum(
            1
            for info in self.client.get_publishers_info_by_topic("/diagnostics")
            if info.node_namespace == base
        )
        return counts

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read()[-6000:]

    def close(self) -> str:
        self.executor.shutdown()
        self.client.destroy_node()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        text = self.output()
        self._log.close()
        return text


TRANSITIONS = {
    "configure": Transition.TRANSITION_CONFIGURE,
    "activate": Transition.TRANSITION_ACTIVATE,
    "deactivate": Transition.TRANSITION_DEACTIVATE,
    "cleanup": Transition.TRANSITION_CLEANUP,
}


def in_process_node(context, namespace: str, params: dict):
    """A TrackerNode in this process (not configured: autostart off), for tests that
    inspect its rclpy entities or call its callbacks directly."""
    from rclpy.parameter import Parameter

    from seg2track_ros.ros.tracker_node import TrackerNode

    overrides = [
        Parameter(name, value=value) for name, value in {**params, "autostart": False}.items()
    ]
    return TrackerNode(context=context, namespace=namespace, parameter_overrides=overrides)
