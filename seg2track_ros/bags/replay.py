"""Replay a bag through a real tracker_node over DDS and collect its `tracks` output.

The node runs as a subprocess (its installed executable), in a namespace of its own so
nothing else on the ROS domain is disturbed. Frames are published exactly as stored in
the bag (CDR bytes, as `ros2 bag play` does). In lockstep the next frame goes out only
after the node answered the current one, so every frame is evaluated whatever the
speed; otherwise frames follow the bag's timing scaled by `rate`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seg2track_ros.bags.reader import BagMessagePair, read_pairs
from seg2track_ros.errors import UserFacingError
from seg2track_ros.executables import find_executable
from seg2track_ros.stamps import header_stamp_ns


class ReplayError(UserFacingError):
    """The replay could not run or the node did not answer; the message says why."""


@dataclass(frozen=True)
class ReplayOptions:
    lockstep: bool = True
    rate: float = 1.0
    params_files: Sequence[Path] = ()
    overrides: Mapping[str, Any] = field(default_factory=dict)
    startup_timeout_s: float = 300.0
    frame_timeout_s: float = 300.0
    # After the last frame outside lockstep: how long to wait for late outputs.
    drain_s: float = 5.0
    progress: bool = True
    # Where tracker_node's output goes: a file kept afterwards; None: a temporary file,
    # deleted after a successful replay and kept (its path in the error) after a failure.
    node_log: Path | None = None
    # Called with the log's path once the node is started (the CLI prints it).
    on_node_log: Callable[[Path], None] | None = None


class NodeLog:
    """tracker_node's stdout and stderr, in a file that outlives the node only when it
    is wanted: a given path is always kept; a temporary one only after a failure."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            handle, name = tempfile.mkstemp(prefix="seg2track_node_", suffix=".log")
            os.close(handle)
            self.path, self.keep = Path(name), False
        else:
            self.path, self.keep = Path(path), True
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.write_text("")
            except OSError as error:
                raise ReplayError(
                    f"cannot write the node log {path}: {error.strerror or error}"
                ) from None

    def tail(self, chars: int = 4000) -> str:
        return _tail(self.path, chars)

    def last_lines(self, count: int = 20) -> str:
        return "\n".join(self.tail(20_000).splitlines()[-count:])

    def warnings(self, limit: int = 10) -> list[str]:
        """The node's distinct lines other than ROS INFO/DEBUG ones (the first `limit`):
        its WARN and ERROR lines and what Python printed itself, e.g. the random-weights
        warning from the engine's logger."""
        seen: list[str] = []
        for line in _tail(self.path, 1_000_000).splitlines():
            quiet = line.startswith(("[INFO]", "[DEBUG]")) or not line.strip()
            if not quiet and line not in seen:
                seen.append(line)
                if len(seen) == limit:
                    break
        return seen

    def finish(self, succeeded: bool) -> Path | None:
        """Delete a temporary log after success; returns the path when it is kept."""
        if succeeded and not self.keep:
            self.path.unlink(missing_ok=True)
            return None
        return self.path


@dataclass
class ReplaySummary:
    frames_sent: int
    tracks_received: int
    node_log: str  # the log's last lines
    node_warnings: list[str] = field(default_factory=list)
    node_log_path: Path | None = None  # None: a temporary log, deleted
    # camera -> (frames sent, frames answered); one entry ("") for a one-camera replay
    per_camera: dict[str, tuple[int, int]] = field(default_factory=dict)


TracksCallback = Callable[[int, Any, bytes], None]  # frame index, message, raw CDR
Tracks3DCallback = Callable[[int, Any], None]  # frame index, seg2track_msgs/Track3DArray
CameraTracksCallback = Callable[[str, int, Any, bytes], None]  # camera, frame, msg, raw


@dataclass(frozen=True)
class ReplayCamera:
    """One camera of a several-camera replay: its name (an entry of the node's `cameras`
    parameter) and the topics of its images and detections in the bag."""

    name: str
    image_topic: str
    detections_topic: str


@dataclass
class _Stream:
    """One camera's frames on their way through the node: the bag's pairs, the node's
    topics (``<prefix>image``, ``<prefix>tracks``) and the frames answered so far."""

    name: str
    pairs: list[BagMessagePair]
    on_tracks: TracksCallback
    received: dict[int, int] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"{self.name}/" if self.name else ""


def replay_bag(
    bag: Path,
    options: ReplayOptions,
    on_tracks: TracksCallback,
    image_topic: str | None = None,
    on_tracks_3d: Tracks3DCallback | None = None,
    detections_topic: str | None = None,
) -> ReplaySummary:
    """Replay `bag` through tracker_node; `on_tracks(frame, msg, raw)` for each output.

    The bag's CameraInfo and PointCloud2 (if any) are published on the node's
    camera_info and points before each frame's image; with ``on_tracks_3d`` its
    tracks_3d_state outputs are passed on (the caller turns lift3d on).
    The node's log: see ``ReplayOptions.node_log``. A ReplayError names the kept log."""
    pairs = list(read_pairs(bag, image_topic, detections_topic))
    if not pairs:
        raise ReplayError(f"bag {bag} has no images")
    return _replay([_Stream("", pairs, on_tracks)], options, on_tracks_3d)


def replay_cameras(
    bag: Path,
    options: ReplayOptions,
    cameras: Sequence[ReplayCamera],
    on_tracks: CameraTracksCallback,
) -> ReplaySummary:
    """Replay each camera's images and detections of `bag` to one tracker_node serving
    them all (the caller's parameters name the same `cameras`, in this order);
    `on_tracks(camera, frame, msg, raw)` for each output, `frame` counting that
    camera's images from 0. Frames go out in stamp order, the frames of every camera
    with the same stamp together (one tick of the node); in lockstep the next stamp
    goes out once the node answered every frame of this one."""
    streams = []
    for camera in cameras:
        pairs = list(read_pairs(bag, camera.image_topic, camera.detections_topic))
        if not pairs:
            raise ReplayError(f"bag {bag} has no images on {camera.image_topic}")
        streams.append(
            _Stream(camera.name, pairs, lambda f, m, r, name=camera.name: on_tracks(name, f, m, r))
        )
    if len({stream.pairs[0].compressed for stream in streams}) > 1:
        raise ReplayError(
            "the cameras' images are of different types (Image and CompressedImage);"
            " the node takes one image transport for every camera"
        )
    return _replay(streams, options, None)


def _replay(
    streams: list[_Stream], options: ReplayOptions, on_tracks_3d: Tracks3DCallback | None
) -> ReplaySummary:
    if options.rate <= 0:
        raise ReplayError("rate must be > 0")
    namespace = f"seg2track_replay_{os.getpid()}"
    compressed = streams[0].pairs[0].compressed
    process, log = start_tracker_node(namespace, options, compressed=compressed)
    if options.on_node_log is not None:
        options.on_node_log(log.path)
    try:
        sent = _replay_through(process, log, streams, namespace, options, on_tracks_3d)
    except ReplayError as error:
        stop_node(process)
        raise ReplayError(
            f"{error} (tracker_node's log: {log.path})", details=error.details
        ) from None
    except BaseException:
        stop_node(process)
        raise
    stop_node(process)
    answered = {stream.name: sum(stream.received.values()) for stream in streams}
    summary = ReplaySummary(sent, sum(answered.values()), log.tail(), log.warnings())
    summary.per_camera = {s.name: (len(s.pairs), answered[s.name]) for s in streams}
    summary.node_log_path = log.finish(succeeded=True)
    return summary


def _ticks(streams: list[_Stream]) -> list[tuple[int, list[tuple[_Stream, int]]]]:
    """(stamp, [(stream, frame index)]) in stamp order: each stamp's frames of every
    camera that has one, in the order of the cameras."""
    by_stamp: dict[int, list[tuple[_Stream, int]]] = {}
    for stream in streams:
        for index, pair in enumerate(stream.pairs):
            by_stamp.setdefault(pair.stamp_ns, []).append((stream, index))
    return sorted(by_stamp.items(), key=lambda item: item[0])


def _replay_through(
    process: subprocess.Popen,
    log: NodeLog,
    streams: list[_Stream],
    namespace: str,
    options: ReplayOptions,
    on_tracks_3d: Tracks3DCallback | None = None,
) -> int:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.serialization import deserialize_message
    from seg2track_msgs.msg import Track3DArray, TrackedObjectArray
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
    from vision_msgs.msg import Detection2DArray

    # A bag of CompressedImage (kitti-to-bag --compressed, most camera recordings) is
    # played as such: the node subscribes to image/compressed and decodes it.
    compressed = streams[0].pairs[0].compressed
    context = Context()
    rclpy.init(context=context)
    node = Node("seg2track_replay", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    publishers = {}
    for stream in streams:
        frame_of = {pair.stamp_ns: index for index, pair in enumerate(stream.pairs)}

        def on_raw(raw: bytes, stream=stream, frame_of=frame_of) -> None:
            message = deserialize_message(raw, TrackedObjectArray)
            frame = frame_of.get(header_stamp_ns(message.header))
            if frame is None:
                return  # not one of ours
            stream.received[frame] = stream.received.get(frame, 0) + 1
            stream.on_tracks(frame, message, raw)

        base = f"/{namespace}/{stream.prefix}"
        node.create_subscription(TrackedObjectArray, f"{base}tracks", on_raw, qos, raw=True)
        if compressed:
            images = node.create_publisher(CompressedImage, f"{base}image/compressed", qos)
        else:
            images = node.create_publisher(Image, f"{base}image", qos)
        detections = node.create_publisher(Detection2DArray, f"{base}detections", qos)
        publishers[stream.name] = (images, detections)
    # The 3-D inputs of a one-camera replay (lift3d serves one camera only).
    extras = None
    received_3d: set[int] = set()
    lifted: list = []  # with 3-D outputs wanted: the 3-D inputs the node must hear first
    if len(streams) == 1 and not streams[0].name:
        extras = (
            node.create_publisher(CameraInfo, f"/{namespace}/camera_info", qos),
            node.create_publisher(PointCloud2, f"/{namespace}/points", qos),
        )
        if on_tracks_3d is not None:
            frame_of_3d = {pair.stamp_ns: i for i, pair in enumerate(streams[0].pairs)}

            def on_3d(message) -> None:
                frame = frame_of_3d.get(header_stamp_ns(message.header))
                if frame is not None:
                    received_3d.add(frame)
                    on_tracks_3d(frame, message)

            node.create_subscription(Track3DArray, f"/{namespace}/tracks_3d_state", on_3d, qos)
            lifted = list(extras)

    def spin_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
        spin_node_until(executor, process, log, condition, timeout, what)

    def subscribed() -> bool:
        # With 3-D outputs wanted (lift3d on, source points) the node's camera_info and
        # points subscriptions and its tracks_3d_state publisher must be matched too:
        # otherwise the first frame's 3-D inputs or output can be lost in discovery.
        outputs_3d = f"/{namespace}/tracks_3d_state"
        return (
            all(
                images.get_subscription_count() > 0 and detections.get_subscription_count() > 0
                for images, detections in publishers.values()
            )
            and all(publisher.get_subscription_count() > 0 for publisher in lifted)
            and (not lifted or node.count_publishers(outputs_3d) > 0)
        )

    ticks = _ticks(streams)
    total = sum(len(stream.pairs) for stream in streams)
    sent = 0
    try:
        spin_until(
            subscribed,
            options.startup_timeout_s,
            "waiting for tracker_node to start (model loading)",
        )
        progress = _progress(options.progress, total)
        started_wall, first_stamp = time.monotonic(), ticks[0][0]
        for stamp, frames in ticks:
            if not options.lockstep:
                due = started_wall + (stamp - first_stamp) / 1e9 / options.rate
                spin_until(lambda due=due: time.monotonic() >= due, 1e9, "playing")
            for stream, index in frames:
                _publish(*publishers[stream.name], stream.pairs[index], extras)
                sent += 1
            if options.lockstep:
                spin_until(
                    lambda frames=frames: all(i in s.received for s, i in frames),
                    options.frame_timeout_s,
                    "waiting for the tracks of " + ", ".join(_frame_name(s, i) for s, i in frames),
                )
            progress.update(len(frames))
        if on_tracks_3d is not None and extras is not None:
            # 3-D outputs follow their frame's 2-D ones: wait briefly for the last
            last = len(streams[0].pairs) - 1
            deadline = time.monotonic() + 2.0
            spin_until(
                lambda: last in received_3d or time.monotonic() > deadline,
                3.0,
                "waiting for the last 3-D tracks",
            )
        if not options.lockstep:
            deadline = time.monotonic() + options.drain_s
            spin_until(
                lambda: (
                    all(len(s.received) == len(s.pairs) for s in streams)
                    or time.monotonic() > deadline
                ),
                options.drain_s + 1,
                "draining",
            )
        progress.close()
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
    return sent


def _frame_name(stream: _Stream, index: int) -> str:
    return f"camera {stream.name} frame {index}" if stream.name else f"frame {index}"


def _publish(images, detections, pair: BagMessagePair, extras=None) -> None:
    # The 3-D inputs first: the node looks them up when it publishes the frame.
    if extras is not None:
        camera_info, points = extras
        if pair.camera_info_cdr is not None:
            camera_info.publish(pair.camera_info_cdr)
        if pair.points_cdr is not None:
            points.publish(pair.points_cdr)
    images.publish(pair.image_cdr)
    if pair.detections_cdr is not None:
        detections.publish(pair.detections_cdr)


def start_tracker_node(
    namespace: str,
    options: ReplayOptions,
    node_name: str | None = None,
    *,
    compressed: bool = False,
) -> tuple[subprocess.Popen, NodeLog]:
    """tracker_node as a subprocess in `namespace` (renamed to `node_name` when given),
    its output in a NodeLog (call its ``finish`` when done); with `compressed` it takes
    sensor_msgs/CompressedImage on image/compressed."""
    executable = str(find_executable("tracker_node"))
    from seg2track_ros.params import load_params_file

    args = [executable, "--ros-args", "-r", f"__ns:=/{namespace}"]
    if node_name is not None:
        args += ["-r", f"__node:={node_name}"]
    # The files are read by the one loader every command uses (both YAML shapes) and
    # their values handed over as -p, so the node gets exactly what `run` would use.
    from_files: dict[str, Any] = {}
    for path in options.params_files:
        if not Path(path).is_file():
            raise ReplayError(f"parameters file {path} not found")
        from_files.update(load_params_file(Path(path)))
    forced = {
        "mode": "lockstep" if options.lockstep else "realtime",
        "input_reliability": "reliable",
        "image_topic": "image",
        "image_transport": "compressed" if compressed else "raw",
        "detections_topic": "detections",
        "autostart": True,
    }
    for key, value in {**from_files, **options.overrides, **forced}.items():
        args += ["-p", f"{key}:={_ros_value(value)}"]
    log = NodeLog(options.node_log)
    with open(log.path, "w") as handle:
        process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT)
    return process, log


def stop_node(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def spin_node_until(
    executor,
    process: subprocess.Popen,
    log: NodeLog,
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    tick: float = 0.01,
    raise_on_timeout: bool = True,
) -> bool:
    """Spin `executor` until `condition()` holds. Raises ReplayError when tracker_node
    exits or its configure failed (a node whose configure failed stays alive, so it can
    be configured again; for a replay or a benchmark that is the end, with the node's
    own reason), and on timeout unless `raise_on_timeout` is False (then returns False)."""
    return spin_nodes_until(
        executor,
        [(process, log)],
        condition,
        timeout,
        what,
        tick=tick,
        raise_on_timeout=raise_on_timeout,
    )


def spin_nodes_until(
    executor,
    nodes: Sequence[tuple[subprocess.Popen, NodeLog]],
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    tick: float = 0.01,
    raise_on_timeout: bool = True,
) -> bool:
    """`spin_node_until` over several tracker_node processes: any one that exits or
    whose configure failed ends the wait with its own reason."""
    deadline = time.monotonic() + timeout
    next_log_check = 0.0
    while not condition():
        for process, log in nodes:
            if process.poll() is not None:
                raise ReplayError(f"tracker_node exited while {what}", details=log.last_lines())
        if time.monotonic() > next_log_check:
            for _process, log in nodes:
                failure = configure_failure(log)
                if failure:
                    raise ReplayError(f"tracker_node {failure}")
            next_log_check = time.monotonic() + 0.5
        if time.monotonic() > deadline:
            if not raise_on_timeout:
                return False
            details = "\n".join(log.last_lines() for _process, log in nodes)
            raise ReplayError(f"timed out after {timeout:.0f} s {what}", details=details)
        executor.spin_once(timeout_sec=tick)
    return True


def configure_failure(log: NodeLog) -> str | None:
    for line in log.tail(20_000).splitlines():
        if "configure failed:" in line:
            return line[line.index("configure failed:") :]
    return None


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text()[-chars:]
    except OSError:
        return ""


def _ros_value(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(enabled: bool, total: int):
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="replay", leave=False)
