"""`seg2track replay` of a stereo bag (`kitti-to-bag --images-right`) through one
tracker_node serving both cameras (config/kitti_stereo.yaml): one results file per
camera, each identical to what a one-camera replay of that camera alone writes."""

from __future__ import annotations

import pytest

from seg2track_ros.cli import camera_results_path, main
from seg2track_ros.datasets.synthetic import make_sequence

from conftest import RANDOM_WEIGHT_SETTINGS, REPO_ROOT

STEREO = str(REPO_ROOT / "config" / "kitti_stereo.yaml")


@pytest.fixture(scope="module")
def stereo_bag(tmp_path_factory):
    """Two different sequences (sizes, objects) as KITTI's left and right cameras."""
    root = tmp_path_factory.mktemp("stereo")
    args = ["kitti-to-bag"]
    for side, size, seed in (("", (96, 160), 3), ("-right", (80, 128), 4)):
        sequence = make_sequence(root / f"seq{side}", frames=6, size=size, seed=seed)
        detections = root / f"detections{side}.txt"
        simulate = ["simulate-detections", "--gt", str(sequence.ground_truth)]
        assert main([*simulate, "--out", str(detections), "--seed", "1"]) == 0
        args += [f"--images{side}", str(sequence.images), f"--detections{side}", str(detections)]
    bag = root / "bag"
    assert main([*args, "--out", str(bag)]) == 0
    return root, bag


def _replay(bag, results, *extra) -> None:
    assert main(["replay", str(bag), "--lockstep", "--results", str(results), "-q", *extra]) == 0


@pytest.mark.parametrize("segmenter", ["detection-masks", "sam2"])
def test_stereo_replay_writes_each_cameras_results_as_a_one_camera_replay(stereo_bag, segmenter):
    root, bag = stereo_bag
    settings = (
        RANDOM_WEIGHT_SETTINGS if segmenter == "sam2" else ["--set", "segmenter=detection-masks"]
    )
    both = root / segmenter / "both" / "0000.txt"
    _replay(bag, both, "--params", STEREO, "--out-bag", str(root / segmenter / "tracks"), *settings)
    for camera in ("left", "right"):
        alone = root / segmenter / f"{camera}_alone.txt"
        _replay(
            bag,
            alone,
            "--image-topic",
            f"/kitti/camera_color_{camera}/image_raw",
            "--detections-topic",
            f"/detections/{camera}",
            "--set",
            "mode=lockstep",
            *settings,
        )
        results = camera_results_path(both, camera)
        assert results == root / segmenter / "both" / camera / "0000.txt"
        text = alone.read_text()
        assert text, "no results lines: the comparison would be vacuous"
        assert results.read_text() == text, camera
        record = results.with_name("0000.run.yaml")
        assert f"camera: {camera}" in record.read_text()
    from rosbags.rosbag2 import Reader

    with Reader(root / segmenter / "tracks") as reader:
        assert sorted(c.topic for c in reader.connections) == ["/left/tracks", "/right/tracks"]
        assert reader.message_count == 12


def test_results_path_per_camera(tmp_path):
    assert camera_results_path(tmp_path / "r" / "0002.txt", "left") == (
        tmp_path / "r" / "left" / "0002.txt"
    )
    assert camera_results_path(tmp_path / "{camera}_0002.txt", "right") == (
        tmp_path / "right_0002.txt"
    )


def test_stereo_bag_needs_its_detections_topic_named_for_one_camera(stereo_bag, capsys):
    root, bag = stereo_bag
    image = ["--image-topic", "/kitti/camera_color_left/image_raw"]
    assert main(["replay", str(bag), "--results", str(root / "x.txt"), *image]) != 0
    assert "several detections topics" in capsys.readouterr().err


def test_several_cameras_need_camera_topics(stereo_bag, capsys):
    root, bag = stereo_bag
    cameras = ["--set", "cameras=[left, right]"]
    assert main(["replay", str(bag), "--results", str(root / "y.txt"), *cameras]) != 0
    assert "with '{camera}' replaced" in capsys.readouterr().err
    with_topic = ["--params", STEREO, "--image-topic", "/kitti/camera_color_left/image_raw"]
    assert main(["replay", str(bag), "--results", str(root / "z.txt"), *with_topic]) != 0
    assert "--image-topic is for a replay of one camera" in capsys.readouterr().err
