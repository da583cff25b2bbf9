"""Writing image + detection sequences to rosbag2 (metadata version 9, MCAP or sqlite3)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from seg2track_ros.bags.typestore import (
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    DETECTIONS,
    IMAGE,
    POINTS,
    TF,
    typestore,
)
from seg2track_ros.engine.types import Detections
from seg2track_ros.errors import UserFacingError, make_parent_folder

KITTI_IMAGE_TOPIC = "/kitti/camera_color_left/image_raw"
KITTI_FRAME_ID = "camera_color_left"
DETECTIONS_TOPIC = "/detections"
KITTI_CAMERA_INFO_TOPIC = "/kitti/camera_color_left/camera_info"
KITTI_POINTS_TOPIC = "/kitti/velo/pointcloud"
KITTI_LIDAR_FRAME_ID = "velo_link"
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
# kitti-to-bag's clock without timestamps.txt: frame i at 1.0 s + i / 10 Hz.
DEFAULT_FIRST_STAMP_NS = 1_000_000_000
DEFAULT_PERIOD_NS = 100_000_000


def default_stamp(index: int) -> int:
    """The stamp kitti-to-bag gives frame `index` when no timestamps are given."""
    return DEFAULT_FIRST_STAMP_NS + index * DEFAULT_PERIOD_NS


class BagWriteError(UserFacingError):
    """The bag cannot be written (target exists, bad frame); the message says why."""


@dataclass(frozen=True)
class BagFrame:
    stamp_ns: int
    image_bgr: np.ndarray  # (H, W, 3) uint8
    detections: Detections
    # (N, 4) float32 x, y, z, reflectance in the LiDAR frame (with write_bag's lidar)
    points: np.ndarray | None = None

    # A second camera's image and detections at the same stamp (KITTI's right colour
    # camera, image_03), written when write_bag is given a `right` camera.
    right_bgr: np.ndarray | None = None
    right_detections: Detections | None = None


@dataclass(frozen=True)
class LidarBag:
    """What kitti-to-bag --calib --velodyne adds: per frame a CameraInfo (``k`` 3x3 and
    ``p`` 3x4 of the colour camera) and a PointCloud2 (x, y, z, intensity float32 in
    ``lidar_frame_id``) with the image's header stamp, and once, on /tf_static, the
    transform image frame <- ``lidar_frame_id`` (``camera_from_lidar``, 4x4)."""

    k: np.ndarray
    p: np.ndarray
    camera_from_lidar: np.ndarray
    camera_info_topic: str = KITTI_CAMERA_INFO_TOPIC
    points_topic: str = KITTI_POINTS_TOPIC
    lidar_frame_id: str = KITTI_LIDAR_FRAME_ID


@dataclass(frozen=True)
class CameraTopics:
    """Where a camera's messages go in a bag."""

    image_topic: str
    detections_topic: str
    frame_id: str


# KITTI's two colour cameras in one bag (`kitti-to-bag --images-right`), the topics
# config/kitti_stereo.yaml reads ('{camera}' = left / right).
STEREO_LEFT = CameraTopics(KITTI_IMAGE_TOPIC, "/detections/left", KITTI_FRAME_ID)
STEREO_RIGHT = CameraTopics(
    "/kitti/camera_color_right/image_raw", "/detections/right", "camera_color_right"
)


@dataclass(frozen=True)
class BagSummary:
    path: Path
    frames: int
    detections: int


def write_bag(
    path: Path,
    frames: Iterable[BagFrame],
    *,
    storage: str = "mcap",
    image_topic: str = KITTI_IMAGE_TOPIC,
    detections_topic: str = DETECTIONS_TOPIC,
    frame_id: str = KITTI_FRAME_ID,
    compressed: str | None = None,
    lidar: LidarBag | None = None,
    right: CameraTopics | None = None,
) -> BagSummary:
    """Write a bag with one bgr8 Image and one Detection2DArray (same header) per frame.

    With ``right``, every frame also carries a second camera's image and detections
    (``BagFrame.right_bgr``, ``right_detections``), written on those topics with the
    same stamp.

    With ``compressed`` ("jpeg" or "png") images are sensor_msgs/CompressedImage on
    ``<image_topic>/compressed`` instead, as image_transport's compressed plugin records
    them.

    The bag is written under its final name only when complete: an error midway
    removes the partial bag.
    """
    path = Path(path)
    if path.exists():
        raise BagWriteError(f"{path} already exists; remove it or choose another --out")
    if compressed is not None and compressed not in ("jpeg", "png"):
        raise BagWriteError(f"compressed must be jpeg or png, got {compressed!r}")
    if storage not in STORAGES:
        raise BagWriteError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    make_parent_folder(path, "bag")
    store = typestore()
    writer = Writer(path, version=9, storage_plugin=STORAGES[storage])
    count = detection_count = 0
    writer.open()
    try:
        if compressed is None:
            images = writer.add_connection(image_topic, IMAGE, typestore=store)
        else:
            topic = f"{image_topic.rstrip('/')}/compressed"
            images = writer.add_connection(topic, COMPRESSED_IMAGE, typestore=store)
        detections = writer.add_connection(detections_topic, DETECTIONS, typestore=store)
        lidar_connections = None
        if lidar is not None:
            lidar_connections = (
                writer.add_connection(lidar.camera_info_topic, CAMERA_INFO, typestore=store),
                writer.add_connection(lidar.points_topic, POINTS, typestore=store),
                writer.add_connection(
                    "/tf_static",
                    TF,
                    typestore=store,
                    offered_qos_profiles=[_static_qos()],
                ),
            )
        first = True
        cameras = [(images, detections, frame_id)]
        if right is not None:
            right_images = writer.add_connection(
                right.image_topic if compressed is None else f"{right.image_topic}/compressed",
                IMAGE if compressed is None else COMPRESSED_IMAGE,
                typestore=store,
            )
            right_detections = writer.add_connection(
                right.detections_topic, DETECTIONS, typestore=store
            )
            cameras.append((right_images, right_detections, right.frame_id))
        for frame in frames:
            views = [(frame.image_bgr, frame.detections)]
            if right is not None:
                if frame.right_bgr is None or frame.right_detections is None:
                    raise BagWriteError(f"frame at {frame.stamp_ns} ns has no right image")
                views.append((frame.right_bgr, frame.right_detections))
            for (image_conn, det_conn, camera_frame_id), (bgr, dets) in zip(
                cameras, views, strict=True
            ):
                header = _header(store, frame.stamp_ns, camera_frame_id)
                if compressed is None:
                    image = _image(store, header, bgr)
                else:
                    image = _compressed(store, header, bgr, compressed)
                array = _detections(store, header, dets)
                writer.write(
                    image_conn, frame.stamp_ns, store.serialize_cdr(image, image_conn.msgtype)
                )
                writer.write(det_conn, frame.stamp_ns, store.serialize_cdr(array, DETECTIONS))
                detection_count += len(dets)
            header = _header(store, frame.stamp_ns, frame_id)
            if lidar_connections is not None:
                info_connection, points_connection, tf_connection = lidar_connections
                if first:
                    tf = _static_transform(store, header, lidar)
                    writer.write(tf_connection, frame.stamp_ns, store.serialize_cdr(tf, TF))
                height, width = frame.image_bgr.shape[:2]
                info = _camera_info(store, header, lidar, width, height)
                writer.write(
                    info_connection, frame.stamp_ns, store.serialize_cdr(info, CAMERA_INFO)
                )
                if frame.points is not None:
                    cloud_header = _header(store, frame.stamp_ns, lidar.lidar_frame_id)
                    cloud = _cloud(store, cloud_header, frame.points)
                    writer.write(
                        points_connection, frame.stamp_ns, store.serialize_cdr(cloud, POINTS)
                    )
            first = False
            count += 1
    except BaseException:
        writer.close()
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        raise
    writer.close()
    return BagSummary(path, count, detection_count)


def _header(store, stamp_ns: int, frame_id: str):
    types = store.types
    stamp = types["builtin_interfaces/msg/Time"](
        sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000)
    )
    return types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def _static_qos():
    """/tf_static is latched in ROS 2 (transient local, keep last 1): recorded with that
    profile, `ros2 bag play` offers it the same way and late subscribers still get it."""
    from rosbags.interfaces import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )

    never = QosTime(0, 0)
    return Qos(
        QosHistory.KEEP_LAST,
        1,
        QosReliability.RELIABLE,
        QosDurability.TRANSIENT_LOCAL,
        never,
        never,
        QosLiveliness.AUTOMATIC,
        never,
        False,
    )


def _camera_info(store, header, lidar: LidarBag, width: int, height: int):
    t = store.types
    return t[CAMERA_INFO](
        header=header,
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.zeros(5, np.float64),
        k=np.asarray(lidar.k, np.float64).reshape(9),
        r=np.eye(3).reshape(9),
        p=np.asarray(lidar.p, np.float64).reshape(12),
        binning_x=0,
        binning_y=0,
        roi=t["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        ),
    )


def _cloud(store, header, points: np.ndarray):
    t = store.types
    points = np.ascontiguousarray(np.asarray(points, dtype="<f4").reshape(-1, 4))
    fields = [
        t["sensor_msgs/msg/PointField"](name=name, offset=4 * i, datatype=7, count=1)
        for i, name in enumerate(("x", "y", "z", "intensity"))
    ]
    return t[POINTS](
        header=header,
        height=1,
        width=len(points),
        fields=fields,
        is_bigendian=False,
        point_step=16,
        row_step=16 * len(points),
        data=points.view(np.uint8).reshape(-1),
        is_dense=bool(np.isfinite(points).all()),
    )


def pose_from_transform(transform: np.ndarray) -> tuple[float, ...]:
    """x y z qx qy qz qw of a 4x4 transform (its rotation orthonormalised: KITTI's
    R_rect @ Tr_velo_cam is orthonormal only to about 1e-6)."""
    from scipy.spatial.transform import Rotation

    transform = np.asarray(transform, dtype=np.float64)
    u, _, vt = np.linalg.svd(transform[:3, :3])
    qx, qy, qz, qw = Rotation.from_matrix(u @ vt).as_quat()
    x, y, z = transform[:3, 3]
    return (float(x), float(y), float(z), float(qx), float(qy), float(qz), float(qw))


def _static_transform(store, header, lidar: LidarBag):
    t = store.types
    x, y, z, qx, qy, qz, qw = pose_from_transform(lidar.camera_from_lidar)
    stamped = t["geometry_msgs/msg/TransformStamped"](
        header=header,
        child_frame_id=lidar.lidar_frame_id,
        transform=t["geometry_msgs/msg/Transform"](
            translation=t["geometry_msgs/msg/Vector3"](x=x, y=y, z=z),
            rotation=t["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw),
        ),
    )
    return t[TF](transforms=[stamped])


def _image(store, header, bgr: np.ndarray):
    if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        raise BagWriteError(f"expected an (H, W, 3) uint8 BGR image, got {bgr.dtype} {bgr.shape}")
    height, width = bgr.shape[:2]
    return store.types[IMAGE](
        header=header,
        height=height,
        width=width,
        encoding="bgr8",
        is_bigendian=0,
        step=width * 3,
        data=np.ascontiguousarray(bgr).reshape(-1),
    )


def _compressed(store, header, bgr: np.ndarray, codec: str):
    from seg2track_ros.ros.conversions import encode_compressed

    _image(store, header, bgr)  # the same checks as a raw image
    fmt, data = encode_compressed(bgr, codec)
    return store.types[COMPRESSED_IMAGE](
        header=header, format=fmt, data=np.frombuffer(data, dtype=np.uint8)
    )


def _detections(store, header, detections: Detections):
    t = store.types
    identity = t["geometry_msgs/msg/Pose"](
        position=t["geometry_msgs/msg/Point"](x=0.0, y=0.0, z=0.0),
        orientation=t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
    )
    items = []
    for (x0, y0, x1, y1), score, class_id in zip(
        detections.boxes.tolist(), detections.scores.tolist(), detections.class_ids, strict=True
    ):
        hypothesis = t["vision_msgs/msg/ObjectHypothesisWithPose"](
            hypothesis=t["vision_msgs/msg/ObjectHypothesis"](class_id=class_id, score=score),
            pose=t["geometry_msgs/msg/PoseWithCovariance"](
                pose=identity, covariance=np.zeros(36, dtype=np.float64)
            ),
        )
        box = t["vision_msgs/msg/BoundingBox2D"](
            center=t["vision_msgs/msg/Pose2D"](
                position=t["vision_msgs/msg/Point2D"](x=(x0 + x1) / 2, y=(y0 + y1) / 2),
                theta=0.0,
            ),
            size_x=x1 - x0,
            size_y=y1 - y0,
        )
        items.append(
            t["vision_msgs/msg/Detection2D"](header=header, results=[hypothesis], bbox=box, id="")
        )
    return t[DETECTIONS](header=header, detections=items)
