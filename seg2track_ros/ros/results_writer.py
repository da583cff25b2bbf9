"""results_writer: a node that writes `tracks` to a KITTI MOTS or MOTS20 results file.

Used by launch/kitti_replay.launch.py next to `ros2 bag play`; `seg2track replay` uses
the same ``rows_from_msg`` + ``ResultsRecorder``, so both write identical files.
Frame indices: with the ``bag`` parameter, the image stamps in that bag (in order) define
them, as in the dataset; without it, the order in which `tracks` messages arrive.
With ``bag``, the node exits once it has written the bag's last frame (nothing more can
come), which ends kitti_replay.launch.py.
"""

from __future__ import annotations

from pathlib import Path

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from seg2track_msgs.msg import TrackedObjectArray

from seg2track_ros.classmap import DEFAULT_SPEC, describe_unmapped, parse_class_map
from seg2track_ros.engine.types import TrackState
from seg2track_ros.results import ResultRow, ResultsRecorder, parse_states
from seg2track_ros.ros import shutdown
from seg2track_ros.ros.conversions import rle_msg_to_mask
from seg2track_ros.ros.shutdown import ShutdownSignals, StartupInterrupted
from seg2track_ros.stamps import header_stamp_ns


def rows_from_msg(msg: TrackedObjectArray) -> list[ResultRow]:
    return [
        ResultRow(obj.track_id, obj.class_id, TrackState(obj.state), rle_msg_to_mask(obj.mask) > 0)
        for obj in msg.objects
    ]


class ResultsWriterNode(Node):
    def __init__(self) -> None:
        super().__init__("results_writer")
        self.declare_parameter("results", "results/0000.txt")
        self.declare_parameter("format", "kitti_mots")
        self.declare_parameter("states", "confirmed,occluded,lost")
        self.declare_parameter("bag", "")
        self.declare_parameter(
            "class_map",
            DEFAULT_SPEC,
            ParameterDescriptor(
                description="detector class -> benchmark class: 'coco' (person/0 ->"
                " pedestrian, car/2 -> car), 'none', items like 'coco,truck=car', or a"
                " YAML file; tracks of unmapped classes are left out, warned and counted"
            ),
        )
        path = Path(self.get_parameter("results").value)
        states = parse_states(self.get_parameter("states").value)
        class_map = parse_class_map(self.get_parameter("class_map").value)
        self._recorder = ResultsRecorder(
            path,
            self.get_parameter("format").value,
            states,
            class_map,
            warn=self.get_logger().warning,
        )
        self._frame_of: dict[int, int] | None = None
        bag = self.get_parameter("bag").value
        if bag:
            from seg2track_ros.bags.reader import read_image_stamps

            self._frame_of = {s: i for i, s in enumerate(read_image_stamps(Path(bag)))}
        self._next = 0
        self._last = -1
        self.done = False  # the bag's last frame is written
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(TrackedObjectArray, "tracks", self._on_tracks, qos)
        self.get_logger().info(f"writing {path}")

    def _on_tracks(self, msg: TrackedObjectArray) -> None:
        if self._frame_of is not None:
            frame = self._frame_of.get(header_stamp_ns(msg.header))
            if frame is None:
                self.get_logger().warning("tracks with a stamp not in the bag: ignored")
                return
        else:
            frame = self._next
        if frame <= self._last:
            self.get_logger().warning(f"frame {frame} arrived out of order: ignored")
            return
        self._recorder.add(frame, rows_from_msg(msg))
        self._last, self._next = frame, frame + 1
        if self._frame_of is not None and frame == len(self._frame_of) - 1:
            self.get_logger().info(f"frame {frame} is the bag's last: done")
            self.done = True

    def close(self) -> None:
        summary = self._recorder.close()
        unmapped = describe_unmapped(summary.unmapped_tracks)
        self.get_logger().info(
            f"wrote {summary.lines} lines for {summary.frames} frames"
            + (f"; {unmapped}" if unmapped else "")
        )


def main(args=None, signals: ShutdownSignals | None = None) -> None:
    # Signals are handled here, not by rclpy: see seg2track_ros.ros.shutdown. The console
    # script installs the handlers before importing this module (entry_points.py).
    if signals is None:
        signals = ShutdownSignals()
        signals.install()
    node = executor = None
    try:
        shutdown.init(args)
        node = ResultsWriterNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        signals.started()
        signals.spin(executor, until=lambda: node.done)
    except (StartupInterrupted, ExternalShutdownException):
        pass
    finally:
        signals.started()  # further signals are ignored: nothing interrupts the teardown
        if node is not None:
            # Before the context goes: the summary logged here reaches /rosout.
            node.close()
            node.destroy_node()
        if executor is not None:
            executor.shutdown()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
