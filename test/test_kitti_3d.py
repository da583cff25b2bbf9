"""KITTI 3-D path without ROS: `seg2track run --calib --velodyne --results-3d` on the
synthetic fixture (test/data/kitti_3d) and `seg2track evaluate-3d` against its label_02,
plus evaluate-3d's matching and statistics on hand-made 3-D track files."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from seg2track_ros.cli import main
from seg2track_ros.datasets.errors import DatasetError, FormatError
from seg2track_ros.datasets.kitti_calib import read_kitti_calibration
from seg2track_ros.datasets.tracks3d import (
    Track3DRow,
    read_kitti_labels,
    read_tracks3d,
    write_tracks3d,
)
from seg2track_ros.evaluation.evaluate3d import evaluate_3d

from conftest import TEST_DATA

FIXTURE = TEST_DATA / "kitti_3d"
OFFSET = np.array([0.1, 0.0, 0.0])  # image_02 from rectified camera 0 (fixture P2)


def _scan_folder(tmp_path, frames: int = 3):
    """Velodyne scans: points every 5 cm on each labelled object's front face."""
    calib = read_kitti_calibration(FIXTURE / "calib" / "0000.txt")
    velo_from_rect = np.linalg.inv(
        np.vstack([calib.tr_velo_cam, [0, 0, 0, 1]])
    )  # R_rect = I in the fixture
    folder = tmp_path / "velodyne" / "0000"
    folder.mkdir(parents=True)
    labels = read_kitti_labels(FIXTURE / "label_02" / "0000.txt")
    dims = {"car": (1.5, 1.6, 4.0), "pedestrian": (1.7, 0.6, 0.8)}
    for frame in range(frames):
        points = []
        for label in (lb for lb in labels if lb.frame == frame):
            h, w, length = dims[label.class_id]
            cx, cy, cz = label.centre
            xs = np.arange(cx - w / 2 + 0.025, cx + w / 2, 0.05)
            ys = np.arange(cy - h / 2 + 0.025, cy + h / 2, 0.05)
            gx, gy = np.meshgrid(xs, ys)
            face = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, cz - length / 2)], 1)
            points.append(face)
        rect = np.concatenate(points)
        velo = (velo_from_rect @ np.column_stack([rect, np.ones(len(rect))]).T).T[:, :3]
        scan = np.column_stack([velo, np.zeros(len(velo))]).astype("<f4")
        scan.tofile(folder / f"{frame:06d}.bin")
    return folder


def test_run_lifts_kitti_scans_and_evaluate_3d_scores_them(tmp_path, capsys):
    images = tmp_path / "image_02" / "0000"
    images.mkdir(parents=True)
    for frame in range(3):
        cv2.imwrite(str(images / f"{frame:06d}.png"), np.zeros((200, 400, 3), np.uint8))
    velodyne = _scan_folder(tmp_path)
    results_3d = tmp_path / "results_3d" / "0000.txt"
    code = main(
        [
            "run",
            "--images",
            str(images),
            "--detections",
            str(FIXTURE / "label_02" / "0000.txt"),
            "--det-format",
            "kitti_tracking",
            "--segmenter",
            "detection-masks",
            "--set",
            "tracker.min_confirm_frames=1",
            "--results",
            str(tmp_path / "results" / "0000.txt"),
            "--calib",
            str(FIXTURE / "calib" / "0000.txt"),
            "--velodyne",
            str(velodyne),
            "--results-3d",
            str(results_3d),
            "-q",
        ]
    )
    assert code == 0, capsys.readouterr().err
    rows = read_tracks3d(results_3d)
    assert len(rows) == 6 and all(r.has_3d for r in rows)
    # the scans hold each label's rear face only; a car's box (3.9 x 1.6 x 1.5 m) is
    # completed behind it: the label's centre in image_02's frame (+ t) within what the
    # label's size (4.0 x 1.6 x 1.5 m) and the sampled face differ from the class size
    car = [r for r in rows if r.class_id == "car"][-1]
    assert np.allclose(car.position, [2.0 + 0.1, 0.75, 15.0], atol=0.1), car.position
    assert np.allclose(car.size, [1.6, 1.5, 3.9]), car.size
    assert np.allclose(car.velocity, 0, atol=0.05)

    out = tmp_path / "report"
    code = main(
        [
            "evaluate-3d",
            "--gt",
            str(FIXTURE / "label_02"),
            "--results",
            str(results_3d.parent),
            "--seqs",
            "0000",
            "--calib",
            str(FIXTURE / "calib"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = (out / "report_3d.md").read_text()
    # whole boxes: what remains is the class size against the label's (car) and the
    # fixture's 2-D boxes, which hold only part of the faces (the rest is completed
    # away from the sensor)
    assert "| car | 10-20 m | 3 | 3 | 100.0% | 0.09 | 0.09 | 0.6 % |" in report, report
    assert "| pedestrian | 20-40 m | 3 | 3 | 100.0% | 0.18 | 0.18 | 0.7 % |" in report, report
    assert "matched tracks: 2, of which 2 (100.0%) had a 3-D estimate" in report
    assert "Command: `seg2track evaluate-3d --gt" in report
    assert (out / "error_vs_range.png").stat().st_size > 1000
    assert len((out / "pairs_3d.csv").read_text().splitlines()) == 7


def _row(frame, track_id, box, position):
    return Track3DRow(
        frame, track_id, "car", box, np.asarray(position, float), np.zeros(3), np.ones(3), 50
    )


def test_evaluate_3d_matching_and_statistics(tmp_path):
    """Hand-made 3-D tracks on the fixture's labels: the car track 0.5 m off on every
    frame, the pedestrian track 1 m off on two frames and without 3-D on the third, a
    track on the DontCare region and one on nothing (neither matched)."""
    labels = read_kitti_labels(FIXTURE / "label_02" / "0000.txt")
    rows = []
    for frame in range(3):
        car, ped = [lb for lb in labels if lb.frame == frame]
        rows.append(_row(frame, 5, car.box, car.centre + OFFSET + [0.3, 0, 0.4]))
        rows.append(
            _row(frame, 6, ped.box, ped.centre + OFFSET + [0, 1, 0] if frame < 2 else [np.nan] * 3)
        )
        rows.append(_row(frame, 7, (10, 10, 30, 30), [0, 0, 5]))
        rows.append(_row(frame, 8, (350, 150, 390, 190), [0, 0, 5]))
    folder = tmp_path / "r"
    folder.mkdir()
    write_tracks3d(folder / "0000.txt", rows)
    assert len(read_tracks3d(folder / "0000.txt")) == 12
    evaluation = evaluate_3d(FIXTURE / "label_02", folder, ["0000"], FIXTURE / "calib")
    table = {(r["class"], r["band"]): r for r in evaluation.rows()}
    car = table[("car", "10-20 m")]
    assert (car["matched"], car["with_3d"]) == (3, 3)
    assert car["mean_m"] == pytest.approx(0.5) and car["median_m"] == pytest.approx(0.5)
    ped = table[("pedestrian", "20-40 m")]
    assert (ped["matched"], ped["with_3d"]) == (3, 2)
    assert ped["fraction_3d"] == pytest.approx(2 / 3) and ped["median_m"] == pytest.approx(1.0)
    overall = table[("all", "all")]
    assert overall["matched"] == 6 and overall["mean_m"] == pytest.approx((3 * 0.5 + 2) / 5)
    assert (evaluation.tracks_matched, evaluation.tracks_with_3d) == (2, 2)
    # without --calib the 0.1 m camera offset is not applied: the car is 0.3 -> 0.2 m off in x
    plain = evaluate_3d(FIXTURE / "label_02", folder, ["0000"])
    car = {(r["class"], r["band"]): r for r in plain.rows()}[("car", "10-20 m")]
    assert car["mean_m"] == pytest.approx(math.hypot(0.4, 0.4))


def test_evaluate_3d_input_errors(tmp_path):
    with pytest.raises(DatasetError, match="no 3-D tracks file"):
        evaluate_3d(FIXTURE / "label_02", tmp_path, ["0000"])
    bad = tmp_path / "0000.txt"
    bad.write_text("0 1 car 1 2 3\n")
    with pytest.raises(FormatError, match="expected 17 fields"):
        evaluate_3d(FIXTURE / "label_02", tmp_path, ["0000"])
    with pytest.raises(DatasetError, match="not a whole number"):
        from seg2track_ros.datasets.tracks3d import read_velodyne_scan

        (tmp_path / "x.bin").write_bytes(b"\0" * 20)
        read_velodyne_scan(tmp_path / "x.bin")


def test_run_3d_options_go_together(tmp_path, capsys):
    code = main(
        [
            "run",
            "--detections",
            str(FIXTURE / "label_02" / "0000.txt"),
            "--det-format",
            "kitti_tracking",
            "--segmenter",
            "detection-masks",
            "--results",
            str(tmp_path / "r.txt"),
            "--calib",
            str(FIXTURE / "calib" / "0000.txt"),
        ]
    )
    assert code == 1
    assert "--calib, --velodyne and --results-3d go together" in capsys.readouterr().err


def test_kitti_bag_with_lidar_replays_to_3d_tracks(tmp_path, capsys):
    """kitti-to-bag --calib --velodyne -> replay --results-3d (tracker_node over DDS,
    the transform from the bag's /tf_static) -> the same 3-D tracks as `run`."""
    from rosbags.rosbag2 import Reader

    from seg2track_ros.bags.reader import read_pairs, read_static_transform
    from seg2track_ros.engine.geometry3d import transform_from_pose

    images = tmp_path / "image_02" / "0000"
    images.mkdir(parents=True)
    for frame in range(3):
        cv2.imwrite(str(images / f"{frame:06d}.png"), np.zeros((200, 400, 3), np.uint8))
    velodyne = _scan_folder(tmp_path)
    bag = tmp_path / "bag"
    labels = str(FIXTURE / "label_02" / "0000.txt")
    code = main(
        [
            "kitti-to-bag",
            "--images",
            str(images),
            "--detections",
            labels,
            "--det-format",
            "kitti_tracking",
            "--calib",
            str(FIXTURE / "calib" / "0000.txt"),
            "--velodyne",
            str(velodyne),
            "--out",
            str(bag),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert 'lift3d.static_transform:="0.1 -0.08 -0.27 0.5 -0.5 0.5 0.5"' in capsys.readouterr().out
    with Reader(bag) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts["/kitti/camera_color_left/camera_info"] == 3
    assert counts["/kitti/velo/pointcloud"] == 3 and counts["/tf_static"] == 1
    pairs = list(read_pairs(bag))
    assert all(p.camera_info_cdr and p.points_cdr for p in pairs)
    parent, child, pose = read_static_transform(bag)
    calib = read_kitti_calibration(FIXTURE / "calib" / "0000.txt")
    assert (parent, child) == ("camera_color_left", "velo_link")
    assert np.allclose(transform_from_pose(pose), calib.camera_from_velodyne)

    results_3d = tmp_path / "results_3d" / "0000.txt"
    code = main(
        [
            "replay",
            str(bag),
            "--lockstep",
            "--set",
            "segmenter=detection-masks",
            "--set",
            "tracker.min_confirm_frames=1",
            "--results",
            str(tmp_path / "results" / "0000.txt"),
            "--results-3d",
            str(results_3d),
            # the visible surface (no class sizes): the rear face's centre
            "--set",
            "lift3d.object_sizes=",
            "-q",
        ]
    )
    assert code == 0, capsys.readouterr().err
    rows = read_tracks3d(results_3d)
    assert len(rows) == 6 and all(r.has_3d for r in rows)
    # the rear face's centre in image_02's frame: the label's centre + t, l / 2 nearer
    car = [r for r in rows if r.class_id == "car"][-1]
    assert np.allclose(car.position, [2.1, 0.75, 13.0], atol=0.03), car.position
    evaluation = evaluate_3d(FIXTURE / "label_02", results_3d.parent, ["0000"], FIXTURE / "calib")
    table = {(r["class"], r["band"]): r for r in evaluation.rows()}
    assert table[("car", "10-20 m")]["median_m"] == pytest.approx(2.0, abs=0.03)
    assert table[("pedestrian", "20-40 m")]["median_m"] == pytest.approx(0.4, abs=0.03)


def test_kitti_to_bag_lidar_options_go_together(tmp_path, capsys):
    code = main(
        [
            "kitti-to-bag",
            "--images",
            str(tmp_path),
            "--detections",
            str(FIXTURE / "label_02" / "0000.txt"),
            "--det-format",
            "kitti_tracking",
            "--calib",
            str(FIXTURE / "calib" / "0000.txt"),
            "--out",
            str(tmp_path / "bag"),
        ]
    )
    assert code == 1
    assert "--calib and --velodyne go together" in capsys.readouterr().err
