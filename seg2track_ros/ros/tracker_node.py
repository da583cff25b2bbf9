"""tracker_node: the ROS 2 lifecycle node around the Seg2Track engine.

A thin adapter: messages in (conversions.py), pairing (sync.py), one worker thread that
calls the engine, messages out. All tracking logic lives in the engine.

Several cameras (parameter ``cameras``): each camera has its own topics
('<camera>/image', ... '<camera>/tracks'), pairing, queue, counters and reset service,
and its own stream in one ``MultiStreamTracker`` (one model for all). The worker takes
one frame of every camera that has one per tick (realtime: each camera's newest;
lockstep: each camera's oldest), so no camera starves another, and tracks them in one
engine call. One unnamed camera (the default) is the plain topics of a single-camera node.

Lifecycle: configure reads and validates parameters and loads the model (a failure
leaves the node unconfigured and alive, so it can be configured again); activate
subscribes and starts the worker; deactivate stops them and frees the model (activate
loads it again); cleanup drops publishers and settings. With ``autostart`` (default) the
node walks itself to active.
"""

from __future__ import annotations

import collections
import functools
import math
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from seg2track_msgs.msg import Track3DArray, TrackedObjectArray
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2DArray, Detection3DArray
from visualization_msgs.msg import MarkerArray

from seg2track_ros.classmap import DetectionClassMapper, parse_class_map
from seg2track_ros.engine.checkpoints import CheckpointError
from seg2track_ros.engine.config import ConfigError, EngineConfig
from seg2track_ros.engine.tracker import TrackerStepError
from seg2track_ros.engine.types import Detections
from seg2track_ros.params import camera_topic
from seg2track_ros.ros import shutdown
from seg2track_ros.ros.conversions import (
    ImageConverter,
    RejectedInput,
    bgr_to_image_msg,
    compressed_image_to_rgb,
    detections_from_msg,
    step_to_msgs,
)
from seg2track_ros.ros.conversions3d import (
    tracks3d_to_detections_msg,
    tracks3d_to_markers,
    tracks3d_to_state_msg,
)
from seg2track_ros.ros.lift3d_stage import Lift3DStage
from seg2track_ros.ros.parameters import (
    NodeSettings,
    ParameterError,
    declare_parameters,
    read_parameters,
)
from seg2track_ros.ros.shutdown import ShutdownSignals, StartupInterrupted
from seg2track_ros.ros.stamp_gaps import StampGapCounter
from seg2track_ros.ros.sync import StampSynchronizer, SyncedPair
from seg2track_ros.stamps import header_stamp_ns
from seg2track_ros.visualize import overlay_image

OUTPUT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
WARN_EVERY_S = 5.0
# Several cameras: the worker waits (camera_gather_window) only for cameras that were in
# one of the last GATHER_TICKS ticks, so a camera that stopped publishing costs nothing.
GATHER_TICKS = 3
LOCKSTEP_QUEUE = 10_000  # frames; the byte bound (lockstep_queue_bytes) usually binds first
# Longest wait for the worker threads to finish their frame: on deactivate or cleanup,
# and at process shutdown (ros2 launch sends SIGTERM 5 s after SIGINT, SIGKILL 5 s later).
STOP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 4.0
# The worker re-reads the segmenter's memory figure at most this often (seconds).
MEMORY_READ_EVERY_S = 0.25


def _never_raises(callback):
    """Executor callbacks must not raise: an exception ends spin() and the process.
    One that does is logged (throttled per callback) and counted in diagnostics."""

    @functools.wraps(callback)
    def guarded(self, *args, **kwargs):
        try:
            return callback(self, *args, **kwargs)
        except Exception as error:
            self._callback_failed(callback.__name__, error)
            return None

    return guarded


@dataclass
class _Frame:
    header: object
    rgb: np.ndarray
    detections_msg: Detection2DArray | None
    received_ns: int


@dataclass
class _Stats:
    """Counters for /diagnostics (guarded by the node's stats lock)."""

    frames_in: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    rejected: collections.Counter = field(default_factory=collections.Counter)
    stamp_latency_ms: collections.deque = field(
        default_factory=lambda: collections.deque(maxlen=300)
    )
    processing_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=300))
    processed_times: collections.deque = field(
        default_factory=lambda: collections.deque(maxlen=300)
    )
    active_tracks: int = 0
    callback_errors: collections.Counter = field(default_factory=collections.Counter)
    images_without_detections: collections.Counter = field(default_factory=collections.Counter)
    queue_bytes_peak: int = 0  # most image bytes ever waiting to be tracked
    # Tracked, but outside what every threshold assumes (logits? percentages?).
    detection_scores_outside_0_1: int = 0
    images_missed: int = 0  # images missing in the stamp sequence (lost before the node)
    tracks_3d: int = 0  # tracks with a 3-D output on the last frame that had 3-D input


class _Camera:
    """One camera's inputs, outputs, pairing, queue and counters. ``name`` "" is the
    unnamed camera of a single-camera node (plain topics)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = _Stats()
        self.queue: collections.deque[_Frame] = collections.deque()
        self.queue_bytes = 0  # image bytes in queue (guarded by the node's _queue_ready)
        self.sync: StampSynchronizer | None = None
        self.gaps = StampGapCounter()
        self.last_stamp_ns: int | None = None
        self.last_size: tuple[int, int] | None = None
        self.warned_rotated = False
        self.last_tick = -GATHER_TICKS - 1  # index of the last worker tick it was in
        self.image_subscription = None
        self.detections_subscription = None
        self.sync_timer = None
        self.tracks_pub = None
        self.detections_pub = None
        self.labels_pub = None
        self.overlay_pub = None
        self.reset_service = None

    def topic(self, name: str) -> str:
        """This camera's topic ``name`` (params.camera_topic)."""
        return camera_topic(self.name, name)

    @property
    def label(self) -> str:
        return self.name or "camera"


_UNPAIRED_WHY = {
    "timeout": "its detections did not arrive within sync_timeout",
    "overtaken": "detections of a later image arrived first",
    "queue_full": "more than sync_queue images were waiting",
}


class TrackerNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("tracker_node", **kwargs)
        self._refused = declare_parameters(self)
        self.add_post_set_parameters_callback(self._on_parameters_set)
        self._config: EngineConfig | None = None
        self._settings: NodeSettings | None = None
        self._class_mapper: DetectionClassMapper | None = None
        self._tracker = None
        self._segmenter = None
        self._engine_lock = threading.Lock()
        # Held while publishing outputs and while destroying publishers: the worker
        # threads never publish on a destroyed publisher or after processing stopped.
        self._outputs_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._ticks = 0  # worker ticks since start (the worker's only; never reset)
        # cameras tracked together in each of the last ticks (diagnostics, under stats lock)
        self._tick_cameras: collections.deque[int] = collections.deque(maxlen=100)
        # Camera name -> its state; one unnamed camera until configure reads 'cameras'.
        self._cameras: dict[str, _Camera] = {"": _Camera("")}
        self._queue_ready = threading.Condition()
        self._worker: threading.Thread | None = None
        # Realtime mode: frame t is serialised and published here while the worker
        # tracks frame t + 1. One slot: the engine is never more than a frame ahead.
        self._outbox: queue.Queue = queue.Queue(maxsize=1)
        self._publisher: threading.Thread | None = None
        self._running = False
        # Never name these like rclpy's own lists (Node._subscriptions, _timers,
        # _publishers, ...): assigning one replaces rclpy's list and destroy_* then
        # skips entities (leaked subscriptions and timers, an idle node spinning).
        self._diagnostics_timer = None
        self._diagnostics_pub = None
        # The optional 3-D stage (lift3d.enabled): its inputs and outputs.
        self._lift3d: Lift3DStage | None = None
        self._camera_info_subscription = None
        self._lift3d_input_subscription = None
        self._tracks3d_pub = None
        self._tracks3d_state_pub = None
        self._markers_pub = None
        self._tf_listener = None
        self._converter: ImageConverter | None = None
        # The segmenter's stored-tensor bytes, read by the worker under the engine lock
        # (the segmenter changes its memory while it steps): diagnostics read only this.
        self._tracker_memory_bytes: int | None = None
        self._memory_read_at = -math.inf
        self._last_warning: dict[str, float] = {}  # throttle key -> monotonic time
        self.create_service(Trigger, "~/reset", self._on_reset)

    # The first camera's state under the single-camera node's names.
    @property
    def _camera(self) -> _Camera:
        return next(iter(self._cameras.values()))

    @property
    def _stats(self) -> _Stats:
        return self._camera.stats

    @property
    def _queue(self) -> collections.deque[_Frame]:
        return self._camera.queue

    @property
    def _queue_bytes(self) -> int:
        return self._camera.queue_bytes

    @property
    def _sync(self) -> StampSynchronizer | None:
        return self._camera.sync

    @property
    def _gaps(self) -> StampGapCounter:
        return self._camera.gaps

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._config, self._settings = read_parameters(self, self._refused)
        except ParameterError as error:
            self.get_logger().error(f"configure failed: {error}")
            return TransitionCallbackReturn.FAILURE
        self._set_cameras(self._settings.cameras)
        if not self._load_engine():
            return TransitionCallbackReturn.FAILURE
        settings = self._settings
        for camera in self._cameras.values():
            camera.tracks_pub = self.create_lifecycle_publisher(
                TrackedObjectArray, camera.topic("tracks"), OUTPUT_QOS
            )
            camera.detections_pub = self.create_lifecycle_publisher(
                Detection2DArray, camera.topic("tracked_detections"), OUTPUT_QOS
            )
            camera.labels_pub = self.create_lifecycle_publisher(
                Image, camera.topic("instance_labels"), OUTPUT_QOS
            )
            camera.overlay_pub = (
                self.create_lifecycle_publisher(Image, camera.topic("overlay"), OUTPUT_QOS)
                if settings.publish_overlay
                else None
            )
            if camera.name and camera.reset_service is None:
                camera.reset_service = self.create_service(
                    Trigger,
                    f"~/{camera.name}/reset",
                    functools.partial(self._on_reset, camera=camera.name),
                )
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", OUTPUT_QOS)
        self._configure_lift3d()
        self._converter = ImageConverter(max_pixels=settings.max_image_pixels)
        self._class_mapper = (
            DetectionClassMapper(parse_class_map(settings.class_map), self.get_logger().warning)
            if settings.class_map
            else None
        )
        for camera in self._cameras.values():
            camera.gaps = StampGapCounter(settings.expected_image_rate)
            camera.sync = StampSynchronizer(
                slop_ns=int(settings.sync_slop * 1e9),
                timeout_ns=int(settings.sync_timeout * 1e9),
                max_pending=settings.sync_queue,
            )
        self._create_inputs()
        segmenter = f"segmenter {settings.segmenter}"
        if settings.segmenter == "sam2":
            segmenter += (
                f" (model {self._config.segmenter.model},"
                f" image_size {self._config.segmenter.image_size})"
            )
        cameras = f", cameras {', '.join(self._cameras)}" if list(self._cameras) != [""] else ""
        self.get_logger().info(
            f"configured: {segmenter} on {self._segmenter.device}, mode {settings.mode},"
            f" images via {self._converter.backend}{cameras}"
        )
        return TransitionCallbackReturn.SUCCESS

    def _configure_lift3d(self) -> None:
        """The 3-D stage and its publishers, only with lift3d.enabled. It serves the one
        camera (configuration refuses lift3d with several); a named camera's 3-D topics
        are under its name, like its 2-D ones."""
        self._lift3d = None
        lift = self._settings.lift3d
        if not lift.enabled:
            return
        tf_buffer = None
        if lift.source == "points" and not lift.static_transform:
            try:
                import tf2_ros
            except ImportError:
                self.get_logger().warning(
                    "lift3d: no lift3d.static_transform and tf2_ros is not installed: every"
                    " point cloud is rejected (transform_missing) until the transform is set"
                )
            else:
                if self._tf_listener is None:  # one listener for the node's life
                    self._tf_listener = tf2_ros.TransformListener(tf2_ros.Buffer(), self)
                tf_buffer = self._tf_listener.buffer
        self._lift3d = Lift3DStage(lift, tf_buffer, self._settings.max_image_pixels)
        self._tracks3d_pub = self.create_lifecycle_publisher(
            Detection3DArray, self._camera.topic("tracks_3d"), OUTPUT_QOS
        )
        self._tracks3d_state_pub = self.create_lifecycle_publisher(
            Track3DArray, self._camera.topic("tracks_3d_state"), OUTPUT_QOS
        )
        if lift.publish_markers:
            self._markers_pub = self.create_lifecycle_publisher(
                MarkerArray, self._camera.topic("markers"), OUTPUT_QOS
            )

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._tracker is None and not self._load_engine():
            return TransitionCallbackReturn.FAILURE
        for camera in self._cameras.values():
            camera.sync.reset()
            camera.gaps.reset()
            camera.last_tick = self._ticks  # every camera is expected in the first ticks
        self._running = True
        self._worker = threading.Thread(target=self._work, name="seg2track_worker", daemon=True)
        self._worker.start()
        if self._settings.mode == "realtime":
            self._publisher = threading.Thread(
                target=self._publish_work, name="seg2track_publisher", daemon=True
            )
            self._publisher.start()
        settings = self._settings
        image_topic = (
            compressed_topic(settings.image_topic)
            if settings.image_transport == "compressed"
            else settings.image_topic
        )
        for camera in self._cameras.values():
            self.get_logger().info(
                f"active: '{self.resolve_topic_name(camera.topic(image_topic))}' +"
                f" '{self.resolve_topic_name(camera.topic(settings.detections_topic))}' ->"
                f" '{self.resolve_topic_name(camera.topic('tracks'))}'"
            )
        return super().on_activate(state)

    def _create_inputs(self) -> None:
        """Subscriptions and timers live from configure to cleanup; while the node is not
        active their callbacks drop the input."""
        self._destroy_inputs()
        settings = self._settings
        if settings.input_reliability == "reliable":
            input_qos = QoSProfile(
                depth=settings.input_depth, reliability=ReliabilityPolicy.RELIABLE
            )
        else:
            input_qos = QoSProfile(
                depth=settings.input_depth,
                reliability=qos_profile_sensor_data.reliability,
                history=qos_profile_sensor_data.history,
                durability=qos_profile_sensor_data.durability,
            )
        for camera in self._cameras.values():
            if settings.image_transport == "compressed":
                camera.image_subscription = self.create_subscription(
                    CompressedImage,
                    camera.topic(compressed_topic(settings.image_topic)),
                    self._for_camera(self._on_compressed_image, camera),
                    input_qos,
                )
            else:
                camera.image_subscription = self.create_subscription(
                    Image,
                    camera.topic(settings.image_topic),
                    self._for_camera(self._on_image, camera),
                    input_qos,
                )
            camera.detections_subscription = self.create_subscription(
                Detection2DArray,
                camera.topic(settings.detections_topic),
                self._for_camera(self._on_detections, camera),
                input_qos,
            )
            # Runs only while images wait for their detections (_on_image re-arms it): a
            # 50 Hz timer firing for nothing cost an idle node several % of a core.
            camera.sync_timer = self.create_timer(
                0.02, self._for_camera(self._on_sync_timer, camera)
            )
            camera.sync_timer.cancel()
        lift = settings.lift3d
        if self._lift3d is not None:
            self._camera_info_subscription = self.create_subscription(
                CameraInfo,
                self._camera.topic(lift.camera_info_topic),
                self._on_camera_info,
                input_qos,
            )
            if lift.source == "depth":
                self._lift3d_input_subscription = self.create_subscription(
                    Image, self._camera.topic(lift.depth_topic), self._on_lift3d_input, input_qos
                )
            else:
                self._lift3d_input_subscription = self.create_subscription(
                    PointCloud2,
                    self._camera.topic(lift.points_topic),
                    self._on_lift3d_input,
                    input_qos,
                )
        self._diagnostics_timer = self.create_timer(
            settings.diagnostics_period, self._publish_diagnostics
        )

    @staticmethod
    def _for_camera(callback, camera: _Camera):
        """``callback`` bound to ``camera``; the unnamed camera (the first and only one)
        is the callbacks' default, so it gets the plain method, as before cameras."""
        return callback if not camera.name else functools.partial(callback, camera=camera)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._free_engine()
        self.get_logger().info("deactivated: processing stopped, model released")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._destroy_inputs()
        self._free_engine()
        self._destroy_publishers()
        self._config = self._settings = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._destroy_inputs()
        self._free_engine()
        self._destroy_publishers()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        # Error processing ends unconfigured: release what configure made, as cleanup
        # does, so the next configure does not create a second set.
        self._stop_processing()
        self._destroy_inputs()
        self._free_engine()
        self._destroy_publishers()
        return TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------------ engine
    def _load_engine(self) -> bool:
        from seg2track_ros.engine.faults import FaultInjectingSegmenter
        from seg2track_ros.engine.multi_stream import MultiStreamTracker
        from seg2track_ros.engine.registry import load_segmenter

        started = time.monotonic()
        name = self._settings.segmenter
        self.get_logger().info(f"loading the {name} segmenter")
        try:
            segmenter = load_segmenter(name, self._config.segmenter)
        except (CheckpointError, ConfigError) as error:
            self.get_logger().error(f"configure failed: {error}")
            return False
        except Exception as error:  # a plugin's factory: the node stays up to retry
            self.get_logger().error(f"configure failed: segmenter {name!r} raised {error!r}")
            return False
        if self._settings.inject_fault_every > 0:
            segmenter = FaultInjectingSegmenter(segmenter, self._settings.inject_fault_every)
            self.get_logger().warning(
                f"inject_fault_every {self._settings.inject_fault_every}: the engine fails on"
                " purpose every that many frames (a test hook; 0 turns it off)"
            )
        try:
            # One stream per camera; SAM 2's streams share the one model just loaded.
            tracker = MultiStreamTracker.shared(
                list(self._cameras),
                self._config.tracker,
                segmenter,
                build=lambda: self._build_another(name),
            )
        except Exception as error:
            self.get_logger().error(f"configure failed: segmenter {name!r} raised {error!r}")
            return False
        with self._engine_lock:
            self._segmenter = segmenter
            self._tracker = tracker
        for camera in self._cameras.values():
            camera.last_stamp_ns = camera.last_size = None
        self.get_logger().info(f"model loaded in {time.monotonic() - started:.1f} s")
        return True

    def _build_another(self, name: str):
        """A segmenter for another camera where the first cannot share (a plugin's)."""
        from seg2track_ros.engine.faults import FaultInjectingSegmenter
        from seg2track_ros.engine.registry import load_segmenter

        segmenter = load_segmenter(name, self._config.segmenter)
        if self._settings.inject_fault_every > 0:
            segmenter = FaultInjectingSegmenter(segmenter, self._settings.inject_fault_every)
        return segmenter

    def _set_cameras(self, names: list[str]) -> None:
        """The camera set from the 'cameras' parameter (configure). A camera configured
        before keeps its counters; one no longer named loses its reset service."""
        names = list(names) or [""]
        for name, camera in self._cameras.items():
            if name not in names and camera.reset_service is not None:
                self.destroy_service(camera.reset_service)
                camera.reset_service = None
        self._cameras = {name: self._cameras.get(name) or _Camera(name) for name in names}

    def _free_engine(self) -> None:
        with self._engine_lock:
            device = getattr(self._segmenter, "device", None)
            self._tracker = self._segmenter = None
            self._tracker_memory_bytes = None
            self._memory_read_at = -math.inf
        if device is not None and device.type == "cuda":
            import torch

            torch.cuda.empty_cache()

    def _destroy_publishers(self) -> None:
        with self._outputs_lock:
            self._destroy_publishers_locked()

    def _destroy_publishers_locked(self) -> None:
        # Lifecycle publishers are also registered as managed entities: only
        # destroy_lifecycle_publisher releases them from there.
        for camera in self._cameras.values():
            lifecycle = (
                camera.tracks_pub,
                camera.detections_pub,
                camera.labels_pub,
                camera.overlay_pub,
            )
            for publisher in lifecycle:
                if publisher is not None:
                    self.destroy_lifecycle_publisher(publisher)
            camera.tracks_pub = camera.detections_pub = camera.labels_pub = None
            camera.overlay_pub = None
        for publisher in (self._tracks3d_pub, self._tracks3d_state_pub, self._markers_pub):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self._tracks3d_pub = self._tracks3d_state_pub = self._markers_pub = None
        if self._diagnostics_pub is not None:
            self.destroy_publisher(self._diagnostics_pub)
        self._diagnostics_pub = None

    # ------------------------------------------------------------------ inputs
    @_never_raises
    def _on_image(self, msg: Image, camera: _Camera | None = None) -> None:
        self._take_image(msg, self._converter, camera or self._camera)

    @_never_raises
    def _on_compressed_image(self, msg: CompressedImage, camera: _Camera | None = None) -> None:
        self._take_image(msg, self._decode_compressed, camera or self._camera)

    def _decode_compressed(self, msg: CompressedImage) -> np.ndarray:
        return compressed_image_to_rgb(msg, self._settings.max_image_pixels)

    def _take_image(self, msg, convert, camera: _Camera) -> None:
        if not self._running:
            return
        stamp = header_stamp_ns(msg.header)
        missing = camera.gaps.add(stamp)
        with self._stats_lock:
            camera.stats.frames_in += 1
            camera.stats.images_missed += missing
        if missing:
            period_ms = camera.gaps.period_ns / 1e6
            advice = (
                "with best_effort input QoS consider input_reliability reliable"
                if self._settings.input_reliability == "best_effort"
                else "the input is reliable, so the publisher (or recording) skipped them"
            )
            self._warn(
                "images_missed",
                f"{self._camera_prefix(camera)}{missing} image(s) missing before stamp"
                f" {stamp / 1e9:.3f} s (the stamps"
                f" jumped {missing + 1} periods of {period_ms:.1f} ms): {advice} (see the"
                " README, 'Lost images')",
                camera=camera,
            )
        try:
            rgb = convert(msg)
        except RejectedInput as error:
            self._reject(error.reason, f"image rejected: {error}", camera=camera)
            return
        now = self.get_clock().now().nanoseconds
        # Stamps going backwards (a looping bag): pairing starts afresh; the worker resets
        # the tracks when it sees the earlier stamp.
        camera.sync.rewind_if_before(stamp)
        frame = _Frame(msg.header, rgb, None, now)
        self._enqueue(camera.sync.add_image(stamp, frame, now), camera)
        if camera.sync.pending_images and camera.sync_timer.is_canceled():
            camera.sync_timer.reset()

    @_never_raises
    def _on_camera_info(self, msg: CameraInfo) -> None:
        if not self._running or self._lift3d is None:
            return
        try:
            camera = self._lift3d.set_camera_info(msg)
        except RejectedInput as error:
            self._reject(error.reason, str(error))
            return
        if camera is not None:
            self.get_logger().info(
                f"camera model from camera_info ({msg.header.frame_id!r}): {camera.width}x"
                f"{camera.height}, fx={camera.fx:g} fy={camera.fy:g} cx={camera.cx:g}"
                f" cy={camera.cy:g}"
            )

    @_never_raises
    def _on_lift3d_input(self, msg) -> None:
        if not self._running or self._lift3d is None:
            return
        try:
            count = self._lift3d.add_input(msg)
        except RejectedInput as error:
            self._reject(error.reason, f"{self._settings.lift3d.source} rejected: {error}")
            return
        if count == 1:
            self.get_logger().info(
                f"first {self._settings.lift3d.source} message received"
                f" (frame {msg.header.frame_id!r})"
            )

    @_never_raises
    def _on_detections(self, msg: Detection2DArray, camera: _Camera | None = None) -> None:
        if not self._running:
            return
        camera = camera or self._camera
        now = self.get_clock().now().nanoseconds
        self._enqueue(camera.sync.add_detections(header_stamp_ns(msg.header), msg, now), camera)

    @_never_raises
    def _on_sync_timer(self, camera: _Camera | None = None) -> None:
        camera = camera or self._camera
        if self._running:
            self._enqueue(camera.sync.poll(self.get_clock().now().nanoseconds), camera)
        if not self._running or not camera.sync.pending_images:
            camera.sync_timer.cancel()

    def _enqueue(self, pairs: list[SyncedPair], camera: _Camera | None = None) -> None:
        camera = camera or self._camera
        self._count_sync_losses(pairs, camera)
        if not pairs:
            return
        realtime = self._settings.mode == "realtime"
        max_frames = 1 if realtime else LOCKSTEP_QUEUE
        max_bytes = math.inf if realtime else self._settings.lockstep_queue_bytes
        dropped = 0
        with self._queue_ready:
            for pair in pairs:
                frame: _Frame = pair.image
                frame.detections_msg = pair.detections
                size = frame.rgb.nbytes
                # The oldest waiting frames make room; one frame is always let in, so a
                # frame above the bound is tracked rather than lost. Each camera has its
                # own queue: one camera's flood never drops another's frames.
                while camera.queue and (
                    len(camera.queue) >= max_frames or camera.queue_bytes + size > max_bytes
                ):
                    camera.queue_bytes -= camera.queue.popleft().rgb.nbytes
                    dropped += 1
                camera.queue.append(frame)
                camera.queue_bytes += size
            queued = camera.queue_bytes
            self._queue_ready.notify()
        with self._stats_lock:
            camera.stats.frames_dropped += dropped
            camera.stats.queue_bytes_peak = max(camera.stats.queue_bytes_peak, queued)
        if dropped and not realtime:
            self._reject(
                "lockstep_queue_full",
                f"{dropped} frame(s) dropped: frames arrive faster than they are tracked and"
                f" the queue is at lockstep_queue_bytes ({max_bytes} bytes)",
                dropped,
                camera=camera,
            )

    def _count_sync_losses(self, pairs: list[SyncedPair], camera: _Camera) -> None:
        """Diagnostics for what pairing lost: detection messages that never met their
        image, images dropped while they waited for detections, and images tracked
        without detections (by reason)."""
        sync = camera.sync
        unpaired = sync.take_dropped_detections() if sync is not None else 0
        if unpaired:
            self._reject(
                "unpaired_detections",
                f"{unpaired} detection message(s) never paired with an image (no image"
                " with that stamp, or it was already tracked without them)",
                unpaired,
                camera=camera,
            )
        dropped = sync.take_dropped_images() if sync is not None else 0
        if dropped:
            with self._stats_lock:
                camera.stats.frames_dropped += dropped
            self._reject(
                "unpaired_images",
                f"{dropped} image(s) dropped while waiting for their detections (stamps"
                " went backwards, or processing stopped)",
                dropped,
                camera=camera,
            )
        for pair in pairs:
            if pair.unpaired is None:
                continue
            with self._stats_lock:
                camera.stats.images_without_detections[pair.unpaired] += 1
            self._warn(
                f"images_without_detections_{pair.unpaired}",
                f"{self._camera_prefix(camera)}image tracked without detections"
                f" ({_UNPAIRED_WHY[pair.unpaired]})",
                camera=camera,
            )

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        while True:
            with self._queue_ready:
                while self._running and not any(c.queue for c in self._cameras.values()):
                    self._queue_ready.wait(timeout=0.5)
                if not self._running:
                    return
                ticks = self._ticks
                self._gather_locked(ticks)
                # One frame of every camera that has one: none waits for another's
                # backlog (realtime queues hold each camera's newest frame only).
                tick = {}
                for camera in self._cameras.values():
                    if camera.queue:
                        frame = camera.queue.popleft()
                        camera.queue_bytes -= frame.rgb.nbytes
                        tick[camera.name] = frame
                        camera.last_tick = ticks
                self._ticks += 1
            with self._stats_lock:
                self._tick_cameras.append(len(tick))
            try:
                self._process_tick(tick)
            except Exception as error:  # never let one tick kill the node
                for name in tick:
                    self._reject(
                        "processing_error",
                        f"frame not processed: {error!r}",
                        camera=self._cameras.get(name),
                    )

    def _gather_locked(self, tick: int) -> None:
        """Several cameras: wait up to camera_gather_window for a frame of every camera
        that was in one of the last GATHER_TICKS ticks, so that they share this tick's
        engine call (frames of one instant rarely arrive at the same moment, and a worker
        that took only what was queued would track them one camera per tick). The caller
        holds _queue_ready; waiting releases it, so frames keep arriving."""
        window = self._settings.camera_gather_window
        if len(self._cameras) < 2 or window <= 0:
            return
        deadline = time.monotonic() + window
        while self._running:
            missing = [
                c
                for c in self._cameras.values()
                if not c.queue and tick - c.last_tick <= GATHER_TICKS
            ]
            left = deadline - time.monotonic()
            if not missing or left <= 0:
                return
            self._queue_ready.wait(timeout=left)

    def _process(self, frame: _Frame) -> None:
        """One frame of the first camera (the single-camera node's worker step)."""
        self._process_tick({self._camera.name: frame})

    def _detections(self, frame: _Frame, camera: _Camera) -> Detections:
        settings = self._settings
        height, width = frame.rgb.shape[:2]
        if frame.detections_msg is None:
            return Detections.empty()
        converted = detections_from_msg(
            frame.detections_msg, width, height, settings.max_detections
        )
        detections = converted.detections
        if self._class_mapper is not None:
            detections = self._class_mapper(detections)
        outside = int(((detections.scores < 0.0) | (detections.scores > 1.0)).sum())
        if outside:
            with self._stats_lock:
                camera.stats.detection_scores_outside_0_1 += outside
            self._warn(
                "score_range",
                f"{self._camera_prefix(camera)}{outside} detection score(s) outside [0, 1]"
                " (tracked as given): the thresholds expect probabilities; does the detector"
                " publish logits or percentages?",
                camera=camera,
            )
        for reason, count in converted.rejected.items():
            self._reject(reason, f"{count} detection(s) dropped: {reason}", count, camera=camera)
        if converted.rotated and not camera.warned_rotated:
            camera.warned_rotated = True
            self.get_logger().warning(
                f"{self._camera_prefix(camera)}rotated detection boxes received: using their"
                " axis-aligned bounds"
            )
        return detections

    def _process_tick(self, tick: dict[str, _Frame]) -> None:
        """Track one frame per camera in ``tick`` in one engine call; publish each."""
        inputs = {}
        for name, frame in tick.items():
            camera = self._cameras[name]
            try:
                inputs[name] = (frame.rgb, self._detections(frame, camera))
            except Exception as error:  # one camera's bad frame costs only that frame
                self._reject("processing_error", f"frame not processed: {error!r}", camera=camera)
        with self._engine_lock:
            tracker = self._tracker
            if tracker is None:
                return
            for name in inputs:
                camera, frame = self._cameras[name], tick[name]
                height, width = frame.rgb.shape[:2]
                stamp = header_stamp_ns(frame.header)
                if camera.last_stamp_ns is not None and stamp < camera.last_stamp_ns:
                    self._reject(
                        "stamp_backwards", "image stamp went backwards: tracks reset", camera=camera
                    )
                    tracker.reset(name)
                if camera.last_size is not None and camera.last_size != (height, width):
                    self._reject(
                        "image_size_changed",
                        f"image size changed {camera.last_size} -> {(height, width)}: tracks reset",
                        camera=camera,
                    )
                    tracker.reset(name)
                camera.last_stamp_ns, camera.last_size = stamp, (height, width)
            try:
                outcome = tracker.step(inputs)
            finally:
                self._read_memory_locked()
            for name, error in outcome.errors.items():
                camera = self._cameras[name]
                if isinstance(error, TrackerStepError):
                    # The engine reset this camera: its frame is lost, the next is tracked.
                    camera.last_stamp_ns = None
                    self._reject(
                        "engine_error",
                        f"frame not tracked, tracks reset: {error}",
                        error=True,
                        camera=camera,
                    )
                else:
                    self._reject("invalid_input", f"frame not tracked: {error}", camera=camera)
        published = [
            (self._cameras[name], tick[name], result) for name, result in outcome.results.items()
        ]
        if not published:
            return
        if self._publisher is None:
            for camera, frame, result in published:  # lockstep: in order, before the next
                self._publish(frame, result, camera)
            return
        while self._running:
            try:
                self._outbox.put(published, timeout=0.5)
                return
            except queue.Full:
                continue

    def _read_memory_locked(self) -> None:
        """Snapshot the segmenter's stored-tensor bytes for diagnostics; the caller holds
        the engine lock (the figure iterates state the step changes)."""
        now = time.monotonic()
        if self._segmenter is None or now - self._memory_read_at < MEMORY_READ_EVERY_S:
            return
        self._memory_read_at = now
        try:
            self._tracker_memory_bytes = int(self._segmenter.memory_bytes())
        except Exception as error:  # a figure for diagnostics must not cost the frame
            self._warn("memory_read", f"segmenter memory not read: {error!r}", error=True)

    def _publish_work(self) -> None:
        """The realtime publish stage: serialise and publish what the worker tracked."""
        while self._running:
            try:
                published = self._outbox.get(timeout=0.5)
            except queue.Empty:
                continue
            for camera, frame, result in published:
                try:
                    self._publish(frame, result, camera)
                except Exception as error:  # never let one frame kill the node
                    self._reject(
                        "publish_error", f"outputs not published: {error!r}", camera=camera
                    )

    def _publish(self, frame: _Frame, result, camera: _Camera | None = None) -> None:
        camera = camera or self._camera
        header = frame.header
        messages = step_to_msgs(result, header)
        overlay = None
        if camera.overlay_pub is not None:
            overlay = bgr_to_image_msg(overlay_image(frame.rgb, result.tracks), header)
        with self._outputs_lock:
            # Stopped (deactivate, cleanup, shutdown) while this frame was tracked: its
            # outputs are dropped, never published on a released publisher.
            if not self._running or camera.tracks_pub is None:
                return
            camera.tracks_pub.publish(messages.tracks)
            camera.detections_pub.publish(messages.detections)
            camera.labels_pub.publish(messages.labels)
            if overlay is not None and camera.overlay_pub is not None:
                camera.overlay_pub.publish(overlay)
        if self._lift3d is not None and camera is self._camera:
            self._publish_3d(header, result)
        now = self.get_clock().now().nanoseconds
        with self._stats_lock:
            stats = camera.stats
            stats.frames_processed += 1
            stats.active_tracks = len(result.tracks)
            stats.stamp_latency_ms.append((now - header_stamp_ns(header)) / 1e6)
            stats.processing_ms.append((now - frame.received_ns) / 1e6)
            stats.processed_times.append(time.monotonic())

    def _publish_3d(self, header, result) -> None:
        """The frame's 3-D outputs, after its 2-D ones (which never wait for these). A
        frame without 3-D input, or with a bad one, is counted and publishes nothing."""
        try:
            outputs = self._lift3d.process(header, result)
        except RejectedInput as error:
            self._reject(error.reason, str(error))
            return
        except Exception as error:  # the 3-D stage must never cost the 2-D outputs
            self._reject("lift3d_error", f"no 3-D output: {error!r}")
            return
        too_few = self._lift3d.too_few_points
        if too_few:
            self._reject(
                "lift3d_too_few_points",
                f"track(s) {', '.join(map(str, too_few))}: too few valid 3-D points in the"
                f" eroded mask (< lift3d.min_valid_points {self._settings.lift3d.min_valid_points};"
                " depth NaN, inf, 0 or out of range, or no LiDAR points on the object): no"
                " 3-D output for them",
                len(too_few),
            )
        detections = tracks3d_to_detections_msg(outputs, header)
        states = tracks3d_to_state_msg(outputs, header)
        markers = tracks3d_to_markers(outputs, header) if self._markers_pub is not None else None
        with self._outputs_lock:
            if not self._running or self._tracks3d_pub is None:
                return
            self._tracks3d_pub.publish(detections)
            self._tracks3d_state_pub.publish(states)
            if markers is not None and self._markers_pub is not None:
                self._markers_pub.publish(markers)
        with self._stats_lock:
            self._stats.tracks_3d = len(outputs)

    def _destroy_inputs(self) -> None:
        for camera in self._cameras.values():
            for subscription in (camera.image_subscription, camera.detections_subscription):
                if subscription is not None:
                    self.destroy_subscription(subscription)
            if camera.sync_timer is not None:
                self.destroy_timer(camera.sync_timer)
            camera.image_subscription = camera.detections_subscription = None
            camera.sync_timer = None
        for subscription in (self._camera_info_subscription, self._lift3d_input_subscription):
            if subscription is not None:
                self.destroy_subscription(subscription)
        self._camera_info_subscription = self._lift3d_input_subscription = None
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
        self._diagnostics_timer = None

    def _stop_processing(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Stop the worker and publish threads; False if one is still running after
        ``timeout`` seconds (inside a long step: it publishes nothing once it returns)."""
        with self._queue_ready:
            self._running = False
            for camera in self._cameras.values():
                camera.queue.clear()
                camera.queue_bytes = 0
            self._queue_ready.notify_all()
        deadline = time.monotonic() + timeout
        stopped = True
        for thread in (self._worker, self._publisher):
            if thread is not None:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
                stopped = stopped and not thread.is_alive()
        self._worker = self._publisher = None
        while not self._outbox.empty():
            self._outbox.get_nowait()
        for camera in self._cameras.values():
            if camera.sync is not None:
                camera.sync.reset()
                self._count_sync_losses([], camera)
        return stopped

    def close(self, signals: list[str] | None = None) -> bool:
        """Process shutdown, in order: stop the worker threads (so that nothing publishes
        or logs from them while the node goes away), destroy the node. The context stays
        valid throughout, so what is logged here reaches /rosout. Returns False if a
        worker thread did not stop within SHUTDOWN_TIMEOUT_S."""
        why = f" ({', '.join(signals)})" if signals else ""
        self.get_logger().info(f"shutting down{why}")
        stopped = self._stop_processing(timeout=SHUTDOWN_TIMEOUT_S)
        if not stopped:
            self.get_logger().warning(
                f"the worker did not finish its frame within {SHUTDOWN_TIMEOUT_S} s:"
                " exiting without it"
            )
        with self._outputs_lock:
            self._destroy_inputs()
            self._destroy_publishers_locked()
            self.destroy_node()
        return stopped

    # ------------------------------------------------------------------ misc
    def _reject(
        self,
        reason: str,
        message: str,
        count: int = 1,
        error: bool = False,
        camera: _Camera | None = None,
    ) -> None:
        camera = camera or self._camera
        with self._stats_lock:
            camera.stats.rejected[reason] += count
        self._warn(reason, self._camera_prefix(camera) + message, error=error, camera=camera)

    def _camera_prefix(self, camera: _Camera) -> str:
        return f"camera {camera.name}: " if camera.name else ""

    def _warn(
        self, key: str, message: str, error: bool = False, camera: _Camera | None = None
    ) -> None:
        """Log at most once per WARN_EVERY_S per key (and camera), so one reason never
        hides another (rclpy's throttle_duration_sec is shared by every message of one
        call site)."""
        if camera is not None and camera.name:
            key = f"{camera.name}:{key}"
        now = time.monotonic()
        with self._stats_lock:
            if now - self._last_warning.get(key, -math.inf) < WARN_EVERY_S:
                return
            self._last_warning[key] = now
        # Two call sites: rclpy refuses a second severity from the same line.
        if error:
            self.get_logger().error(message)
        else:
            self.get_logger().warning(message)

    def _callback_failed(self, callback: str, error: Exception) -> None:
        with self._stats_lock:
            # Counted on the first camera: a callback may serve several.
            self._stats.callback_errors[callback] += 1
        self._warn(f"callback:{callback}", f"{callback} failed: {error!r}", error=True)

    def _on_reset(
        self, request: Trigger.Request, response: Trigger.Response, camera: str | None = None
    ):
        """~/reset clears every camera; ~/<camera>/reset (``camera``) that one only."""
        with self._engine_lock:
            if self._tracker is None:
                response.success, response.message = False, "no model loaded (node not active)"
                return response
            if camera is not None and camera not in self._cameras:
                response.success, response.message = False, f"camera {camera} not configured"
                return response
            names = list(self._cameras) if camera is None else [camera]
            dropped = sum(self._tracker.tracker(name).num_tracks for name in names)
            for name in names:
                self._tracker.reset(name)
                self._cameras[name].last_stamp_ns = None
            if self._lift3d is not None and self._camera.name in names:
                self._lift3d.reset()
        response.success = True
        where = f" of camera {camera}" if camera else ""
        response.message = f"cleared {dropped} tracks{where}; new track ids keep increasing"
        self.get_logger().info(response.message)
        return response

    def _on_parameters_set(self, parameters) -> None:
        for parameter in parameters:
            self._refused.pop(parameter.name, None)

    @_never_raises
    def _publish_diagnostics(self) -> None:
        device = getattr(self._segmenter, "device", None)
        statuses = []
        for camera in self._cameras.values():
            values = self._diagnostic_values(camera)
            warn = values["images_missed"] > 0 or any(
                k.startswith(("rejected_", "callback_errors_")) for k in values
            )
            # One status per camera, its name ending in the camera's.
            suffix = f" {camera.name}" if camera.name else ""
            statuses.append(
                DiagnosticStatus(
                    level=DiagnosticStatus.WARN if warn else DiagnosticStatus.OK,
                    name=f"{self.get_name()}: seg2track{suffix}",
                    message="tracking",
                    hardware_id=str(device) if device is not None else "",
                    values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
                )
            )
        array = DiagnosticArray(status=statuses)
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)

    def _diagnostic_values(self, camera: _Camera | None = None) -> dict[str, object]:
        """The /diagnostics key-values of a camera (default: the first). Reads counters
        and the worker's snapshots only, never the engine (which the worker changes
        concurrently). Device and tracker memory are the node's, for all cameras."""
        camera = camera or self._camera
        with self._stats_lock:
            stats = camera.stats
            now = time.monotonic()
            recent = [t for t in stats.processed_times if now - t <= 5.0]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 else 0.0
            values = {
                "frames_in": stats.frames_in,
                "frames_processed": stats.frames_processed,
                "frames_dropped": stats.frames_dropped,
                "fps": round(fps, 2),
                "latency_p50_ms": _percentile(stats.stamp_latency_ms, 50),
                "latency_p95_ms": _percentile(stats.stamp_latency_ms, 95),
                "processing_p50_ms": _percentile(stats.processing_ms, 50),
                "processing_p95_ms": _percentile(stats.processing_ms, 95),
                "active_tracks": stats.active_tracks,
                "queue_bytes": camera.queue_bytes,
                "queue_bytes_peak": stats.queue_bytes_peak,
                "detection_scores_outside_0_1": stats.detection_scores_outside_0_1,
                "images_missed": stats.images_missed,
                **(
                    {"tracks_3d": stats.tracks_3d}
                    if self._lift3d is not None and camera is self._camera
                    else {}
                ),
                "image_period_ms": _period_ms(camera.gaps.period_ns),
                **{f"rejected_{reason}": n for reason, n in sorted(stats.rejected.items())},
                **{
                    f"images_without_detections_{why}": n
                    for why, n in sorted(stats.images_without_detections.items())
                },
                **{
                    f"callback_errors_{name.lstrip('_')}": n
                    for name, n in sorted(stats.callback_errors.items())
                },
            }
        if len(self._cameras) > 1:
            with self._stats_lock:
                sizes = list(self._tick_cameras)
            # node-wide: how many cameras share an engine call (of the last 100 ticks)
            values["cameras_per_tick"] = round(sum(sizes) / len(sizes), 2) if sizes else 0.0
        device = getattr(self._segmenter, "device", None)
        memory = self._tracker_memory_bytes
        if device is not None and device.type == "cuda":
            import torch

            values["device_memory_mb"] = round(torch.cuda.memory_allocated(device) / 2**20, 1)
        elif memory is not None:
            values["tracker_memory_mb"] = round(memory / 2**20, 3)
        return values


def _period_ms(period_ns: float | None) -> float | str:
    return "unknown" if period_ns is None else round(period_ns / 1e6, 2)


def compressed_topic(image_topic: str) -> str:
    """image_transport's name for the compressed stream of `image_topic`."""
    return f"{image_topic.rstrip('/')}/compressed"


def _percentile(values, q: float) -> float:
    return round(float(np.percentile(list(values), q)), 1) if values else 0.0


def main(args=None, signals: ShutdownSignals | None = None) -> None:
    # Signals are handled here, not by rclpy: see seg2track_ros.ros.shutdown. The console
    # script installs the handlers before importing this module (entry_points.py).
    if signals is None:
        signals = ShutdownSignals()
        signals.install()
    node = executor = None
    try:
        shutdown.init(args)
        node = TrackerNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        autostart = node.get_parameter("autostart").value
        if autostart and node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            node.trigger_activate()
        signals.started()
        signals.spin(executor)
    except (StartupInterrupted, ExternalShutdownException):
        pass
    finally:
        signals.started()  # further signals are ignored: nothing interrupts the teardown
        if node is not None:
            node.close(signals.received)
        if executor is not None:
            executor.shutdown()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
