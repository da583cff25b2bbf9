"""tracker_node's optional 3-D stage: camera_info + depth or points -> per-track 3-D.

ROS plumbing only; the geometry and the filters are the engine's (geometry3d.py,
motion3d.py). The node feeds it the latest camera_info and every depth image or cloud
(kept in a short buffer by stamp), and after each tracked frame asks for that frame's
3-D outputs. A depth image or cloud pairs with the tracked image of the nearest stamp
within ``lift3d.pair_slop`` (exactly equal stamps with 0).

Every problem is a RejectedInput with a reason key (the node counts it in diagnostics
as ``rejected_<reason>`` and logs a throttled warning): ``camera_info_invalid``,
``depth_invalid``, ``depth_size``, ``points_invalid``, ``transform_missing``,
``lift3d_no_camera_info``, ``lift3d_unpaired`` (no depth or cloud with the frame's
stamp), ``lift3d_error``. The 2-D outputs never wait for or depend on any of this.

The camera-from-sensor transform of a cloud: ``lift3d.static_transform`` when set;
otherwise tf2 (``tf2_ros``, where installed: a real ROS 2 system) looks up the image's
frame from the cloud's frame at the cloud's stamp; without either every cloud is
rejected with ``transform_missing``.
"""

from __future__ import annotations

import collections
import threading

import numpy as np

from seg2track_ros.engine.geometry3d import (
    DepthImageError,
    InvalidInputError,
    PinholeCamera,
    lift_from_depth,
    lift_from_points,
    transform_from_pose,
)
from seg2track_ros.engine.motion3d import MotionFilters
from seg2track_ros.params import Lift3DSettings
from seg2track_ros.ros.conversions import RejectedInput
from seg2track_ros.ros.conversions3d import (
    Track3DOutput,
    camera_from_info,
    depth_from_msg,
    points_from_cloud,
    transform_from_msg,
)
from seg2track_ros.stamps import header_stamp_ns

BUFFER = 30  # depth images or clouds kept while their tracked image may still come


class Lift3DStage:
    """The 3-D state of one tracker_node: camera model, input buffer, filters."""

    def __init__(self, settings: Lift3DSettings, tf_buffer=None, max_pixels: int | None = None):
        self.settings = settings
        self.lift_config = settings.lift_config()
        self.filters = MotionFilters(settings.motion_config())
        self.static_transform = (
            transform_from_pose(settings.static_transform.split())
            if settings.static_transform
            else None
        )
        self.tf_buffer = tf_buffer
        self.max_pixels = max_pixels
        self._lock = threading.Lock()
        self._camera = None
        self._camera_error: str | None = None
        self._inputs_seen = 0
        self._inputs: collections.deque = collections.deque(maxlen=BUFFER)
        # track ids of the last processed frame whose masks held too few valid points
        self.too_few_points: list[int] = []

    # --------------------------------------------------------------- inputs
    def set_camera_info(self, msg) -> PinholeCamera | None:
        """Keep the newest valid camera model; raises RejectedInput for a bad one (the
        last good model stays in use). Returns the model when it is new (the first, or
        different from the one in use), else None: the node logs each new model."""
        camera = camera_from_info(msg)
        with self._lock:
            changed = camera != self._camera
            self._camera = camera
        return camera if changed else None

    def add_input(self, msg) -> int:
        """Buffer a depth image or cloud by its stamp (converted now, on the callback
        thread, so a malformed one is rejected at once). Returns how many were buffered
        so far, this one included (the node logs the first)."""
        if self.settings.source == "depth":
            data = depth_from_msg(msg, self.max_pixels)
        else:
            data = points_from_cloud(msg)
        with self._lock:
            self._inputs.append((header_stamp_ns(msg.header), msg.header.frame_id, data))
            self._inputs_seen += 1
            return self._inputs_seen

    def reset(self) -> None:
        with self._lock:
            self._inputs.clear()
            self.filters = MotionFilters(self.settings.motion_config())

    def _take(self, stamp_ns: int):
        slop_ns = int(self.settings.pair_slop * 1e9)
        with self._lock:
            if not self._inputs:
                return None
            best = min(self._inputs, key=lambda item: abs(item[0] - stamp_ns))
            if abs(best[0] - stamp_ns) > slop_ns:
                return None
            # what is older than the match can no longer pair (frames come in order)
            while self._inputs and self._inputs[0] is not best:
                self._inputs.popleft()
            return best

    def _transform(self, image_frame: str, sensor_frame: str, stamp_ns: int) -> np.ndarray:
        if self.static_transform is not None:
            return self.static_transform
        if self.tf_buffer is None:
            raise RejectedInput(
                "transform_missing",
                "no camera-from-LiDAR transform: set lift3d.static_transform"
                " ('x y z qx qy qz qw'), or run on a ROS 2 system with tf2_ros and publish"
                f" the transform {image_frame} <- {sensor_frame}",
            )
        from rclpy.time import Time

        try:
            stamped = self.tf_buffer.lookup_transform(
                image_frame, sensor_frame, Time(nanoseconds=stamp_ns)
            )
        except Exception as error:  # tf2's LookupException, ExtrapolationException, ...
            raise RejectedInput(
                "transform_missing",
                f"tf2 has no transform {image_frame} <- {sensor_frame}: {error}",
            ) from None
        return transform_from_msg(stamped.transform)

    # --------------------------------------------------------------- per frame
    def process(self, header, result) -> list[Track3DOutput]:
        """The frame's 3-D outputs (tracks with enough valid points, ascending id).

        Raises RejectedInput when the frame has no 3-D output at all (no camera_info,
        no input with its stamp, a bad input); the filters of ended tracks are
        forgotten either way."""
        stamp_ns = header_stamp_ns(header)
        self.too_few_points = []
        tracks = result.tracks
        active = [t.track_id for t in tracks]
        with self._lock:
            camera = self._camera
        if camera is None:
            self.filters.update(stamp_ns / 1e9, {}, active)
            raise RejectedInput(
                "lift3d_no_camera_info", "no valid camera_info received yet: no 3-D output"
            )
        paired = self._take(stamp_ns)
        if paired is None:
            self.filters.update(stamp_ns / 1e9, {}, active)
            raise RejectedInput(
                "lift3d_unpaired",
                f"no {self.settings.source} message with the image's stamp"
                f" {stamp_ns / 1e9:.3f} s (within lift3d.pair_slop {self.settings.pair_slop}"
                " s): no 3-D output for this frame",
            )
        _, sensor_frame, data = paired
        labels = result.labels
        track_labels = [t.label for t in tracks]
        classes = [t.class_id for t in tracks]
        try:
            if self.settings.source == "depth":
                measurements = lift_from_depth(
                    labels, track_labels, data, camera, self.lift_config, classes
                )
            else:
                transform = self._transform(header.frame_id, sensor_frame, stamp_ns)
                measurements = lift_from_points(
                    labels, track_labels, data, transform, camera, self.lift_config, classes
                )
        except InvalidInputError as error:
            self.filters.update(stamp_ns / 1e9, {}, active)
            reason = "depth_size" if isinstance(error, DepthImageError) else "lift3d_error"
            raise RejectedInput(reason, f"no 3-D output: {error}") from None
        valid = {t.track_id: (t, m) for t, m in zip(tracks, measurements, strict=True) if m.valid}
        # tracks with a mask (not LOST) that still had too few points
        self.too_few_points = [
            t.track_id
            for t, m in zip(tracks, measurements, strict=True)
            if not m.valid and t.bbox is not None
        ]
        states = self.filters.update(
            stamp_ns / 1e9, {tid: m.centre for tid, (_, m) in valid.items()}, active
        )
        return [
            Track3DOutput(
                track_id=tid,
                class_id=track.class_id,
                score=float(track.detection_score),
                centre=states[tid].position,
                velocity=states[tid].velocity,
                covariance=states[tid].covariance,
                size=measurement.size,
                valid_points=measurement.valid_points,
                yaw=measurement.yaw,
            )
            for tid, (track, measurement) in sorted(valid.items())
        ]
