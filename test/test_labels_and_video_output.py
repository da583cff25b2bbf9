"""Readable overlays (filled labels that never overlap) and videos that play everywhere
(H.264 where the OpenCV build has it, else mp4v with a note)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seg2track_ros.visualize import colour_labels, overlay_image, place_labels, track_colour


@dataclass
class _Track:
    track_id: int
    class_id: str
    mask: np.ndarray
    bbox: tuple[float, float, float, float] | None


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_labels_of_crowded_boxes_never_overlap_and_stay_inside():
    rng = np.random.default_rng(0)
    boxes = []
    for _ in range(25):  # a crowd: boxes on top of each other in one corner
        x, y = rng.uniform(0, 60, 2)
        boxes.append((x, y, x + 30, y + 50))
    sizes = [(70, 16)] * len(boxes)
    reserved = [(0, 0, 80, 18)]  # the frame number
    rects = place_labels(boxes, sizes, (375, 1242), reserved)
    for k, rect in enumerate(rects):
        assert rect[0] >= 0 and rect[2] <= 1242 and rect[1] >= 0 and rect[3] <= 375
        assert (rect[2] - rect[0], rect[3] - rect[1]) == sizes[k]
        for other in rects[:k] + reserved:
            assert not _overlaps(rect, other), (k, rect, other)


def test_a_lone_label_sits_above_its_box():
    (rect,) = place_labels([(100, 200, 150, 260)], [(40, 12)], (375, 1242))
    assert rect == (100, 188, 140, 200)


def test_overlay_labels_have_a_filled_background_in_the_track_colour():
    height, width = 240, 320
    tracks = []
    for k, track_id in enumerate((3, 17)):
        mask = np.zeros((height, width), bool)
        mask[100:160, 40 + 20 * k : 90 + 20 * k] = True  # overlapping boxes
        tracks.append(_Track(track_id, "car", mask, (40 + 20 * k, 100, 90 + 20 * k, 160)))
    rgb = np.full((height, width, 3), 128, np.uint8)
    bgr = overlay_image(rgb, tracks)
    for track in tracks:
        # The label's background: a solid run of the track's colour above or near its box.
        colour = np.array(track_colour(track.track_id), np.uint8)
        solid = np.all(bgr == colour, axis=2)
        assert solid.sum() > 60, track.track_id
        ys, _xs = np.nonzero(solid)
        assert ys.max() < track.bbox[3]


def test_colour_labels_uses_the_overlay_colours():
    labels = np.array([[0, 5], [9, 5]], np.uint16)
    bgr = colour_labels(labels)
    assert bgr.dtype == np.uint8 and bgr.shape == (2, 2, 3)
    assert tuple(bgr[0, 0]) == (0, 0, 0)
    assert tuple(bgr[0, 1]) == track_colour(5) == tuple(bgr[1, 1])
    assert tuple(bgr[1, 0]) == track_colour(9)


def _fourcc(path) -> str:
    import cv2

    capture = cv2.VideoCapture(str(path))
    code = int(capture.get(cv2.CAP_PROP_FOURCC))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return "".join(chr((code >> 8 * i) & 0xFF) for i in range(4)), frames


def _h264_writable(tmp_path) -> bool:
    """Independent of render.py's probe: can this OpenCV open an avc1 writer?"""
    import cv2

    probe = cv2.VideoWriter(
        str(tmp_path / "probe.mp4"), cv2.VideoWriter_fourcc(*"avc1"), 10, (64, 64)
    )
    ok = probe.isOpened()
    probe.release()
    return ok


def test_the_codec_probe_prints_nothing(capfd):
    from seg2track_ros.render import h264_available

    h264_available.cache_clear()
    h264_available()
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_render_writes_h264_where_possible_else_mp4v_with_a_note(tmp_path):
    import cv2

    from seg2track_ros.frames import ImageFolder
    from seg2track_ros.render import render_video

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((64, 96, 3), 30 * i, np.uint8))
    images = sorted(folder.iterdir())
    summary = render_video(ImageFolder(images), {}, tmp_path / "out.mp4", 10.0)
    written, frames = _fourcc(tmp_path / "out.mp4")
    assert frames == 4
    if _h264_writable(tmp_path):
        assert summary.codec == "avc1" and summary.note is None
        assert written.lower() in ("avc1", "h264")
    else:
        # FFmpeg reports MPEG-4 Part 2 in an MP4 as FMP4.
        assert summary.codec == "mp4v" and written in ("mp4v", "FMP4")
        assert "H.264" in summary.note and "libx264" in summary.note
    forced = render_video(ImageFolder(images), {}, tmp_path / "mp4v.mp4", 10.0, codec="mp4v")
    assert (forced.codec, forced.note) == ("mp4v", None)
    assert _fourcc(tmp_path / "mp4v.mp4") in (("mp4v", 4), ("FMP4", 4))


def test_render_cli_reports_the_codec(tmp_path, capsys):
    import cv2

    from seg2track_ros.cli import main
    from seg2track_ros.datasets.synthetic import make_sequence

    seq = make_sequence(tmp_path, frames=3, size=(64, 96), seed=1)
    out = tmp_path / "video.mp4"
    assert (
        main(
            [
                "render",
                "--images",
                str(seq.images),
                "--results",
                str(seq.ground_truth),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "avc1" in captured.out or ("mp4v" in captured.out and "note:" in captured.err)
    assert cv2.VideoCapture(str(out)).isOpened()


def test_readme_colour_map_is_the_one_drawn():
    """The README's colour map (hue (i * 0.618034) mod 1, saturation 0.85, value 1) is
    what overlay, render and colour_labels use, so users can colour instance_labels."""
    import colorsys

    from conftest import REPO_ROOT

    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    assert "hue `(i * 0.618034) mod 1`" in readme
    assert "saturation 0.85, value 1.0" in readme
    for track_id in (1, 2, 7, 1000, 65535):
        r, g, b = colorsys.hsv_to_rgb((track_id * 0.618034) % 1.0, 0.85, 1.0)
        expected = np.array([b, g, r]) * 255
        np.testing.assert_allclose(track_colour(track_id), expected, atol=1.01)
