"""Dataset readers and writers on real KITTI MOTS lines and small realistic files."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from seg2track_ros.datasets import (
    DatasetError,
    DatasetFileError,
    FormatError,
    WriteError,
    read_detections,
    read_kitti_boxes,
    read_kitti_mots,
    read_mot_det,
    read_mots20,
    read_seqinfo,
    read_trackrcnn,
    write_kitti_mots,
    write_mots20,
    write_trackrcnn,
)
from seg2track_ros.datasets._lines import compressed_rle_counts
from seg2track_ros.datasets.kitti_mots import kitti_mots_writer
from seg2track_ros.engine.masks import mask_to_counts
from seg2track_ros.engine.types import Detections, Track, TrackState

H, W = 375, 1242  # KITTI image size


def _rle(mask: np.ndarray) -> str:
    """Compressed RLE straight from pycocotools (independent of the writers under test)."""
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode()


def _box_mask(x0, y0, x1, y1, height=H, width=W) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _raw_lines(path):
    return [line.split(" ") for line in path.read_text().splitlines()]


# ---------------------------------------------------------------- KITTI MOTS reader


def test_kitti_mots_reads_the_real_sequence(kitti_mots_gt):
    path = kitti_mots_gt / "0002.txt"
    raw = _raw_lines(path)
    frames = read_kitti_mots(path)
    objects = [obj for frame in frames.values() for obj in frame]
    assert len(objects) == len(raw) == 1316
    assert list(frames) == sorted({int(fields[0]) for fields in raw})
    assert len(frames) == 233 and min(frames) == 0
    # every object is the line it came from, in file order
    for obj, fields in zip(objects, raw, strict=True):
        assert (obj.frame, obj.object_id, obj.class_id, obj.height, obj.width) == tuple(
            int(value) for value in fields[:5]
        )
        assert obj.counts == fields[5]
    first = objects[0]
    assert (first.object_id, first.class_id, first.instance, first.class_name) == (
        1010,
        1,
        10,
        "car",
    )
    mask = first.mask()
    assert mask.shape == (H, W) and mask.dtype == bool and mask.any()
    np.testing.assert_array_equal(
        mask, mask_utils.decode({"size": [H, W], "counts": first.counts.encode()}) > 0
    )
    ys, xs = np.nonzero(mask)
    assert first.box() == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    ignore = [obj for obj in objects if obj.is_ignore]
    assert ignore and all(obj.object_id == 10000 for obj in ignore)


def test_kitti_mots_frames_without_objects_are_absent(kitti_mots_gt):
    frames = read_kitti_mots(kitti_mots_gt / "0006.txt")
    assert 240 not in frames and 239 in frames and 241 in frames
    assert len(frames) == 269


def test_rle_validation_parse_matches_pycocotools_on_real_masks(kitti_mots_gt):
    frames = read_kitti_mots(kitti_mots_gt / "0012.txt")
    checked = 0
    for frame in frames.values():
        for obj in frame:
            runs = compressed_rle_counts(obj.counts)
            np.testing.assert_array_equal(runs, mask_to_counts(obj.mask()))
            checked += 1
    assert checked == 282


def _kitti_file_with_bad_line(tmp_path, kitti_mots_gt, bad_line: str):
    """Three real lines, a blank line, then the bad line: it is line 5 of the file."""
    real = (kitti_mots_gt / "0002.txt").read_text().splitlines()[:3]
    path = tmp_path / "0002.txt"
    path.write_text("\n".join([*real, "", bad_line]) + "\n")
    return path


def _real_line(kitti_mots_gt, index=3):
    return (kitti_mots_gt / "0002.txt").read_text().splitlines()[index].split(" ")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f[:5], "expected 6 fields"),
        (lambda f: [*f, "7"], "expected 6 fields"),
        (lambda f: ["one", *f[1:]], "frame must be an integer, found 'one'"),
        (lambda f: ["-1", *f[1:]], "frame must be >= 0"),
        (lambda f: [*f[:3], "-375", *f[4:]], "img_height must be >= 1, found -375"),
        (lambda f: [*f[:4], "0", f[5]], "img_width must be >= 1"),
        (
            lambda f: [*f[:5], _rle(_box_mask(5, 5, 20, 20, H, W - 1))],
            "RLE covers 465375 pixels but the line says the mask is 375x1242 = 465750",
        ),
        (lambda f: [*f[:5], f[5][: len(f[5]) // 2]], "invalid RLE|RLE covers"),
        (lambda f: [*f[:5], f[5] + "~"], "outside '0'..'o'"),
        (lambda f: [f[0], "1004", "3", *f[3:]], "class_id 3 is not a KITTI MOTS class"),
        (lambda f: [f[0], "2004", "1", *f[3:]], "object_id 2004 is not of class 1"),
        (lambda f: [f[0], "10001", "10", *f[3:]], "ignore regions"),
        (lambda f: [*f[:3], "376", "1241", "0" + f[5][1:]], "image size 376x1241 differs"),
    ],
)
def test_kitti_mots_bad_line_names_file_and_line(tmp_path, kitti_mots_gt, edit, message):
    path = _kitti_file_with_bad_line(
        tmp_path, kitti_mots_gt, " ".join(edit(_real_line(kitti_mots_gt)))
    )
    with pytest.raises(FormatError, match=message) as caught:
        read_kitti_mots(path)
    assert str(caught.value).startswith(f"{path}:5: ")
    assert (caught.value.path, caught.value.line) == (str(path), 5)
    assert isinstance(caught.value, ValueError)


def test_kitti_mots_duplicate_object_in_a_frame(tmp_path, kitti_mots_gt):
    line = " ".join(_real_line(kitti_mots_gt, 0))
    path = tmp_path / "dup.txt"
    path.write_text(f"{line}\n{line}\n")
    with pytest.raises(FormatError, match=r"dup.txt:2: object_id 1010 appears twice in frame 0"):
        read_kitti_mots(path)


def test_missing_file_and_binary_file(tmp_path):
    with pytest.raises(DatasetFileError, match=r"cannot open .*nothing\.txt"):
        read_kitti_mots(tmp_path / "nothing.txt")
    path = tmp_path / "binary.txt"
    path.write_bytes(b"0 1001 1 2 2 4\n\xff\xfe\n")
    with pytest.raises(FormatError, match=r"binary.txt:2: not ASCII"):
        read_kitti_mots(path)


# ---------------------------------------------------------------- MOTS20


SEQINFO = """[Sequence]
name=MOTS20-02
imDir=img1
frameRate=30
seqLength=3
imWidth=640
imHeight=480
imExt=.jpg
"""


def _mots20_gt(tmp_path):
    """A small MOTS20 ground truth: two pedestrians and an ignore region on frames 1-3."""
    lines = []
    for file_frame in (1, 2, 3):
        shift = 10 * file_frame
        walker = _box_mask(100 + shift, 200, 140 + shift, 320, 480, 640)
        other = _box_mask(400, 180, 430, 300 - shift, 480, 640)
        crowd = _box_mask(0, 0, 50, 50, 480, 640)
        lines.append(f"{file_frame} 2001 2 480 640 {_rle(walker)}")
        if file_frame != 2:  # occluded on frame 2
            lines.append(f"{file_frame} 2002 2 480 640 {_rle(other)}")
        lines.append(f"{file_frame} 10000 10 480 640 {_rle(crowd)}")
    path = tmp_path / "gt.txt"
    path.write_text("\n".join(lines) + "\n")
    (tmp_path / "seqinfo.ini").write_text(SEQINFO)
    return path


def test_mots20_reads_frames_from_one_as_zero_based(tmp_path):
    path = _mots20_gt(tmp_path)
    seqinfo = read_seqinfo(tmp_path / "seqinfo.ini")
    assert seqinfo.name == "MOTS20-02" and seqinfo.im_dir == "img1" and seqinfo.im_ext == ".jpg"
    assert (seqinfo.frame_rate, seqinfo.seq_length) == (30.0, 3)
    assert seqinfo.image_size == (480, 640)
    frames = read_mots20(path, seqinfo)
    assert list(frames) == [0, 1, 2]
    assert [obj.object_id for obj in frames[1]] == [2001, 10000]
    walker = frames[0][0]
    assert walker.frame == 0 and walker.class_name == "pedestrian"
    np.testing.assert_array_equal(walker.mask(), _box_mask(110, 200, 150, 320, 480, 640))


def test_mots20_bad_lines(tmp_path):
    path = _mots20_gt(tmp_path)
    lines = path.read_text().splitlines()
    seqinfo = read_seqinfo(tmp_path / "seqinfo.ini")
    cases = [
        ("0" + lines[0][1:], "frame must be >= 1, found 0"),
        ("4" + lines[0][1:], "frame 4 is past the sequence's last frame 3"),
        (lines[0].replace(" 2001 2 ", " 1001 1 "), "class_id 1 is not a MOTS20 class"),
    ]
    for bad, message in cases:
        bad_path = tmp_path / "bad.txt"
        bad_path.write_text("\n".join([lines[1], bad]) + "\n")
        with pytest.raises(FormatError, match=message) as caught:
            read_mots20(bad_path, seqinfo)
        assert str(caught.value).startswith(f"{bad_path}:2: ")
    # the image size in seqinfo.ini is checked too
    small = tmp_path / "seqinfo_small.ini"
    small.write_text(SEQINFO.replace("imWidth=640", "imWidth=320"))
    with pytest.raises(FormatError, match=r"gt.txt:1: image size 480x640 differs from 480x320"):
        read_mots20(path, read_seqinfo(small))


def test_seqinfo_errors_name_the_line(tmp_path):
    path = tmp_path / "seqinfo.ini"
    path.write_text(SEQINFO.replace("seqLength=3", "seqLength=three"))
    with pytest.raises(FormatError, match=r"seqinfo.ini:5: seqLength must be an integer"):
        read_seqinfo(path)
    path.write_text(SEQINFO.replace("imHeight=480\n", ""))
    with pytest.raises(FormatError, match=r"seqinfo.ini:1: \[Sequence\] has no imHeight"):
        read_seqinfo(path)
    path.write_text("name=x\n" + SEQINFO)
    with pytest.raises(FormatError, match=r"seqinfo.ini:1: expected a \[Sequence\]"):
        read_seqinfo(path)
    path.write_text(SEQINFO.replace("[Sequence]", "[Other]"))
    with pytest.raises(FormatError, match=r"no \[Sequence\] section"):
        read_seqinfo(path)


# ---------------------------------------------------------------- TrackR-CNN


def _trackrcnn_file(tmp_path):
    car = _box_mask(100, 180, 260, 260)
    walker = _box_mask(600, 150, 640, 290)
    embedding = " ".join(f"{value:.4f}" for value in np.linspace(-1, 1, 128))
    lines = [
        f"0 99.5 179.2 260.4 260.1 0.9871 1 {H} {W} {_rle(car)} {embedding}",
        f"0 599.0 150.0 640.0 290.0 0.6512 2 {H} {W} {_rle(walker)} {embedding}",
        f"2 101.0 181.0 262.0 261.0 0.4023 7 {H} {W} {_rle(car)} {embedding}",
    ]
    path = tmp_path / "0002_det.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, (car, walker)


def test_trackrcnn_reader_and_masks_at_stated_size(tmp_path):
    path, (car, walker) = _trackrcnn_file(tmp_path)
    frames = read_trackrcnn(path)
    assert list(frames) == [0, 2]
    first = frames[0][0]
    assert first.box == (99.5, 179.2, 260.4, 260.1) and first.score == 0.9871
    assert (first.class_id, first.class_name, first.height, first.width) == (1, "car", H, W)
    assert first.embedding.shape == (128,) and first.embedding.dtype == np.float32
    assert first.embedding[0] == -1.0 and first.embedding[-1] == 1.0
    np.testing.assert_array_equal(first.mask(), car)
    np.testing.assert_array_equal(frames[0][1].mask(), walker)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f[:9], "expected at least 10 fields"),
        (lambda f: [f[0], f[3], *f[2:]], "box .* is empty"),
        (lambda f: [*f[:5], "high", *f[6:]], "score must be a number, found 'high'"),
        (lambda f: [*f[:5], "nan", *f[6:]], "score must be finite"),
        (lambda f: [*f[:7], "-375", *f[8:]], "img_height must be >= 1"),
        (lambda f: [*f[:9], _rle(_box_mask(5, 5, 20, 20, H, 1000)), *f[10:]], "RLE covers"),
        (lambda f: [*f[:12], "x", *f[13:]], "embedding value 3 must be a number"),
    ],
)
def test_trackrcnn_bad_line_names_file_and_line(tmp_path, edit, message):
    path, _ = _trackrcnn_file(tmp_path)
    lines = path.read_text().splitlines()
    lines[1] = " ".join(edit(lines[1].split(" ")))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=message) as caught:
        read_trackrcnn(path)
    assert str(caught.value).startswith(f"{path}:2: ")


def test_trackrcnn_write_read_round_trip(tmp_path):
    path, _ = _trackrcnn_file(tmp_path)
    frames = read_trackrcnn(path)
    out = tmp_path / "again.txt"
    assert write_trackrcnn(out, frames) == 3
    again = read_trackrcnn(out)
    assert again == frames
    for frame in frames:
        for a, b in zip(frames[frame], again[frame], strict=True):
            np.testing.assert_array_equal(a.embedding, b.embedding)


# ---------------------------------------------------------------- box formats


def test_kitti_boxes_reader(tmp_path):
    path = tmp_path / "boxes.txt"
    path.write_text("0 10.5 20 110 90.25 0.93 1\n0 300 100 340 220 0.71 2\n4 1 2 3 4 0.1 9\n")
    frames = read_kitti_boxes(path)
    assert list(frames) == [0, 4]
    assert frames[0][0].box == (10.5, 20.0, 110.0, 90.25)
    assert [d.class_name for d in frames[0]] == ["car", "pedestrian"]
    assert frames[4][0].class_name == "9"
    for bad, message in [
        ("0 10 20 110 90 0.9", "expected 7 fields"),
        ("0 10 20 110 90 0.9 car", "class_id must be an integer"),
        ("0 10 20 5 90 0.9 1", "is empty"),
    ]:
        path.write_text(f"0 10 20 110 90 0.9 1\n{bad}\n")
        with pytest.raises(FormatError, match=message) as caught:
            read_kitti_boxes(path)
        assert str(caught.value).startswith(f"{path}:2: ")


MOT17_DET = """1,-1,1359.1,413.27,120.26,362.77,2.3092,-1,-1,-1
1,-1,571.03,402.13,104.56,315.68,1.5028,-1,-1,-1
3,-1,650.8,455.86,63.98,193.94,0.33276,-1,-1,-1
"""


def test_mot_det_shifts_frames_by_one_and_converts_boxes(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text(MOT17_DET)
    frames = read_mot_det(path)
    assert list(frames) == [0, 2]  # file frames 1 and 3
    first = frames[0][0]
    assert first.frame == 0 and first.class_name == "pedestrian"
    assert first.box == pytest.approx((1359.1, 413.27, 1359.1 + 120.26, 413.27 + 362.77))
    assert first.score == pytest.approx(2.3092)
    assert read_mot_det(path, class_id="car")[2][0].class_name == "car"
    for bad, message in [
        ("0,-1,1,2,3,4,0.5", "frame must be >= 1, found 0"),
        ("1,-1,1,2,3,4", "expected at least 7 fields"),
        ("1,-1,1,2,-3,4,0.5", "box size must be positive"),
        ("1,-1,1,2,3,4,0.5,-1,x,-1", "column 9 must be a number"),
    ]:
        path.write_text(MOT17_DET + bad + "\n")
        with pytest.raises(FormatError, match=message) as caught:
            read_mot_det(path)
        assert str(caught.value).startswith(f"{path}:4: ")


# ---------------------------------------------------------------- read_detections


def test_read_detections_gives_engine_detections_per_frame(tmp_path):
    path, (car, walker) = _trackrcnn_file(tmp_path)
    sequence = read_detections(path, "trackrcnn")
    assert sequence.frames == (0, 2) and len(sequence) == 2 and 1 not in sequence
    assert sequence.image_size == (H, W)
    frame0 = sequence[0]
    assert isinstance(frame0, Detections)
    assert frame0.boxes.dtype == np.float32 and frame0.boxes.shape == (2, 4)
    assert frame0.class_ids == ("car", "pedestrian")
    assert frame0.masks.shape == (2, H, W) and frame0.masks.dtype == bool
    np.testing.assert_array_equal(frame0.masks[0], car)
    np.testing.assert_array_equal(frame0.masks[1], walker)
    assert sequence[2].class_ids == ("7",)
    empty = sequence.detections_at(1)
    assert len(empty) == 0 and empty.masks.shape == (0, H, W)
    with pytest.raises(KeyError):
        sequence[1]

    det = tmp_path / "det.txt"
    det.write_text(MOT17_DET)
    mot = read_detections(det, "mot_det")
    assert mot.frames == (0, 2) and mot[0].masks is None
    assert mot[0].class_ids == ("pedestrian", "pedestrian")
    np.testing.assert_allclose(mot[2].boxes[0], [650.8, 455.86, 714.78, 649.8], rtol=1e-6)
    assert len(mot.detections_at(1)) == 0

    boxes = tmp_path / "boxes.txt"
    boxes.write_text("1 10 20 110 90 0.9 1\n")
    kitti = read_detections(boxes, "boxes")
    assert kitti.frames == (1,) and kitti[1].class_ids == ("car",)

    with pytest.raises(DatasetError, match="unknown detection format 'yolo'"):
        read_detections(boxes, "yolo")


# ---------------------------------------------------------------- writers


def _tracks_from_gt(frames, id_offset=0):
    """GT objects (ignore regions left out) as (track_id, class, mask) per frame."""
    return {
        frame: [
            (obj.object_id + id_offset, obj.class_name, obj.mask())
            for obj in objects
            if not obj.is_ignore
        ]
        for frame, objects in frames.items()
    }


def test_kitti_mots_round_trip_on_real_masks_with_renumbered_ids(tmp_path, kitti_mots_gt):
    gt = read_kitti_mots(kitti_mots_gt / "0012.txt")
    # tracker ids grow past 999; the writer renumbers them per class
    tracks = _tracks_from_gt(gt, id_offset=1_000_000)
    out = tmp_path / "0012.txt"
    summary = write_kitti_mots(out, tracks)
    again = read_kitti_mots(out)
    expected = {f: [o for o in objs if not o.is_ignore] for f, objs in gt.items()}
    expected = {f: objs for f, objs in expected.items() if objs}
    assert list(again) == list(expected)
    assert summary.lines == sum(map(len, expected.values()))
    assert summary.skipped_empty == summary.overlap_pixels == summary.skipped_class_objects == 0
    mapping: dict[int, int] = {}
    for frame, objects in expected.items():
        for original, written in zip(objects, again[frame], strict=True):
            assert written.counts == original.counts  # identical masks, same RLE string
            assert written.class_id == original.class_id and written.frame == frame
            assert mapping.setdefault(original.object_id, written.object_id) == written.object_id
            assert summary.object_ids[(original.class_name, original.object_id + 1_000_000)] == (
                written.object_id
            )
    # one written id per track, numbered 1, 2, ... per class in order of first appearance
    assert len(set(mapping.values())) == len(mapping)
    for class_id in (1, 2):
        instances = [w % 1000 for o, w in mapping.items() if o // 1000 == class_id]
        assert instances == list(range(1, len(instances) + 1))


def test_kitti_mots_keep_track_ids(tmp_path, kitti_mots_gt):
    gt = read_kitti_mots(kitti_mots_gt / "0012.txt")
    frames = dict(list(gt.items())[:5])
    tracks = {
        f: [(o.instance, c, m) for (_, c, m), o in zip(t, frames[f], strict=False)]
        for f, t in _tracks_from_gt(frames).items()
    }
    out = tmp_path / "kept.txt"
    write_kitti_mots(out, tracks, keep_track_ids=True)
    again = read_kitti_mots(out)
    assert [o.object_id for o in again[0]] == [o.object_id for o in gt[0] if not o.is_ignore]
    with pytest.raises(
        WriteError, match=r"track id 1000 \(car\) does not fit.*keep_track_ids=False"
    ):
        write_kitti_mots(out, {0: [(1000, "car", _box_mask(0, 0, 10, 10))]}, keep_track_ids=True)


def test_writer_resolves_overlaps_and_skips_empty_and_unknown_classes(tmp_path):
    first = _box_mask(100, 100, 200, 200)
    second = _box_mask(150, 150, 250, 250)  # 50x50 pixels overlap the first
    tracks = [
        Track.with_mask(
            first,
            track_id=7,
            class_id="car",
            state=TrackState.CONFIRMED,
            bbox=None,
            detection_score=0.9,
            mask_score=0.9,
            existence=0.9,
            age=0,
            frames_since_detection=0,
        ),
        (3, "pedestrian", second),
        (4, "car", np.zeros((H, W), dtype=bool)),  # empty
        (5, "bicycle", first),
        (6, "car", first.astype(np.uint8)),  # entirely claimed by track 7
    ]
    out = tmp_path / "overlap.txt"
    summary = write_kitti_mots(out, [(0, tracks)])
    assert summary.overlap_pixels == 50 * 50 + 100 * 100
    assert summary.skipped_empty == 2 and summary.skipped_classes == {"bicycle": 1}
    assert summary.object_ids == {("car", 7): 1001, ("pedestrian", 3): 2001}
    again = read_kitti_mots(out)[0]
    np.testing.assert_array_equal(again[0].mask(), first)
    np.testing.assert_array_equal(again[1].mask(), second & ~first)


def test_writer_rejects_out_of_order_frames_and_other_sizes(tmp_path):
    mask = _box_mask(0, 0, 10, 10)
    with kitti_mots_writer(tmp_path / "a.txt") as writer:
        writer.write_frame(3, [(1, "car", mask)])
        with pytest.raises(WriteError, match="frame 3 written after frame 3"):
            writer.write_frame(3, [])
        with pytest.raises(WriteError, match=r"mask is 10x10, earlier masks .* are 375x1242"):
            writer.write_frame(4, [(1, "car", np.ones((10, 10), bool))])
        with pytest.raises(WriteError, match="dtype float32"):
            writer.write_frame(5, [(1, "car", mask.astype(np.float32))])
    assert read_kitti_mots(tmp_path / "a.txt")[3][0].object_id == 1001


def test_mots20_round_trip_frames_from_one_pedestrians_only(tmp_path):
    gt_path = _mots20_gt(tmp_path)
    gt = read_mots20(gt_path)
    tracks = _tracks_from_gt(gt, id_offset=40)
    tracks[1].append((99, "car", _box_mask(500, 300, 600, 400, 480, 640)))
    out = tmp_path / "MOTS20-02.txt"
    summary = write_mots20(out, tracks)
    assert summary.skipped_classes == {"car": 1}
    assert [line.split(" ")[0] for line in out.read_text().splitlines()] == [
        "1",
        "1",
        "2",
        "3",
        "3",
    ]
    again = read_mots20(out, read_seqinfo(tmp_path / "seqinfo.ini"))
    assert list(again) == [0, 1, 2]
    for frame, objects in gt.items():
        people = [o for o in objects if not o.is_ignore]
        assert [o.counts for o in again[frame]] == [o.counts for o in people]
    assert [o.object_id for o in again[0]] == [2001, 2002]
    assert summary.object_ids == {("pedestrian", 2041): 2001, ("pedestrian", 2042): 2002}
