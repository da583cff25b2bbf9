"""Several cameras: the 'cameras' parameter's checks, per-camera topic names, the shipped
config/kitti_stereo.yaml and tracker.launch.py with two cameras (parsed and run with
stand-ins for `launch`, which is not installable here)."""

from __future__ import annotations

import pytest

from seg2track_ros.params import ParameterError, config_from_params_files

from conftest import REPO_ROOT
from launch_stand_ins import run_tracker_launch


def test_default_is_one_unnamed_camera_on_the_plain_topics():
    from seg2track_ros.ros.tracker_node import _Camera

    _, settings = config_from_params_files()
    assert settings.cameras == [""]
    camera = _Camera("")
    assert [camera.topic(t) for t in ("image", "detections", "tracks")] == [
        "image",
        "detections",
        "tracks",
    ]


def test_named_cameras_get_their_own_topics():
    from seg2track_ros.ros.tracker_node import _Camera

    front = _Camera("front")
    assert front.topic("image") == "front/image"
    assert front.topic("image/compressed") == "front/image/compressed"
    assert front.topic("tracks") == "front/tracks"
    assert front.topic("/kitti/camera_color_{camera}/image_raw") == (
        "/kitti/camera_color_front/image_raw"
    )
    assert front.topic("/kitti/velo/pointcloud") == "/kitti/velo/pointcloud"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cameras": ["front", "front"]}, "names a camera twice"),
        ({"cameras": ["front", ""]}, "not a valid camera name"),
        ({"cameras": ["2nd"]}, "not a valid camera name"),
        ({"cameras": ["a/b"]}, "not a valid camera name"),
        ({"cameras": []}, "is empty"),
        ({"cameras": ["front"], "image_topic": "/camera/image_raw"}, "absolute topic"),
        ({"image_topic": "/cam_{camera}/image"}, "names none"),
        ({"cameras": ["left", "right"], "lift3d.enabled": True}, "serves one camera"),
    ],
)
def test_bad_camera_settings_name_the_parameter(overrides, message):
    with pytest.raises(ParameterError, match=message):
        config_from_params_files([], overrides)


def test_one_named_camera_may_lift_to_3d():
    _, settings = config_from_params_files([], {"cameras": ["front"], "lift3d.enabled": True})
    assert settings.lift3d.enabled and settings.cameras == ["front"]


def test_kitti_stereo_config():
    config, settings = config_from_params_files([REPO_ROOT / "config" / "kitti_stereo.yaml"])
    kitti, _ = config_from_params_files([REPO_ROOT / "config" / "kitti.yaml"])
    assert settings.cameras == ["left", "right"]
    assert settings.mode == "lockstep" and settings.input_reliability == "reliable"
    assert config == kitti  # the same engine settings as the one-camera KITTI config
    from seg2track_ros.bags.writer import KITTI_IMAGE_TOPIC
    from seg2track_ros.ros.tracker_node import _Camera

    assert _Camera("left").topic(settings.image_topic) == KITTI_IMAGE_TOPIC


TRACKER_LAUNCH = REPO_ROOT / "launch" / "tracker.launch.py"


def test_launch_file_with_two_cameras(monkeypatch):
    node, remaps = run_tracker_launch(
        monkeypatch,
        TRACKER_LAUNCH,
        cameras="front, rear",
        camera_remaps="front/image=/cam_front/image_raw,"
        "front/detections=/yolo_front/detections,rear/image=/cam_rear/image_raw",
        model="tiny",
    )
    assert node.kwargs["executable"] == "tracker_node"
    _, overrides = node.kwargs["parameters"]
    assert overrides == {"cameras": ["front", "rear"], "model": "tiny"}
    assert remaps["front/image"] == "/cam_front/image_raw"
    assert remaps["front/detections"] == "/yolo_front/detections"
    assert remaps["rear/image"] == "/cam_rear/image_raw"
    # The camera list the launch file hands over is one the node accepts.
    config_from_params_files([], overrides)


def test_launch_file_without_cameras_is_unchanged(monkeypatch):
    node, remaps = run_tracker_launch(monkeypatch, TRACKER_LAUNCH)
    assert len(node.kwargs["parameters"]) == 1  # the params file only
    assert list(remaps) == [
        "image",
        "image/compressed",
        "detections",
        "camera_info",
        "depth",
        "points",
    ]


def test_launch_file_refuses_a_bad_remap(monkeypatch):
    with pytest.raises(ValueError, match="not '<from>=<to>'"):
        run_tracker_launch(monkeypatch, TRACKER_LAUNCH, camera_remaps="front/image")


def test_stereo_bag_has_both_cameras_on_the_stereo_config_topics(tmp_path):
    """kitti-to-bag --images-right: each camera's images and detections on the topics
    config/kitti_stereo.yaml reads, with its own frame id and the same stamps."""
    import numpy as np
    from rosbags.rosbag2 import Reader

    from seg2track_ros.bags.typestore import typestore
    from seg2track_ros.bags.writer import STEREO_LEFT, STEREO_RIGHT, BagFrame, write_bag
    from seg2track_ros.engine.types import Detections
    from seg2track_ros.ros.tracker_node import _Camera

    def dets(n):
        return Detections(
            np.array([[1, 1, 4, 4]] * n, np.float32), np.full(n, 0.9, np.float32), ("car",) * n
        )

    frames = [
        BagFrame(
            1_000_000_000 + k,
            np.full((6, 8, 3), k, np.uint8),
            dets(1),
            right_bgr=np.full((5, 7, 3), 100 + k, np.uint8),
            right_detections=dets(2),
        )
        for k in range(3)
    ]
    topics = {
        "image_topic": STEREO_LEFT.image_topic,
        "detections_topic": STEREO_LEFT.detections_topic,
        "frame_id": STEREO_LEFT.frame_id,
    }
    summary = write_bag(tmp_path / "stereo", frames, right=STEREO_RIGHT, **topics)
    assert (summary.frames, summary.detections) == (3, 9)
    store = typestore()
    with Reader(tmp_path / "stereo") as reader:
        messages = [
            (c.topic, store.deserialize_cdr(bytes(data), c.msgtype))
            for c, _t, data in reader.messages()
        ]
    _, settings = config_from_params_files([REPO_ROOT / "config" / "kitti_stereo.yaml"])
    for camera, frame_id, size, count in (
        ("left", "camera_color_left", (6, 8), 1),
        ("right", "camera_color_right", (5, 7), 2),
    ):
        image_topic = _Camera(camera).topic(settings.image_topic)
        detections_topic = _Camera(camera).topic(settings.detections_topic)
        images = [m for t, m in messages if t == image_topic]
        arrays = [m for t, m in messages if t == detections_topic]
        assert len(images) == len(arrays) == 3, camera
        assert [m.header.frame_id for m in images] == [frame_id] * 3
        assert [(m.height, m.width) for m in images] == [size] * 3
        assert [m.header.stamp.nanosec for m in images] == [0, 1, 2]
        assert [len(a.detections) for a in arrays] == [count] * 3
