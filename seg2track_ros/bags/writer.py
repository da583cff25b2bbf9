"""Writing image + detection sequences to rosbag2 (metadata version 9, MCAP or sqlite3)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from seg2track_ros.bags.typestore import COMPRESSED_IMAGE, DETECTIONS, IMAGE, typestore
from seg2track_ros.engine.types import Detections
from seg2track_ros.errors import UserFacingError, make_parent_folder

KITTI_IMAGE_TOPIC = "/kitti/camera_color_left/image_raw"
KITTI_FRAME_ID = "camera_color_left"
DETECTIONS_TOPIC = "/detections"
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
    # A second camera's image and detections at the same stamp (KITTI's right colour
    # camera, image_03), written when write_bag is given a `right` camera.
    right_bgr: np.ndarray | None = None
    right_detections: Detections | None = None


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
