"""Issue 12, defect 3: `render --bag` pairs tracks messages with images by stamp, so an
unanswered frame (realtime replay, live recording) does not shift later masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seg2track_ros.bags.writer import default_stamp
from seg2track_ros.cli import _TracksBag, main
from seg2track_ros.render import RenderError, tracks_from_bag

HEIGHT, WIDTH = 48, 64


def _mask(frame: int) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[4:20, 4 + 8 * frame : 12 + 8 * frame] = True  # moves 8 px right per frame
    return mask


def _tracks_bag(path, stamps_by_frame: dict[int, int]):
    from rclpy.serialization import serialize_message
    from seg2track_msgs.msg import TrackedObject, TrackedObjectArray

    from seg2track_ros.ros.conversions import mask_to_rle_msg

    bag = _TracksBag(path)
    for frame, stamp in stamps_by_frame.items():
        message = TrackedObjectArray()
        message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        obj = TrackedObject(track_id=7, class_id="car", state=TrackedObject.STATE_CONFIRMED)
        obj.mask = mask_to_rle_msg(_mask(frame))
        message.objects.append(obj)
        bag.write(message, serialize_message(message))
    bag.close()
    return path


def test_unanswered_frames_do_not_shift_later_masks(tmp_path):
    answered = [0, 1, 3, 4]  # frame 2 never answered
    bag = _tracks_bag(tmp_path / "tracks", {f: default_stamp(f) for f in answered})
    tracks = tracks_from_bag(bag, frame_count=5)
    assert sorted(tracks.frames) == answered and tracks.unanswered == [2]
    for frame in answered:
        assert np.array_equal(tracks.frames[frame][0].mask, _mask(frame)), frame


def test_frame_stamps_from_the_replayed_bag(tmp_path):
    stamps = [5_000_000_000 + 33_333_333 * i for i in range(4)]
    bag = _tracks_bag(tmp_path / "tracks", {1: stamps[1], 3: stamps[3]})
    tracks = tracks_from_bag(bag, stamps)
    assert sorted(tracks.frames) == [1, 3] and tracks.unanswered == [0, 2]
    assert np.array_equal(tracks.frames[3][0].mask, _mask(3))
    with pytest.raises(RenderError, match="--source-bag"):
        tracks_from_bag(bag, frame_count=4)  # not kitti-to-bag's default clock


def test_render_cli_by_stamp_with_a_source_bag(tmp_path, capsys):
    from seg2track_ros.bags.writer import BagFrame, write_bag
    from seg2track_ros.engine.types import Detections

    images = tmp_path / "images"
    images.mkdir()
    stamps = [7_000_000_000 + 50_000_000 * i for i in range(4)]
    frames = []
    for i in range(4):
        bgr = np.full((HEIGHT, WIDTH, 3), 40 * i, np.uint8)
        cv2.imwrite(str(images / f"{i}.png"), bgr)
        frames.append(BagFrame(stamps[i], bgr, Detections.empty()))
    source = write_bag(tmp_path / "source", frames).path
    tracks = _tracks_bag(tmp_path / "tracks", {0: stamps[0], 2: stamps[2], 3: stamps[3]})
    out = tmp_path / "v.mp4"
    args = ["render", "--images", str(images), "--bag", str(tracks), "--out", str(out)]
    assert main([*args, "--source-bag", str(source)]) == 0
    assert "1 frames had no tracks message" in capsys.readouterr().out
    video = cv2.VideoCapture(str(out))
    count = 0
    while video.read()[0]:
        count += 1
    assert count == 4
    assert main(args) == 1  # default clock: these stamps are no frame's
    assert "--source-bag" in capsys.readouterr().err
