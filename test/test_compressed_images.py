"""sensor_msgs/CompressedImage input (issue 12): decoded with OpenCV in the one
conversion module, taken by tracker_node over real DDS with `image_transport:
compressed`, written by `kitti-to-bag --compressed`, played by `replay` and drawn by
`render` from the bag."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage

from seg2track_ros.cli import main
from seg2track_ros.datasets.synthetic import make_sequence
from seg2track_ros.ros.conversions import (
    RejectedInput,
    compressed_image_msg,
    compressed_image_to_rgb,
    encode_compressed,
)

from conftest import RANDOM_WEIGHT_SETTINGS
from node_harness import RANDOM_WEIGHT_PARAMS, NodeUnderTest, detections_msg, scene, scene_boxes


def _message(fmt: str, data: bytes) -> CompressedImage:
    msg = CompressedImage()
    msg.format, msg.data = fmt, data
    return msg


def test_png_round_trip_is_exact_and_jpeg_is_close():
    rgb = scene(3)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    fmt, data = encode_compressed(bgr, "png")
    assert fmt == "bgr8; png compressed bgr8"
    np.testing.assert_array_equal(compressed_image_to_rgb(_message(fmt, data)), rgb)
    fmt, data = encode_compressed(bgr, "jpeg")
    decoded = compressed_image_to_rgb(_message(fmt, data))
    assert decoded.shape == rgb.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - rgb).mean() < 6
    # A plain "jpeg" format (many drivers) and a grey PNG (three equal channels).
    grey = cv2.imencode(".png", rgb[..., 0])[1].tobytes()
    out = compressed_image_to_rgb(_message("png", grey))
    np.testing.assert_array_equal(out, np.repeat(rgb[..., :1], 3, axis=2))


@pytest.mark.parametrize(
    ("fmt", "data", "reason"),
    [
        ("jpeg", b"", "empty_image"),
        ("jpeg", b"not an image at all", "undecodable_image"),
        ("16UC1; compressedDepth png", b"\x00" * 20, "unsupported_encoding"),
        ("tiff", b"\x00" * 20, "unsupported_encoding"),
    ],
)
def test_unusable_compressed_images_are_rejected_with_a_reason(fmt, data, reason):
    with pytest.raises(RejectedInput) as caught:
        compressed_image_to_rgb(_message(fmt, data))
    assert caught.value.reason == reason


def test_pixel_limit_applies_to_the_decoded_size():
    fmt, data = encode_compressed(np.zeros((40, 50, 3), np.uint8), "png")
    with pytest.raises(RejectedInput, match="2000 pixels") as caught:
        compressed_image_to_rgb(_message(fmt, data), max_pixels=1999)
    assert caught.value.reason == "too_many_pixels"


def test_node_tracks_compressed_images_over_dds(ros_context):
    node = NodeUnderTest(
        ros_context, {**RANDOM_WEIGHT_PARAMS, "image_transport": "compressed"}, name="compressed"
    )
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    images = node.client.create_publisher(CompressedImage, "/compressed/image/compressed", qos)
    try:
        assert node.spin_until(
            lambda: (
                images.get_subscription_count() > 0 and node.detections.get_subscription_count() > 0
            ),
            120,
        ), node.output()
        # No subscription on the raw topic: the transport decides which one exists.
        assert node.images.get_subscription_count() == 0
        for frame in range(3):
            bgr = np.ascontiguousarray(scene(frame)[..., ::-1])
            msg = compressed_image_msg(bgr, _header(1000 + frame), codec="png")
            images.publish(msg)
            node.detections.publish(detections_msg(msg.header, scene_boxes(frame)))
            assert node.spin_until(lambda f=frame: len(node.received["tracks"]) > f, 60), (
                node.output()
            )
        last = node.received["tracks"][-1]
        assert last.header.stamp.sec == 1002 and last.objects
        labels = node.received["instance_labels"][-1]
        assert (labels.height, labels.width) == scene(0).shape[:2]
        # A broken image costs only itself, and is counted.
        images.publish(_message("jpeg", b"garbage"))
        assert node.spin_until(
            lambda: node.diagnostics.get("rejected_undecodable_image") == "1", 30
        ), node.diagnostics
    finally:
        node.close()


def _header(sec: int):
    from std_msgs.msg import Header

    header = Header()
    header.stamp.sec = sec
    header.frame_id = "camera"
    return header


def test_compressed_bag_replays_and_renders_like_the_images(tmp_path):
    """kitti-to-bag --compressed png (lossless) -> replay --lockstep gives the results
    `run` gives on the image folder; render draws the bag's own images."""
    from seg2track_ros.bags.reader import read_pairs

    seq = make_sequence(tmp_path, frames=5, size=(72, 120), seed=2)
    detections = tmp_path / "dets.txt"
    assert (
        main(
            [
                "simulate-detections",
                "--gt",
                str(seq.ground_truth),
                "--out",
                str(detections),
                "--seed",
                "0",
            ]
        )
        == 0
    )
    bag = tmp_path / "bag"
    assert (
        main(
            [
                "kitti-to-bag",
                "--images",
                str(seq.images),
                "--detections",
                str(detections),
                "--compressed",
                "png",
                "--out",
                str(bag),
            ]
        )
        == 0
    )
    pairs = list(read_pairs(bag))
    assert len(pairs) == 5 and all(p.compressed for p in pairs)
    settings = RANDOM_WEIGHT_SETTINGS
    ran, replayed = tmp_path / "run.txt", tmp_path / "replay.txt"
    assert (
        main(
            [
                "run",
                "--images",
                str(seq.images),
                "--detections",
                str(detections),
                "--results",
                str(ran),
                "-q",
                *settings,
            ]
        )
        == 0
    )
    assert (
        main(["replay", str(bag), "--lockstep", "--results", str(replayed), "-q", *settings]) == 0
    )
    assert ran.read_text(), "no results: the comparison would be vacuous"
    assert replayed.read_text() == ran.read_text()
    # The same results, run on the bag's own images.
    from_bag = tmp_path / "from_bag.txt"
    assert (
        main(
            [
                "run",
                "--images",
                str(bag),
                "--detections",
                str(detections),
                "--results",
                str(from_bag),
                "-q",
                *settings,
            ]
        )
        == 0
    )
    assert from_bag.read_text() == ran.read_text()
    video = tmp_path / "video.mp4"
    assert main(["render", "--images", str(bag), "--results", str(ran), "--out", str(video)]) == 0
    capture = cv2.VideoCapture(str(video))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 5
