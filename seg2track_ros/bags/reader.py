"""Reading image + detection bags back as per-frame serialized messages."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rosbags.rosbag2 import Reader, ReaderError

from seg2track_ros.bags.typestore import (
    CAMERA_INFO,
    DETECTIONS,
    IMAGE,
    IMAGE_TYPES,
    POINTS,
    TF,
    typestore,
)
from seg2track_ros.errors import UserFacingError
from seg2track_ros.stamps import header_stamp_ns


class BagReadError(UserFacingError):
    """The bag is missing, unreadable or lacks the topics needed."""


@dataclass(frozen=True)
class BagMessagePair:
    """One frame: the image and its detections (None if the bag has none for it), as CDR
    bytes exactly as stored, plus the image header's stamp and the image's type
    (sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage)."""

    stamp_ns: int
    image_cdr: bytes
    detections_cdr: bytes | None
    image_type: str = IMAGE
    # The frame's sensor_msgs/CameraInfo and PointCloud2 (kitti-to-bag --calib
    # --velodyne), paired by header stamp; None when the bag has none for it.
    camera_info_cdr: bytes | None = None
    points_cdr: bytes | None = None

    @property
    def compressed(self) -> bool:
        return self.image_type != IMAGE


def stamp_of(cdr: bytes, msgtype: str) -> int:
    message = typestore().deserialize_cdr(cdr, msgtype)
    return header_stamp_ns(message.header)


def read_pairs(
    path: Path,
    image_topic: str | None = None,
    detections_topic: str | None = None,
    *,
    with_detections: bool = True,
) -> Iterator[BagMessagePair]:
    """Frames in image-stamp order, detections matched by header stamp. Images are
    sensor_msgs/Image or sensor_msgs/CompressedImage (one topic of either); detections
    come from `detections_topic`, or from the bag's one detections topic (a bag with
    several, e.g. a stereo bag, needs it named); none with ``with_detections=False``."""
    path = Path(path)
    if not path.exists():
        raise BagReadError(f"bag {path} does not exist")
    reader = open_bag(path)
    try:
        images = _image_connections(reader, path, image_topic)
        detections = (
            _detections_connections(reader, path, detections_topic) if with_detections else []
        )
        extras = [c for c in reader.connections if c.msgtype in (CAMERA_INFO, POINTS)]
        frames: dict[int, bytes] = {}
        found: dict[int, bytes] = {}
        by_type: dict[str, dict[int, bytes]] = {CAMERA_INFO: {}, POINTS: {}}
        for connection, _time, data in reader.messages(connections=images + detections + extras):
            raw = bytes(data)
            if connection.msgtype in IMAGE_TYPES:
                frames[stamp_of(raw, connection.msgtype)] = raw
            elif connection.msgtype == DETECTIONS:
                found[stamp_of(raw, DETECTIONS)] = raw
            else:  # header stamp only: a cloud is never decoded here
                by_type[connection.msgtype][_header_stamp(raw)] = raw
    finally:
        reader.close()
    image_type = images[0].msgtype
    for stamp in sorted(frames):
        yield BagMessagePair(
            stamp,
            frames[stamp],
            found.get(stamp),
            image_type,
            by_type[CAMERA_INFO].get(stamp),
            by_type[POINTS].get(stamp),
        )


def read_static_transform(path: Path) -> tuple[str, str, tuple[float, ...]] | None:
    """The first transform on /tf_static: (parent frame, child frame, x y z qx qy qz qw),
    or None when the bag has none."""
    reader = open_bag(Path(path))
    try:
        connections = [c for c in reader.connections if c.msgtype == TF and c.topic == "/tf_static"]
        for _connection, _time, data in reader.messages(connections=connections):
            message = typestore().deserialize_cdr(bytes(data), TF)
            for stamped in message.transforms:
                t, q = stamped.transform.translation, stamped.transform.rotation
                pose = (t.x, t.y, t.z, q.x, q.y, q.z, q.w)
                return stamped.header.frame_id, stamped.child_frame_id, pose
    finally:
        reader.close()
    return None


def open_bag(path: Path) -> Reader:
    """An opened rosbags Reader for `path` (close it); BagReadError when `path` is not a
    rosbag2 bag (a folder with metadata.yaml, or the bag's .mcap/.db3 file)."""
    path = Path(path)
    if not path.exists():
        raise BagReadError(f"bag {path} does not exist")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise BagReadError(
            f"{path} is not a rosbag2 bag: the folder has no metadata.yaml"
            " (write one with `seg2track kitti-to-bag`, or record one with `ros2 bag record`)"
        )
    try:
        reader = Reader(path)
        reader.open()
    except ReaderError as error:
        raise BagReadError(f"cannot read the bag {path}: {error}") from None
    return reader


def read_image_stamps(path: Path, image_topic: str | None = None) -> list[int]:
    """The image stamps of an image bag, ascending (frame i has the i-th stamp, as in
    read_pairs), read from each message's header without decoding its pixels."""
    reader = open_bag(Path(path))
    try:
        images = _image_connections(reader, path, image_topic)
        stamps = {_header_stamp(bytes(data)) for _c, _t, data in reader.messages(images)}
    finally:
        reader.close()
    return sorted(stamps)


def _header_stamp(cdr: bytes) -> int:
    """A std_msgs/Header's stamp at the start of a CDR message (after the 4-byte
    encapsulation header, whose second byte says the byte order)."""
    order = "<" if cdr[1] & 1 else ">"
    sec, nanosec = struct.unpack_from(f"{order}iI", cdr, 4)
    return sec * 1_000_000_000 + nanosec


def _detections_connections(reader: Reader, path: Path, topic: str | None) -> list:
    """The bag's detections connections to read: those on `topic`, or all when the bag
    has at most one detections topic (an image bag without detections has none)."""
    connections = [c for c in reader.connections if c.msgtype == DETECTIONS]
    topics = sorted({c.topic for c in connections})
    if topic is not None:
        if topic not in topics:
            raise BagReadError(f"bag {path} has no detections on {topic} (it has {topics})")
        return [c for c in connections if c.topic == topic]
    if len(topics) > 1:
        raise BagReadError(
            f"bag {path} has several detections topics ({topics}); name the one that goes"
            " with the images (replay: --detections-topic)"
        )
    return connections


def _image_connections(reader: Reader, path: Path, image_topic: str | None) -> list:
    images = [c for c in reader.connections if c.msgtype in IMAGE_TYPES]
    if image_topic is not None:
        images = [c for c in images if c.topic == image_topic]
    if len(images) != 1:
        topics = sorted(c.topic for c in reader.connections if c.msgtype in IMAGE_TYPES)
        raise BagReadError(
            f"bag {path} needs exactly one image topic (found {topics}); pass image_topic"
        )
    return images
