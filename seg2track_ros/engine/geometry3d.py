"""From 2-D track masks to 3-D measurements: a pinhole camera, depth images, point clouds.

ROS-free: plain numpy arrays in and out. Frames follow REP-103's camera optical frame:
x right, y down, z forward (metres), the frame of the image the masks belong to.

Per track the points inside its mask, eroded by ``erosion`` pixels (depth bleeds across
object edges: a pixel on the boundary often carries the background's depth, or a blend),
are collected from either

- a registered depth image (one depth per colour pixel, 16UC1 millimetres or 32FC1
  metres, or an image of another size with the same aspect ratio, resampled to the
  colour image by nearest neighbour), back-projected through the camera model; or
- a point cloud in a sensor frame (N, 3) plus the 4x4 camera-from-sensor transform:
  each point in front of the camera is projected into the image and belongs to the track
  whose (eroded) mask holds that pixel.

From those points: the centre (per-axis median, robust to the outliers a mask edge
still lets in), the extent (per-axis ``extent_percentiles``, so a few stray points do not
inflate it), and the count of valid points. Depths that are NaN, inf, zero or outside
[``min_range``, ``max_range``] are invalid. A track with fewer than
``min_valid_points`` valid points gets no 3-D estimate (``Measurement3D.valid`` false).

What the points measure is the object's visible surface: a camera or a LiDAR sees the
side facing it, so the median lies on or just behind that surface, not at the middle of
the object's full 3-D box, and the extent along the viewing direction is that of the
visible surface (about zero for a flat face seen head-on). For the classes with a
typical size in ``LiftConfig.object_sizes`` the hidden part is completed: an upright box
of that size is fitted to the visible points (amodal3d.py) and its centre, size and yaw
are the measurement; other classes keep the visible-surface median and extent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from seg2track_ros.engine.amodal3d import ObjectSize, amodal_box
from seg2track_ros.engine.types import InvalidInputError


class CameraModelError(InvalidInputError):
    """A camera model that cannot project (zero or non-finite focal length, bad shape)."""


class DepthImageError(InvalidInputError):
    """A depth image the lifting cannot use (wrong dtype, shape, or size)."""


class PointCloudError(InvalidInputError):
    """A point cloud or transform the lifting cannot use (shape, non-finite transform)."""


@dataclass(frozen=True)
class PinholeCamera:
    """A pinhole camera without distortion (rectified or registered images).

    ``fx, fy, cx, cy`` in pixels for an image of ``width`` x ``height``.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(np.isfinite(v) for v in values):
            raise CameraModelError(f"camera intrinsics must be finite, got {values}")
        if self.fx <= 0 or self.fy <= 0:
            raise CameraModelError(
                f"camera focal lengths must be positive, got fx={self.fx}, fy={self.fy}"
                " (an all-zero camera_info K means the camera is not calibrated)"
            )
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise CameraModelError(
                f"camera image size must be positive, got {self.width}x{self.height}"
            )

    @classmethod
    def from_k(cls, k, width: int, height: int) -> PinholeCamera:
        """From the 3x3 intrinsic matrix K (row-major, 9 values or 3x3)."""
        k = np.asarray(k, dtype=np.float64)
        if k.size != 9:
            raise CameraModelError(f"K must have 9 values, got {k.size}")
        k = k.reshape(3, 3)
        return cls(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), width, height)

    @classmethod
    def from_projection(cls, p, width: int, height: int) -> tuple[PinholeCamera, np.ndarray]:
        """From a 3x4 projection matrix P = K [I | t] (rectified stereo, KITTI's P2).

        Returns the camera and t (3,), the translation from the reference (rectified)
        frame to this camera's optical frame: x_cam = x_ref + t.
        """
        p = np.asarray(p, dtype=np.float64)
        if p.size != 12:
            raise CameraModelError(f"P must have 12 values, got {p.size}")
        p = p.reshape(3, 4)
        camera = cls.from_k(p[:, :3], width, height)
        if abs(p[0, 1]) > 1e-9 * abs(p[0, 0]) or np.abs(p[2, :3] - (0, 0, 1)).max() > 1e-9:
            raise CameraModelError(
                "P's left 3x3 block must be an upper-triangular K with last row 0 0 1"
            )
        t = np.linalg.solve(p[:, :3], p[:, 3])
        return camera, t

    def scaled_to(self, width: int, height: int) -> PinholeCamera:
        """The same camera for an image resized to ``width`` x ``height``."""
        sx, sy = width / self.width, height / self.height
        return PinholeCamera(
            self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, int(width), int(height)
        )

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) points in the optical frame -> (N, 2) pixel coordinates and (N,) depth.

        Pixel coordinates are continuous, pixel centres at integer + 0.5 (the pixel
        (u, v) covers [u, u + 1) x [v, v + 1)). Points with z <= 0 get NaN coordinates.
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        z = points[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.fx * points[:, 0] / z + self.cx
            v = self.fy * points[:, 1] / z + self.cy
        uv = np.stack([u, v], axis=1)
        uv[~(z > 0)] = np.nan
        return uv, z

    def rays(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per pixel index (u, v) the x/z and y/z of its centre's viewing ray."""
        return (u + 0.5 - self.cx) / self.fx, (v + 0.5 - self.cy) / self.fy


@dataclass(frozen=True)
class LiftConfig:
    """How masks become 3-D measurements (ROS parameters of the same names)."""

    # Depth images in integer units (16UC1) are multiplied by this to give metres
    # (0.001: millimetres). Float images (32FC1) are metres already.
    depth_scale: float = 0.001
    # Depths outside [min_range, max_range] metres are invalid.
    min_range: float = 0.3
    max_range: float = 80.0
    # Each mask is eroded by this many pixels before its points are taken.
    erosion: int = 2
    # Fewer valid points than this: no 3-D estimate for the track.
    min_valid_points: int = 20
    # The extent along each axis spans these percentiles of the points.
    extent_low_percentile: float = 5.0
    extent_high_percentile: float = 95.0
    # Class -> typical size: tracks of these classes get an amodal box (the whole
    # object, amodal3d.amodal_box) instead of the extent of their visible surface.
    object_sizes: dict[str, ObjectSize] = field(default_factory=dict)

    def validate(self) -> None:
        if not (np.isfinite(self.depth_scale) and self.depth_scale > 0):
            raise InvalidInputError(f"depth_scale must be > 0, got {self.depth_scale}")
        if not (0 <= self.min_range < self.max_range and np.isfinite(self.max_range)):
            raise InvalidInputError(
                f"need 0 <= min_range < max_range, got {self.min_range}, {self.max_range}"
            )
        if int(self.erosion) != self.erosion or self.erosion < 0:
            raise InvalidInputError(f"erosion must be an integer >= 0, got {self.erosion}")
        if int(self.min_valid_points) != self.min_valid_points or self.min_valid_points < 1:
            raise InvalidInputError(
                f"min_valid_points must be an integer >= 1, got {self.min_valid_points}"
            )
        if not (0 <= self.extent_low_percentile < self.extent_high_percentile <= 100):
            raise InvalidInputError(
                "need 0 <= extent_low_percentile < extent_high_percentile <= 100, got"
                f" {self.extent_low_percentile}, {self.extent_high_percentile}"
            )


@dataclass(frozen=True)
class Measurement3D:
    """One track's 3-D measurement on one frame, in the camera optical frame (metres).

    ``centre`` (3,) per-axis median, ``size`` (3,) per-axis percentile span,
    ``valid_points`` the count of valid points in the eroded mask; ``valid`` is false
    (and centre and size NaN) when that count is below ``min_valid_points``. With
    ``amodal`` (the track's class has a size in ``LiftConfig.object_sizes``) centre,
    size and ``yaw`` are those of the whole object (amodal3d.AmodalBox: size is
    (across, height, along) in the box's axes, turned by ``yaw`` about camera y).
    """

    label: int
    centre: np.ndarray
    size: np.ndarray
    valid_points: int
    valid: bool
    yaw: float = 0.0
    amodal: bool = False


def depth_to_metres(depth: np.ndarray, config: LiftConfig) -> np.ndarray:
    """A depth image as float32 metres, NaN where the depth is invalid.

    uint16 (16UC1) is multiplied by ``depth_scale``; float32/float64 (32FC1) is metres.
    Zero, NaN, inf and depths outside [min_range, max_range] become NaN.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise DepthImageError(f"a depth image must be (H, W), got shape {depth.shape}")
    if depth.dtype == np.uint16:
        metres = depth.astype(np.float32) * np.float32(config.depth_scale)
    elif depth.dtype in (np.float32, np.float64):
        metres = depth.astype(np.float32, copy=True)
    else:
        raise DepthImageError(
            f"depth images must be uint16 (16UC1, scaled by depth_scale) or float32 (32FC1,"
            f" metres), got {depth.dtype}"
        )
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(metres) | (metres <= 0)
        bad |= (metres < config.min_range) | (metres > config.max_range)
    metres[bad] = np.nan
    return metres


def match_depth_size(depth_m: np.ndarray, height: int, width: int) -> np.ndarray:
    """The depth image at the colour image's size.

    Equal sizes pass through; a depth image with the same aspect ratio (within 1 %) is
    resampled by nearest neighbour (never blending a foreground and a background depth);
    any other size raises DepthImageError.
    """
    dh, dw = depth_m.shape
    if (dh, dw) == (height, width):
        return depth_m
    if abs(dw / dh - width / height) > 0.01 * (width / height):
        raise DepthImageError(
            f"depth image {dw}x{dh} does not match the colour image {width}x{height}"
            " (neither the same size nor the same aspect ratio): register the depth to"
            " the colour camera"
        )
    return cv2.resize(depth_m, (width, height), interpolation=cv2.INTER_NEAREST)


def erode_labels(labels: np.ndarray, erosion: int) -> np.ndarray:
    """The label image with each label's region eroded by ``erosion`` pixels.

    A pixel keeps its label when every pixel of the (2e+1) x (2e+1) square around it has
    that same label (a min and a max filter agree); the rest becomes 0. One pass for all
    labels; image borders are replicated, so a mask touching the border is not eroded
    from the outside.
    """
    labels = np.asarray(labels)
    if erosion <= 0:
        return labels
    kernel = np.ones((2 * erosion + 1, 2 * erosion + 1), np.uint8)
    work = labels.astype(np.uint16, copy=False)
    low = cv2.erode(work, kernel, borderType=cv2.BORDER_REPLICATE)
    high = cv2.dilate(work, kernel, borderType=cv2.BORDER_REPLICATE)
    return np.where(low == high, work, 0).astype(labels.dtype, copy=False)


def _measure(
    label: int, points: np.ndarray, config: LiftConfig, class_id: str | None = None
) -> Measurement3D:
    count = len(points)
    if count < config.min_valid_points:
        nan3 = np.full(3, np.nan)
        return Measurement3D(label, nan3, nan3.copy(), count, False)
    prior = config.object_sizes.get(class_id) if class_id is not None else None
    if prior is not None:
        box = amodal_box(points, prior)
        return Measurement3D(label, box.centre, box.size, count, True, box.yaw, True)
    centre = np.median(points, axis=0)
    low, high = np.percentile(
        points, [config.extent_low_percentile, config.extent_high_percentile], axis=0
    )
    return Measurement3D(label, centre, high - low, count, True)


def _group(label_of_point: np.ndarray, points: np.ndarray, labels: list[int], config, classes):
    if classes is not None and len(classes) != len(labels):
        raise InvalidInputError(f"{len(classes)} classes for {len(labels)} track labels")
    order = np.argsort(label_of_point, kind="stable")
    sorted_labels = label_of_point[order]
    out = []
    for k, label in enumerate(labels):
        lo, hi = np.searchsorted(sorted_labels, [label, label + 1])
        class_id = classes[k] if classes is not None else None
        out.append(_measure(label, points[order[lo:hi]], config, class_id))
    return out


def lift_from_depth(
    labels: np.ndarray,
    track_labels: list[int],
    depth: np.ndarray,
    camera: PinholeCamera,
    config: LiftConfig,
    classes: Sequence[str] | None = None,
) -> list[Measurement3D]:
    """One Measurement3D per entry of ``track_labels`` (values in ``labels``), in order.
    ``classes`` (one per track label) picks the amodal box size from
    ``config.object_sizes``; None: every track gets its visible-surface measurement.

    ``labels`` (H, W) integer: 0 background, each track's pixels its label.
    ``depth`` (h, w) uint16 or float32, registered to the colour camera (see
    ``match_depth_size``). ``camera`` is scaled to the label image's size when it was
    calibrated at another resolution.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InvalidInputError(f"labels must be (H, W), got shape {labels.shape}")
    height, width = labels.shape
    metres = match_depth_size(depth_to_metres(depth, config), height, width)
    if (camera.width, camera.height) != (width, height):
        camera = camera.scaled_to(width, height)
    eroded = erode_labels(labels, int(config.erosion))
    wanted = np.isin(eroded, np.asarray(track_labels, dtype=eroded.dtype)) & np.isfinite(metres)
    v, u = np.nonzero(wanted)
    z = metres[v, u].astype(np.float64)
    rx, ry = camera.rays(u.astype(np.float64), v.astype(np.float64))
    points = np.stack([rx * z, ry * z, z], axis=1)
    return _group(
        eroded[v, u].astype(np.int64), points, [int(t) for t in track_labels], config, classes
    )


def transform_points(points: np.ndarray, camera_from_sensor: np.ndarray) -> np.ndarray:
    """(N, 3) sensor-frame points -> (N, 3) in the camera frame via a 4x4 transform."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise PointCloudError(f"points must be (N, 3) x, y, z, got shape {points.shape}")
    transform = np.asarray(camera_from_sensor, dtype=np.float64)
    if transform.shape != (4, 4) or not np.isfinite(transform).all():
        raise PointCloudError(
            f"the camera-from-sensor transform must be a finite 4x4 matrix, got {transform.shape}"
        )
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite points stay non-finite
        return points @ transform[:3, :3].T + transform[:3, 3]


def lift_from_points(
    labels: np.ndarray,
    track_labels: list[int],
    points: np.ndarray,
    camera_from_sensor: np.ndarray,
    camera: PinholeCamera,
    config: LiftConfig,
    classes: Sequence[str] | None = None,
) -> list[Measurement3D]:
    """As ``lift_from_depth``, from (N, 3) sensor-frame points and their transform.

    Points with non-finite coordinates, or whose depth along the camera axis lies
    outside [min_range, max_range], or that project outside the image, are dropped; of
    several points on one pixel all are kept (the median takes care of a background
    point that slips through a mask's eroded edge).
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InvalidInputError(f"labels must be (H, W), got shape {labels.shape}")
    height, width = labels.shape
    if (camera.width, camera.height) != (width, height):
        camera = camera.scaled_to(width, height)
    in_camera = transform_points(points, camera_from_sensor)
    finite = np.isfinite(in_camera).all(axis=1)
    z = in_camera[:, 2]
    with np.errstate(invalid="ignore"):
        keep = finite & (z >= max(config.min_range, 1e-6)) & (z <= config.max_range)
    in_camera = in_camera[keep]
    uv, _ = camera.project(in_camera)
    u = np.floor(uv[:, 0])
    v = np.floor(uv[:, 1])
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    in_camera, u, v = in_camera[inside], u[inside].astype(np.intp), v[inside].astype(np.intp)
    eroded = erode_labels(labels, int(config.erosion))
    point_labels = eroded[v, u].astype(np.int64)
    on_track = np.isin(point_labels, np.asarray(track_labels, dtype=np.int64))
    return _group(
        point_labels[on_track],
        in_camera[on_track],
        [int(t) for t in track_labels],
        config,
        classes,
    )


def transform_from_pose(pose) -> np.ndarray:
    """4x4 transform from ``x y z qx qy qz qw`` (7 numbers, the quaternion normalised;
    strings are parsed). PointCloudError when it is not 7 finite numbers or the
    quaternion is zero."""
    try:
        values = np.array([float(v) for v in pose], dtype=np.float64)
    except (TypeError, ValueError):
        raise PointCloudError(
            f"a transform must be 7 numbers x y z qx qy qz qw, got {pose!r}"
        ) from None
    if values.shape != (7,) or not np.isfinite(values).all():
        raise PointCloudError(
            f"a transform must be 7 finite numbers x y z qx qy qz qw, got {len(values)}"
        )
    norm = np.linalg.norm(values[3:])
    if norm < 1e-9:
        raise PointCloudError("the transform's quaternion qx qy qz qw is zero")
    x, y, z, w = values[3:] / norm
    transform = np.eye(4)
    transform[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    transform[:3, 3] = values[:3]
    return transform
