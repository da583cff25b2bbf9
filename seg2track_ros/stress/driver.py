"""tracker_node under stress: the installed executable in a subprocess (its own
namespace and node name), and a client node in this process that feeds it, collects its
outputs and diagnostics, walks its lifecycle, and reads its RSS, CPU time and the ROS
graph's subscription and publisher counts.

Nothing here blocks without a bound: every wait takes a timeout and returns whether its
condition came true.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from seg2track_ros.bags.replay import (
    ReplayOptions,
    configure_failure,
    start_tracker_node,
    stop_node,
)
from seg2track_ros.errors import UserFacingError
from seg2track_ros.stamps import header_stamp_ns

INPUTS = ("image", "detections")
OUTPUTS = ("tracks", "tracked_detections", "instance_labels")
TRANSITION_IDS = {"configure": 1, "cleanup": 2, "activate": 3, "deactivate": 4}
# Where each transition ends when it succeeds (lifecycle_msgs/State labels).
TRANSITION_GOALS = {
    "configure": "inactive",
    "cleanup": "unconfigured",
    "activate": "active",
    "deactivate": "inactive",
}
# Log lines that mean something broke inside the node (beyond a counted rejection).
_BROKEN = re.compile(r"Traceback \(most recent call last\)|Segmentation fault|core dumped")


class StressError(UserFacingError):
    """The stress suite could not start or talk to tracker_node; the message says why."""


class NodeDriver:
    """One tracker_node process and the client that drives it (use as a context
    manager; the node is stopped on exit)."""

    def __init__(self, label: str, params: Mapping[str, Any], *, lockstep: bool = True) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from lifecycle_msgs.srv import ChangeState, GetState
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from seg2track_msgs.msg import TrackedObjectArray
        from sensor_msgs.msg import Image
        from vision_msgs.msg import Detection2DArray

        tag = f"{label.replace('-', '_')}_{os.getpid()}"
        self.namespace = f"s2t_stress_{tag}"
        self.node_name = f"stress_{tag}"
        self.process, self.node_log = start_tracker_node(
            self.namespace, ReplayOptions(lockstep=lockstep, overrides=dict(params)), self.node_name
        )
        self.log_path = self.node_log.path
        self.pid = self.process.pid
        self._context = Context()
        rclpy.init(context=self._context)
        self.client = Node(f"stress_client_{tag}", context=self._context)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self.client)
        qos = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
        base = f"/{self.namespace}"
        # stamp -> (outputs with that stamp, objects in the last one, its largest track id)
        self.outputs: dict[int, tuple[int, int, int]] = {}
        self.track_ids: set[int] = set()
        self.client.create_subscription(TrackedObjectArray, f"{base}/tracks", self._on_tracks, qos)
        self.diagnostics: dict[str, str] = {}
        self.diagnostics_received = 0
        self._status_name = f"{self.node_name}: seg2track"
        self.client.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, qos)
        self.images = self.client.create_publisher(Image, f"{base}/image", qos)
        self.detections = self.client.create_publisher(Detection2DArray, f"{base}/detections", qos)
        node_path = f"{base}/{self.node_name}"
        self._change_state = self.client.create_client(ChangeState, f"{node_path}/change_state")
        self._get_state = self.client.create_client(GetState, f"{node_path}/get_state")
        self.lost_responses = 0  # change_state answers lost in transit (state checked instead)
        self.exit_code: int | None = None

    # ------------------------------------------------------------------ plumbing
    def __enter__(self) -> NodeDriver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._context is None:
            return
        self._executor.shutdown()
        self.client.destroy_node()
        self._context.try_shutdown()
        self._context = None
        stop_node(self.process)
        self.exit_code = self.process.returncode

    def _on_tracks(self, msg) -> None:
        stamp = header_stamp_ns(msg.header)
        ids = [obj.track_id for obj in msg.objects]
        count = self.outputs.get(stamp, (0, 0, 0))[0]
        self.outputs[stamp] = (count + 1, len(ids), max(ids, default=0))
        self.track_ids.update(ids)

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name == self._status_name:
                self.diagnostics = {kv.key: kv.value for kv in status.values}
                self.diagnostics_received += 1

    def alive(self) -> bool:
        return self.process.poll() is None

    def spin_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Spin until `condition()` or `timeout` seconds; False on timeout or when the
        node died (see `alive`)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline or not self.alive():
                return condition()
            self._executor.spin_once(timeout_sec=0.005)
        return True

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Until the node subscribes to both inputs (it configured and activated)."""
        ready = self.spin_until(self.subscribed, timeout)
        if not ready:
            failure = configure_failure(self.node_log)
            why = failure or ("exited" if not self.alive() else f"not ready after {timeout:.0f} s")
            raise StressError(f"tracker_node {why}:\n{self.log_tail()}")

    def subscribed(self) -> bool:
        return (
            self.images.get_subscription_count() > 0
            and self.detections.get_subscription_count() > 0
        )

    # ------------------------------------------------------------------ feeding
    def publish(self, image=None, detections=None) -> None:
        if image is not None:
            self.images.publish(image)
        if detections is not None:
            self.detections.publish(detections)

    def output_count(self, stamp: int) -> int:
        return self.outputs.get(stamp, (0, 0, 0))[0]

    def wait_outputs(self, stamps, timeout: float) -> bool:
        pending = [s for s in stamps if s not in self.outputs]
        return self.spin_until(lambda: all(s in self.outputs for s in pending), timeout)

    def wait_diagnostics(self, timeout: float, after: int | None = None) -> bool:
        """Until a /diagnostics message newer than the `after`-th arrives."""
        seen = self.diagnostics_received if after is None else after
        return self.spin_until(lambda: self.diagnostics_received > seen, timeout)

    def counter(self, key: str) -> int:
        return int(float(self.diagnostics.get(key, 0)))

    # ------------------------------------------------------------------ lifecycle
    def transition(self, name: str, timeout: float = 60.0) -> bool:
        """Request a lifecycle transition; True when the node reports success. A
        response lost in transit (seen under load) is settled by asking the state."""
        from lifecycle_msgs.srv import ChangeState

        if not self._change_state.wait_for_service(timeout_sec=timeout):
            return False
        request = ChangeState.Request()
        request.transition.id = TRANSITION_IDS[name]
        future = self._change_state.call_async(request)
        if self.spin_until(future.done, timeout):
            return bool(future.result().success)
        self._change_state.remove_pending_request(future)
        self.lost_responses += 1
        return self.state() == TRANSITION_GOALS[name]

    def state(self, timeout: float = 30.0) -> str | None:
        from lifecycle_msgs.srv import GetState

        for _attempt in range(3):  # idempotent: retried when an answer is lost
            if not self._get_state.wait_for_service(timeout_sec=timeout):
                return None
            future = self._get_state.call_async(GetState.Request())
            if self.spin_until(future.done, timeout / 2):
                return future.result().current_state.label
            self._get_state.remove_pending_request(future)
        return None

    # ------------------------------------------------------------------ measuring
    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise StressError(f"no VmRSS for tracker_node (pid {self.pid})")

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def graph_counts(self) -> dict[str, int]:
        """Subscriptions on the node's inputs and publishers of its outputs and of
        /diagnostics, as the ROS graph sees them (what `ros2 topic info` reports)."""
        base = f"/{self.namespace}"
        counts = {
            f"{t}_subscriptions": self.client.count_subscribers(f"{base}/{t}") for t in INPUTS
        }
        for topic in OUTPUTS:
            counts[f"{topic}_publishers"] = self.client.count_publishers(f"{base}/{topic}")
        counts["diagnostics_publishers"] = sum(
            1
            for info in self.client.get_publishers_info_by_topic("/diagnostics")
            if info.node_namespace == base
        )
        return counts

    def log_text(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_text()[-chars:]

    def broken_log_lines(self) -> int:
        """Tracebacks and crashes the node printed (a counted rejection prints none)."""
        return len(_BROKEN.findall(self.log_text()))
