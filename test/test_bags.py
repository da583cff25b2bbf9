"""Bags written by us read back with rosbags from the bag's own definitions, with the
type hashes of a real ROS 2 Jazzy system."""

from __future__ import annotations

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from seg2track_ros.bags.reader import read_pairs
from seg2track_ros.bags.typestore import TRACKS, typestore
from seg2track_ros.bags.writer import BagFrame, BagWriteError, write_bag
from seg2track_ros.engine.types import Detections

JAZZY_HASHES = {
    "sensor_msgs/msg/Image": (
        "RIHS01_d31d41a9a4c4bc8eae9be757b0beed306564f7526c88ea6a4588fb9582527d47"
    ),
    "vision_msgs/msg/Detection2DArray": (
        "RIHS01_214274120007f4a683866481336b70310268cfa107aebe9d594a6acf75bda968"
    ),
}
SEPARATOR = "=" * 80


def _frames(count=4):
    for i in range(count):
        image = np.zeros((6, 8, 3), np.uint8)
        image[..., 0] = i
        image[2, 3] = (10, 20, 30)
        boxes = np.array([[1.0 + i, 1.5, 4.0 + i, 5.0], [0.0, 0.0, 2.0, 2.0]], np.float32)
        yield BagFrame(
            1_000_000_000 + i * 100_000_000,
            image,
            Detections(boxes, np.array([0.9, 0.4], np.float32), ("car", "pedestrian")),
        )


def _types_from_bag_definition(msgtype: str, text: str) -> dict:
    """Parse a rosbag2 'msg' definition (main type, then MSG: sections) into types."""
    types = {}
    sections = text.split(SEPARATOR)
    types.update(get_types_from_msg(sections[0].strip(), msgtype))
    for section in sections[1:]:
        head, _, body = section.strip().partition("\n")
        assert head.startswith("MSG: ")
        package, name = head[5:].split("/")
        types.update(get_types_from_msg(body, f"{package}/msg/{name}"))
    return types


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_reads_back_from_its_own_definitions_with_jazzy_hashes(tmp_path, storage):
    path = tmp_path / "seq"
    summary = write_bag(path, _frames(), storage=storage)
    assert (summary.frames, summary.detections) == (4, 8)
    with Reader(path) as reader:
        assert {c.msgtype: c.digest for c in reader.connections} == JAZZY_HASHES
        # A store that knows nothing but what the bag says.
        store = get_typestore(Stores.EMPTY)
        for connection in reader.connections:
            store.register(_types_from_bag_definition(connection.msgtype, connection.msgdef.data))
            assert store.hash_rihs01(connection.msgtype) == JAZZY_HASHES[connection.msgtype]
        messages = [
            (c.topic, store.deserialize_cdr(bytes(data), c.msgtype))
            for c, _t, data in reader.messages()
        ]
    images = [m for topic, m in messages if topic == "/kitti/camera_color_left/image_raw"]
    arrays = [m for topic, m in messages if topic == "/detections"]
    assert len(images) == len(arrays) == 4
    image = images[1]
    assert (image.encoding, image.header.frame_id, image.step) == ("bgr8", "camera_color_left", 24)
    assert image.header.stamp.sec == 1 and image.header.stamp.nanosec == 100_000_000
    pixels = np.asarray(image.data).reshape(6, 8, 3)
    assert pixels[0, 0, 0] == 1 and tuple(pixels[2, 3]) == (10, 20, 30)
    detection = arrays[1].detections[0]
    assert arrays[1].header == image.header and detection.header == image.header
    assert (detection.bbox.center.position.x, detection.bbox.size_x) == (3.5, 3.0)
    assert detection.results[0].hypothesis.class_id == "car"
    assert detection.results[0].hypothesis.score == pytest.approx(0.9)


def test_read_pairs_matches_images_and_detections_by_stamp(tmp_path):
    path = tmp_path / "seq"
    write_bag(path, _frames(3))
    pairs = list(read_pairs(path))
    assert [p.stamp_ns for p in pairs] == [1_000_000_000, 1_100_000_000, 1_200_000_000]
    assert all(p.detections_cdr is not None for p in pairs)


def test_existing_target_is_refused_and_bad_frames_leave_no_bag(tmp_path):
    path = tmp_path / "seq"
    write_bag(path, _frames(1))
    with pytest.raises(BagWriteError, match="already exists"):
        write_bag(path, _frames(1))
    bad = [BagFrame(1, np.zeros((4, 4), np.uint8), Detections.empty())]
    with pytest.raises(BagWriteError, match="BGR image"):
        write_bag(tmp_path / "bad", bad)
    assert not (tmp_path / "bad").exists()


def test_tracks_type_hash_equals_the_rosidl_build():
    import json
    from pathlib import Path

    from ament_index_python.packages import get_package_share_directory

    share = Path(get_package_share_directory("seg2track_msgs"))
    built = json.loads((share / "msg" / "TrackedObjectArray.json").read_text())
    (entry,) = [h for h in built["type_hashes"] if h["type_name"] == TRACKS]
    assert typestore().hash_rihs01(TRACKS) == entry["hash_string"]
