"""A video file plus a detections file into `seg2track run` and `render` in one command
(issue 12): frames read by OpenCV, frame k of the video = frame k of the detections."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seg2track_ros.cli import main
from seg2track_ros.datasets.synthetic import make_sequence

from conftest import RANDOM_WEIGHT_SETTINGS


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("video")
    seq = make_sequence(root, frames=6, size=(72, 128), seed=4)
    detections = root / "dets.txt"
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
    video = root / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (128, 72))
    assert writer.isOpened()
    for path in sorted(seq.images.iterdir()):
        writer.write(cv2.imread(str(path)))
    writer.release()
    # The frames exactly as OpenCV decodes them, as an image folder.
    decoded = root / "decoded"
    decoded.mkdir()
    capture = cv2.VideoCapture(str(video))
    count = 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        cv2.imwrite(str(decoded / f"{count:06d}.png"), bgr)
        count += 1
    assert count == 6
    return root, seq, detections, video, decoded


def test_run_on_a_video_tracks_its_decoded_frames(clip):
    root, _seq, detections, video, decoded = clip
    settings = RANDOM_WEIGHT_SETTINGS
    from_video, from_frames = root / "video.txt", root / "frames.txt"
    assert (
        main(
            [
                "run",
                "--video",
                str(video),
                "--detections",
                str(detections),
                "--results",
                str(from_video),
                "-q",
                *settings,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "run",
                "--images",
                str(decoded),
                "--detections",
                str(detections),
                "--results",
                str(from_frames),
                "-q",
                *settings,
            ]
        )
        == 0
    )
    assert from_frames.read_text(), "no results: the comparison would be vacuous"
    assert from_video.read_text() == from_frames.read_text()


def test_render_a_video_with_its_own_frame_rate(clip, capsys):
    root, seq, _detections, video, _decoded = clip
    out = root / "rendered.mp4"
    assert (
        main(
            ["render", "--video", str(video), "--results", str(seq.ground_truth), "--out", str(out)]
        )
        == 0
    )
    assert "6 frames" in capsys.readouterr().out
    capture = cv2.VideoCapture(str(out))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(5.0)
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(bgr)
    assert len(frames) == 6 and frames[0].shape == (72, 128, 3)
    # The masks are drawn: the rendered frame differs from the video's inside them.
    assert (
        np.abs(frames[3].astype(int) - cv2.imread(str(sorted(seq.images.iterdir())[3]))).max() > 40
    )


def test_a_missing_or_unreadable_video_is_a_one_line_error(clip, capsys):
    root, _seq, detections, _video, _decoded = clip
    broken = root / "broken.mp4"
    broken.write_bytes(b"not a video")
    for path, message in ((root / "none.mp4", "does not exist"), (broken, "cannot open")):
        code = main(
            [
                "run",
                "--video",
                str(path),
                "--detections",
                str(detections),
                "--results",
                str(root / "x.txt"),
                "-q",
            ]
        )
        err = capsys.readouterr().err.strip()
        assert code == 1 and message in err and "\n" not in err, err
    with pytest.raises(SystemExit):
        main(["run", "--video", "a.mp4", "--images", "b", "--detections", "d", "--results", "r"])
