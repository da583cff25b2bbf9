"""Issue 12: every `seg2track` command ends in a one-line typed error and a non-zero
exit, never a traceback (unless --debug); inputs that used to pass silently are refused
or warned about; image folders are sorted naturally and checked for one size."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from seg2track_ros.cli import main
from seg2track_ros.datasets import read_detections
from seg2track_ros.datasets.synthetic import make_sequence
from seg2track_ros.errors import UserFacingError
from seg2track_ros.pipeline import list_images, natural_key


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    """8 frames of 96x160 with ground truth and simulated TrackR-CNN detections."""
    root = tmp_path_factory.mktemp("seq")
    seq = make_sequence(root, frames=8, size=(96, 160), seed=3)
    detections = root / "detections.txt"
    assert (
        main(["simulate-detections", "--gt", str(seq.ground_truth), "--out", str(detections)]) == 0
    )
    return root, seq, detections


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("seg2track: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _write_images(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    for index, (height, width) in enumerate(sizes):
        cv2.imwrite(str(folder / f"{index:06d}.png"), np.full((height, width, 3), 80, np.uint8))
    return folder


# --- defect 5: one-line errors -------------------------------------------------------


def test_replaying_a_folder_that_is_not_a_bag(tmp_path, capsys):
    folder = tmp_path / "not_a_bag"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    code = main(["replay", str(folder), "--results", str(tmp_path / "r.txt"), "-q"])
    assert code == 1
    _one_line_error(capsys, "not a rosbag2 bag", "metadata.yaml")


def test_results_folder_that_cannot_be_created(sequence, tmp_path, capsys):
    _root, _seq, detections = sequence
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    results = blocker / "sub" / "r.txt"
    for command in (
        ["run", "--detections", str(detections), "--segmenter", "detection-masks"],
        ["replay", str(tmp_path / "bag")],
    ):
        assert main([*command, "--results", str(results), "-q"]) == 1
        _one_line_error(capsys, "cannot create the folder", str(blocker / "sub"))


def test_out_bag_that_exists_is_refused_before_the_node_starts(tmp_path, capsys):
    existing = tmp_path / "tracks_bag"
    existing.mkdir()
    code = main(
        [
            "replay",
            str(tmp_path / "input_bag"),
            "--results",
            str(tmp_path / "r.txt"),
            "--out-bag",
            str(existing),
        ]
    )
    assert code == 1
    _one_line_error(capsys, "--out-bag", "already exists")


def test_unknown_track_state(sequence, tmp_path, capsys):
    _root, _seq, detections = sequence
    for command in (
        ["run", "--detections", str(detections), "--segmenter", "detection-masks"],
        ["replay", str(tmp_path / "bag")],
    ):
        args = [*command, "--results", str(tmp_path / "r.txt"), "--states", "foo", "-q"]
        assert main(args) == 1
        _one_line_error(capsys, "unknown track state 'foo'", "confirmed")


def test_render_with_images_of_another_size_than_the_masks(sequence, tmp_path, capsys):
    _root, seq, _detections = sequence
    images = _write_images(tmp_path / "small", [(40, 60)] * seq.frames)
    args = ["render", "--images", str(images), "--results", str(seq.ground_truth)]
    assert main([*args, "--out", str(tmp_path / "v.mp4")]) == 1
    _one_line_error(capsys, "masks are 160x96", "60x40")


def test_detection_masks_on_a_folder_of_mixed_image_sizes(sequence, tmp_path, capsys):
    _root, _seq, detections = sequence
    mixed = _write_images(tmp_path / "mixed", [(96, 160), (96, 160), (100, 160)])
    args = ["run", "--images", str(mixed), "--detections", str(detections)]
    args += ["--segmenter", "detection-masks", "--results", str(tmp_path / "r.txt"), "-q"]
    assert main(args) == 1
    _one_line_error(capsys, "000002.png is 160x100", "same size")
    # The detections' masks fix the size too: a folder of another camera is refused.
    other = _write_images(tmp_path / "other", [(50, 80)] * 3)
    args[2] = str(other)
    assert main(args) == 1
    _one_line_error(capsys, "masks in the detections file are 160x96")


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(
    sequence, tmp_path, capsys, monkeypatch
):
    _root, _seq, detections = sequence

    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr("seg2track_ros.pipeline.run_sequence", broken)
    args = ["run", "--detections", str(detections), "--segmenter", "detection-masks"]
    args += ["--results", str(tmp_path / "r.txt"), "-q"]
    assert main(args) == 1
    _one_line_error(capsys, "internal error (KeyError", "--debug")
    with pytest.raises(KeyError):
        main(["--debug", *args])
    # A typed error under --debug propagates too, with its traceback.
    (tmp_path / "exists").mkdir()
    replay = ["replay", str(tmp_path / "x"), "--results", str(tmp_path / "r2.txt")]
    with pytest.raises(UserFacingError, match="already exists"):
        main(["--debug", *replay, "--out-bag", str(tmp_path / "exists")])


def test_outputs_under_a_file_and_missing_timestamps_are_one_line_errors(
    sequence, tmp_path, capsys
):
    _root, seq, detections = sequence
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    kitti = ["kitti-to-bag", "--images", str(seq.images), "--detections", str(detections)]
    cases = [
        (
            ["simulate-detections", "--gt", str(seq.ground_truth), "--out", str(blocker / "d.txt")],
            f"{blocker} is a file",
        ),
        ([*kitti, "--out", str(blocker / "bag")], f"{blocker} is a file"),
        (
            [*kitti, "--out", str(tmp_path / "bag"), "--timestamps", str(tmp_path / "none.txt")],
            "cannot read the timestamps",
        ),
        (
            [
                "render",
                "--images",
                str(seq.images),
                "--results",
                str(seq.ground_truth),
                "--out",
                str(blocker / "v.mp4"),
            ],
            f"{blocker} is a file",
        ),
    ]
    for args, needle in cases:
        assert main(args) == 1, args
        _one_line_error(capsys, needle)


# --- defect 7: image folders -----------------------------------------------------------


def test_image_folders_are_sorted_naturally(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ("10.png", "2.png", "1.png", "frame_100.jpg", "frame_20.jpg", "b.png"):
        (folder / name).write_bytes(b"")
    names = [p.name for p in list_images(folder)]
    assert names == ["1.png", "2.png", "10.png", "b.png", "frame_20.jpg", "frame_100.jpg"]
    assert sorted(["01.png", "1.png"], key=natural_key) == ["01.png", "1.png"]


def test_kitti_to_bag_refuses_a_second_image_size(sequence, tmp_path, capsys):
    _root, _seq, detections = sequence
    images = _write_images(tmp_path / "imgs", [(96, 160), (96, 161)])
    out = tmp_path / "bag"
    args = ["kitti-to-bag", "--images", str(images), "--detections", str(detections)]
    assert main([*args, "--out", str(out)]) == 1
    _one_line_error(capsys, "000001.png is 161x96", "000000.png is 160x96")
    assert not out.exists()


def test_kitti_to_bag_warns_about_detections_past_the_last_image(sequence, tmp_path, capsys):
    _root, _seq, detections = sequence
    images = _write_images(tmp_path / "imgs", [(96, 160)] * 3)
    args = ["kitti-to-bag", "--images", str(images), "--detections", str(detections)]
    assert main([*args, "--out", str(tmp_path / "bag")]) == 0
    err = capsys.readouterr().err
    assert "seg2track: warning:" in err and "past the last image" in err
    assert "there are 3 images" in err


# --- defect 8: range checks and warnings ---------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--detections", "d.txt", "--results", "r.txt", "--frames", "-3"],
        ["run", "--detections", "d.txt", "--results", "r.txt", "--frames", "0"],
        ["demo", "--frames", "-3"],
        ["render", "--images", "i", "--results", "r.txt", "--out", "v.mp4", "--fps", "0"],
        ["replay", "bag", "--results", "r.txt", "--rate", "-1"],
        ["simulate-detections", "--gt", "g.txt", "--out", "o.txt", "--frames", "-3"],
    ],
)
def test_non_positive_counts_and_rates_are_usage_errors(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(command)
    assert exit_info.value.code == 2
    assert "must be" in capsys.readouterr().err


def test_image_size_above_the_maximum_is_refused(sequence, tmp_path, capsys):
    from seg2track_ros.engine.config import MAX_IMAGE_SIZE, ConfigError, SegmenterConfig

    _root, _seq, detections = sequence
    args = ["run", "--detections", str(detections), "--results", str(tmp_path / "r.txt")]
    assert main([*args, "--set", "image_size=8192", "-q"]) == 1
    _one_line_error(capsys, "image_size", f"[64, {MAX_IMAGE_SIZE}]", "8192")
    SegmenterConfig(image_size=MAX_IMAGE_SIZE).validate()
    with pytest.raises(ConfigError):
        SegmenterConfig(image_size=MAX_IMAGE_SIZE + 64).validate()


def test_scores_outside_the_unit_interval_are_counted_in_a_warning(tmp_path, caplog):
    path = tmp_path / "boxes.txt"
    path.write_text("0 1 1 5 5 0.9 1\n0 2 2 6 6 1.5 1\n1 1 1 5 5 -0.25 2\n")
    with caplog.at_level(logging.WARNING, logger="seg2track_ros"):
        read_detections(path, "kitti_boxes")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2 of 3 detection scores are outside [0, 1]" in warnings[0]
    assert "-0.25" in warnings[0] and "1.5" in warnings[0]
    caplog.clear()
    path.write_text("0 1 1 5 5 0.9 1\n1 1 1 5 5 0.0 2\n2 1 1 5 5 1.0 2\n")
    with caplog.at_level(logging.WARNING, logger="seg2track_ros"):
        read_detections(path, "kitti_boxes")
    assert not caplog.records


def test_an_empty_detections_file_is_warned_about(tmp_path, caplog):
    path = tmp_path / "empty.txt"
    path.write_text("\n")
    with caplog.at_level(logging.WARNING, logger="seg2track_ros"):
        assert len(read_detections(path, "trackrcnn")) == 0
    assert any("holds no detections" in r.getMessage() for r in caplog.records)
