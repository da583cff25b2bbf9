"""End to end through the `seg2track` command: synthetic sequence -> simulated
detections -> bag -> `replay --lockstep` through tracker_node, and the same with `run`
(no ROS): the two results files are identical."""

from __future__ import annotations

import pytest

from seg2track_ros.cli import main
from seg2track_ros.datasets import read_kitti_mots
from seg2track_ros.datasets.synthetic import make_sequence

from conftest import RANDOM_WEIGHT_SETTINGS


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq")
    sequence = make_sequence(root, frames=8, size=(96, 160), seed=3)
    detections = root / "detections.txt"
    assert (
        main(
            [
                "simulate-detections",
                "--gt",
                str(sequence.ground_truth),
                "--out",
                str(detections),
                "--seed",
                "1",
            ]
        )
        == 0
    )
    bag = root / "bag"
    assert (
        main(
            [
                "kitti-to-bag",
                "--images",
                str(sequence.images),
                "--detections",
                str(detections),
                "--out",
                str(bag),
            ]
        )
        == 0
    )
    return root, sequence, detections, bag


def test_run_and_lockstep_replay_write_identical_results(sequence):
    root, seq, detections, bag = sequence
    ran, replayed = root / "run.txt", root / "replay.txt"
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
                *RANDOM_WEIGHT_SETTINGS,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "replay",
                str(bag),
                "--lockstep",
                "--results",
                str(replayed),
                "-q",
                "--out-bag",
                str(root / "tracks_bag"),
                *RANDOM_WEIGHT_SETTINGS,
            ]
        )
        == 0
    )
    text = ran.read_text()
    assert text, "no results lines: the comparison would be vacuous"
    assert replayed.read_text() == text
    frames = read_kitti_mots(ran)
    assert max(frames) == seq.frames - 1 or len(frames) > 4
    assert (root / "tracks_bag" / "metadata.yaml").is_file()


def test_detection_masks_segmenter_needs_no_images(sequence):
    root, seq, detections, _bag = sequence
    out = root / "dm.txt"
    assert (
        main(
            [
                "run",
                "--detections",
                str(detections),
                "--segmenter",
                "detection-masks",
                "--frames",
                str(seq.frames),
                "--results",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    assert read_kitti_mots(out)


def test_user_errors_are_one_line_and_status_1(sequence, capsys):
    root, _seq, detections, _bag = sequence
    assert (
        main(
            [
                "run",
                "--detections",
                str(detections),
                "--results",
                str(root / "x.txt"),
                "--set",
                "tracker.max_weak_frame=3",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("seg2track: error:") and "tracker.max_weak_frame" in err
    assert "\n" not in err
    assert main(["run", "--detections", str(detections), "--results", str(root / "y.txt")]) == 1
    assert "--images is needed" in capsys.readouterr().err


def test_render_from_results_and_from_the_tracks_bag(sequence):
    import cv2

    root, seq, _detections, _bag = sequence
    for source in (["--results", str(seq.ground_truth)], ["--bag", str(root / "tracks_bag")]):
        out = root / f"video_{source[0][2:]}.mp4"
        assert main(["render", "--images", str(seq.images), *source, "--out", str(out)]) == 0
        video = cv2.VideoCapture(str(out))
        frames = 0
        while video.read()[0]:
            frames += 1
        assert frames == seq.frames


def test_mots20_sequence_to_bag(tmp_path):
    import cv2
    import numpy as np

    from seg2track_ros.bags.reader import read_pairs

    seq = tmp_path / "MOTS20-02"
    (seq / "img1").mkdir(parents=True)
    (seq / "det").mkdir()
    for i in range(3):
        cv2.imwrite(str(seq / "img1" / f"{i + 1:06d}.jpg"), np.full((40, 60, 3), 50 * i, np.uint8))
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=MOTS20-02\nimDir=img1\nframeRate=30\nseqLength=3\n"
        "imWidth=60\nimHeight=40\nimExt=.jpg\n"
    )
    (seq / "det" / "det.txt").write_text("1,-1,5,5,10,20,0.9\n3,-1,20,5,10,20,0.8\n")
    assert main(["mots20-to-bag", "--seq", str(seq), "--out", str(tmp_path / "bag")]) == 0
    pairs = list(read_pairs(tmp_path / "bag"))
    assert [p.stamp_ns - pairs[0].stamp_ns for p in pairs] == [0, 33_333_333, 66_666_667]
