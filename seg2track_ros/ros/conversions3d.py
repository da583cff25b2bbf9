"""ROS messages <-> arrays for the 3-D output: CameraInfo, depth images, PointCloud2, and
the Detection3DArray / MarkerArray / Track3DArray built from the engine's 3-D states.
(The 2-D conversions are in conversions.py; both raise RejectedInput with a reason key
for diagnostics.)"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import Point, Quaternion, Vector3
from seg2track_msgs.msg import Track3D, Track3DArray
from vision_msgs.msg import BoundingBox3D, Detection3D, Detection3DArray, ObjectHypothesisWithPose
from visualization_msgs.msg import Marker, MarkerArray

from seg2track_ros.engine.geometry3d import CameraModelError, PinholeCamera
from seg2track_ros.ros.conversions import RejectedInput
from seg2track_ros.visualize import track_colour

# The orientation (a box fit's yaw, or none) has no uncertainty estimate: its variances
# in PoseWithCovariance say "unknown".
UNKNOWN_VARIANCE = 1e6
DEPTH_ENCODINGS = {"16UC1": np.dtype("u2"), "mono16": np.dtype("u2"), "32FC1": np.dtype("f4")}
# sensor_msgs/PointField datatypes that can hold coordinates.
POINT_FIELD_TYPES = {
    1: "i1",
    2: "u1",
    3: "i2",
    4: "u2",
    5: "i4",
    6: "u4",
    7: "f4",
    8: "f8",
}


def camera_from_info(msg) -> PinholeCamera:
    """The pinhole model of a sensor_msgs/CameraInfo (K; distortion ignored: the image
    is assumed rectified, or registered). RejectedInput 'camera_info_invalid'."""
    try:
        return PinholeCamera.from_k(list(msg.k), int(msg.width), int(msg.height))
    except CameraModelError as error:
        raise RejectedInput("camera_info_invalid", f"camera_info unusable: {error}") from None


def depth_from_msg(msg, max_pixels: int | None = None) -> np.ndarray:
    """(H, W) uint16 (16UC1/mono16) or float32 (32FC1) from a sensor_msgs/Image.
    RejectedInput 'depth_invalid' for other encodings or inconsistent sizes."""
    dtype = DEPTH_ENCODINGS.get(msg.encoding)
    if dtype is None:
        raise RejectedInput(
            "depth_invalid",
            f"depth encoding {msg.encoding!r} not supported: use 16UC1 (millimetres,"
            " scaled by lift3d.depth_scale) or 32FC1 (metres)",
        )
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0 or (max_pixels is not None and height * width > max_pixels):
        raise RejectedInput("depth_invalid", f"depth image of {width}x{height} pixels")
    data = bytes(msg.data) if not isinstance(msg.data, bytes | bytearray) else msg.data
    row = width * dtype.itemsize
    if step < row or len(data) < step * (height - 1) + row:
        raise RejectedInput(
            "depth_invalid",
            f"depth image data of {len(data)} bytes does not hold {height} rows of step"
            f" {step} ({width} x {dtype.itemsize} bytes)",
        )
    order = ">" if msg.is_bigendian else "<"
    rows = np.frombuffer(data, np.uint8, count=step * (height - 1) + row)
    rows = np.lib.stride_tricks.as_strided(rows, (height, row), (step, 1))
    return np.ascontiguousarray(rows).view(dtype.newbyteorder(order)).astype(dtype)


def points_from_cloud(msg) -> np.ndarray:
    """(N, 3) float64 x, y, z of a sensor_msgs/PointCloud2 (any point layout; NaN
    points are kept, the lifting drops them). RejectedInput 'points_invalid' when it has
    no x, y and z fields or its data is shorter than its layout."""
    fields = {f.name: f for f in msg.fields}
    missing = [name for name in ("x", "y", "z") if name not in fields]
    if missing:
        raise RejectedInput(
            "points_invalid",
            f"point cloud without field(s) {', '.join(missing)} (has:"
            f" {', '.join(fields) or 'none'}): publish x, y, z",
        )
    order = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for name in ("x", "y", "z"):
        field = fields[name]
        if field.datatype not in POINT_FIELD_TYPES or field.count < 1:
            raise RejectedInput(
                "points_invalid", f"point field {name} has unknown datatype {field.datatype}"
            )
        names.append(name)
        formats.append(order + POINT_FIELD_TYPES[field.datatype])
        offsets.append(int(field.offset))
    step = int(msg.point_step)
    count = int(msg.width) * int(msg.height)
    ends = [o + np.dtype(f).itemsize for o, f in zip(offsets, formats, strict=True)]
    if step <= 0 or max(ends) > step:
        raise RejectedInput(
            "points_invalid", f"point_step {step} does not hold x, y, z (they end at {max(ends)})"
        )
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": step})
    data = bytes(msg.data) if not isinstance(msg.data, bytes | bytearray) else msg.data
    row_step = int(msg.row_step)
    if msg.height > 1 and row_step != msg.width * step:
        # padded rows: take each row's points
        needed = row_step * (msg.height - 1) + msg.width * step
        if row_step < msg.width * step or len(data) < needed:
            raise RejectedInput("points_invalid", "point cloud rows shorter than row_step says")
        rows = [
            np.frombuffer(data, dtype, count=int(msg.width), offset=r * row_step)
            for r in range(int(msg.height))
        ]
        structured = np.concatenate(rows) if rows else np.zeros(0, dtype)
    else:
        if len(data) < count * step:
            raise RejectedInput(
                "points_invalid",
                f"point cloud data of {len(data)} bytes is shorter than {count} points x"
                f" {step} bytes",
            )
        structured = np.frombuffer(data, dtype, count=count)
    return np.stack([structured[n].astype(np.float64) for n in names], axis=1)


def transform_from_msg(transform) -> np.ndarray:
    """4x4 matrix of a geometry_msgs/Transform."""
    from seg2track_ros.engine.geometry3d import transform_from_pose

    t, q = transform.translation, transform.rotation
    return transform_from_pose((t.x, t.y, t.z, q.x, q.y, q.z, q.w))


@dataclass(frozen=True)
class Track3DOutput:
    """One track's 3-D output on one frame (camera optical frame)."""

    track_id: int
    class_id: str
    score: float
    centre: np.ndarray  # filtered position (3,)
    velocity: np.ndarray  # (3,)
    covariance: np.ndarray  # 6x6 of (x, y, z, vx, vy, vz)
    # (3,) this frame's box size: the whole object's (across, height, along) in the box's
    # axes for classes with an object size, else the percentile extent of its points
    size: np.ndarray
    valid_points: int
    yaw: float = 0.0  # the box's turn about the camera's y axis (0: axes of the camera)


def _point(v) -> Point:
    return Point(x=float(v[0]), y=float(v[1]), z=float(v[2]))


def _yaw_quaternion(yaw: float) -> Quaternion:
    """A turn by ``yaw`` about the optical frame's y axis (down)."""
    return Quaternion(x=0.0, y=math.sin(yaw / 2), z=0.0, w=math.cos(yaw / 2))


def _vector(v) -> Vector3:
    return Vector3(x=float(v[0]), y=float(v[1]), z=float(v[2]))


def _pose_covariance(covariance: np.ndarray) -> list[float]:
    pose = np.zeros((6, 6))
    pose[:3, :3] = covariance[:3, :3]
    pose[3:, 3:] = np.eye(3) * UNKNOWN_VARIANCE
    return [float(v) for v in pose.ravel()]


def tracks3d_to_detections_msg(outputs: Sequence[Track3DOutput], header) -> Detection3DArray:
    """vision_msgs/Detection3DArray: id = track id; bbox centre = filtered position,
    orientation = the box's yaw about camera y, size = box size; results[0] = class,
    score, position covariance (orientation variances UNKNOWN_VARIANCE)."""
    msg = Detection3DArray()
    msg.header = header
    for out in outputs:
        detection = Detection3D()
        detection.header = header
        detection.id = str(out.track_id)
        box = BoundingBox3D()
        box.center.position = _point(out.centre)
        box.center.orientation = _yaw_quaternion(out.yaw)
        box.size = Vector3(x=float(out.size[0]), y=float(out.size[1]), z=float(out.size[2]))
        detection.bbox = box
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = out.class_id
        hypothesis.hypothesis.score = float(out.score)
        hypothesis.pose.pose = box.center
        hypothesis.pose.covariance = _pose_covariance(out.covariance)
        detection.results.append(hypothesis)
        msg.detections.append(detection)
    return msg


def tracks3d_to_state_msg(outputs: Sequence[Track3DOutput], header) -> Track3DArray:
    """seg2track_msgs/Track3DArray: position, velocity and their 6x6 covariance."""
    msg = Track3DArray()
    msg.header = header
    for out in outputs:
        track = Track3D()
        track.track_id = int(out.track_id)
        track.class_id = out.class_id
        track.position = _point(out.centre)
        track.orientation = _yaw_quaternion(out.yaw)
        track.velocity = Vector3(
            x=float(out.velocity[0]), y=float(out.velocity[1]), z=float(out.velocity[2])
        )
        track.covariance = [float(v) for v in np.asarray(out.covariance).ravel()]
        track.size = Vector3(x=float(out.size[0]), y=float(out.size[1]), z=float(out.size[2]))
        track.valid_points = int(out.valid_points)
        msg.tracks.append(track)
    return msg


def tracks3d_to_markers(
    outputs: Sequence[Track3DOutput], header, namespace: str = "seg2track"
) -> MarkerArray:
    """visualization_msgs/MarkerArray for RViz: DELETEALL first (tracks that ended
    disappear), then per track a CUBE (the box, 50 % alpha) and a TEXT_VIEW_FACING label
    "<id> <class>" above it, in the track's colour (visualize.track_colour)."""
    msg = MarkerArray()
    clear = Marker()
    clear.header = header
    clear.ns = namespace
    clear.action = Marker.DELETEALL
    msg.markers.append(clear)
    for out in outputs:
        b, g, r = (c / 255.0 for c in track_colour(out.track_id))
        size = np.maximum(np.asarray(out.size, dtype=np.float64), 0.05)  # a face has no depth
        box = Marker()
        box.header = header
        box.ns = namespace
        box.id = 2 * int(out.track_id) % (2**31 - 2)
        box.type = Marker.CUBE
        box.action = Marker.ADD
        box.pose.position = _point(out.centre)
        box.pose.orientation = _yaw_quaternion(out.yaw)
        box.scale = Vector3(x=float(size[0]), y=float(size[1]), z=float(size[2]))
        box.color.r, box.color.g, box.color.b, box.color.a = float(r), float(g), float(b), 0.5
        label = Marker()
        label.header = header
        label.ns = namespace
        label.id = box.id + 1
        label.type = Marker.TEXT_VIEW_FACING
        label.action = Marker.ADD
        # optical frame: y points down, so "above" is -y
        label.pose.position = _point(out.centre - [0.0, size[1] / 2 + 0.3, 0.0])
        label.pose.orientation.w = 1.0
        label.scale.z = 0.5
        label.color.r, label.color.g, label.color.b = float(r), float(g), float(b)
        label.color.a = 1.0
        label.text = f"{out.track_id} {out.class_id}"
        msg.markers.extend([box, label])
    return msg
