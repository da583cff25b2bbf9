"""Detection file formats: each named after what it is, one documented example line per
format read back, the KITTI tracking label format, and the deprecated names (``kitti``,
``mot``) still working with a warning."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from seg2track_ros.cli import main
from seg2track_ros.datasets import (
    DETECTION_FORMATS,
    FORMAT_EXAMPLES,
    FormatError,
    read_detections,
    read_kitti_tracking,
)

from conftest import REPO_ROOT

# Tracking results of KITTI's tracking benchmark (with score), then a label line
# (no score) and a DontCare region.
KITTI_TRACKING = """0 -1 Car 0 0 -10 296.2 160.8 455.1 218.9 -1 -1 -1 -1000 -1000 -1000 -10 0.998
0 -1 Pedestrian 0 0 -10 700 150 730 240 -1 -1 -1 -1000 -1000 -1000 -10 0.75
2 5 Cyclist 0.00 0 -1.9 737.6 161.5 931.1 374.0 1.74 0.82 1.63 1.9 1.5 8.4 -1.6
2 -1 DontCare -1 -1 -10 219.3 188.5 245.5 218.6 -1000 -1000 -1000 -10 -1 -1 -1
"""


def test_kitti_tracking_reader(tmp_path):
    path = tmp_path / "0002.txt"
    path.write_text(KITTI_TRACKING)
    frames = read_kitti_tracking(path)
    assert list(frames) == [0, 2]
    car, walker = frames[0]
    assert (car.class_name, car.box, car.score) == ("car", (296.2, 160.8, 455.1, 218.9), 0.998)
    assert walker.class_name == "pedestrian"
    # A label line without a score is a certain object; DontCare is no object at all.
    assert [(d.class_name, d.score) for d in frames[2]] == [("cyclist", 1.0)]
    sequence = read_detections(path, "kitti_tracking")
    np.testing.assert_allclose(sequence[0].boxes[0], [296.2, 160.8, 455.1, 218.9], rtol=1e-6)
    assert sequence[0].class_ids == ("car", "pedestrian")
    for bad, message in [
        # The plain boxes format given as kitti_tracking: told, not misread.
        ("0 296.2 160.8 455.1 218.9 0.998 1", "expected 18 fields"),
        ("0 -1 1 0 0 -10 1 2 3 4 -1 -1 -1 -1 -1 -1 -10 0.9", "type must be a class name"),
        ("0 -1 Car 0 0 -10 10 2 3 4 -1 -1 -1 -1 -1 -1 -10 0.9", "is empty"),
    ]:
        path.write_text(f"{bad}\n")
        with pytest.raises(FormatError, match=message):
            read_kitti_tracking(path)


def test_every_format_example_line_reads(tmp_path):
    """The documented example line of each format is a valid line of that format."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.ones((375, 1242), np.uint8)))
    assert set(FORMAT_EXAMPLES) == set(DETECTION_FORMATS)
    for fmt, example in FORMAT_EXAMPLES.items():
        line = example.replace("<compressed COCO RLE>", rle["counts"].decode()).replace(
            " [embedding]", ""
        )
        path = tmp_path / f"{fmt}.txt"
        path.write_text(line + "\n")
        sequence = read_detections(path, fmt)
        (frame,) = sequence.frames
        assert len(sequence[frame]) == 1, fmt


def test_readme_documents_every_format_with_its_example_line():
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("### Detection file formats") :]
    section = section[: section.index("\n## ")]
    for fmt, example in FORMAT_EXAMPLES.items():
        assert f"`{fmt}`" in section, fmt
        assert example in section, f"README lacks the example line of {fmt}"
    assert "--det-format kitti" not in readme.replace("--det-format kitti_tracking", "")


def test_deprecated_names_read_the_same_format_and_warn(tmp_path):
    boxes = tmp_path / "boxes.txt"
    boxes.write_text("1 10 20 110 90 0.9 1\n")
    with pytest.warns(DeprecationWarning, match="not KITTI's tracking label format"):
        old = read_detections(boxes, "kitti_boxes")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = read_detections(boxes, "boxes")
    np.testing.assert_array_equal(old[1].boxes, new[1].boxes)


def test_cli_det_format_kitti_is_a_warned_alias_of_boxes(tmp_path, capsys):
    """`--det-format kitti` keeps working (scripts do not break) and says what it is."""
    boxes = tmp_path / "boxes.txt"
    boxes.write_text("0 10 20 50 60 0.9 1\n2 12 20 52 60 0.9 1\n")
    results = {}
    for name in ("kitti", "boxes"):
        out = tmp_path / f"{name}.txt"
        code = main(
            [
                "run",
                "--detections",
                str(boxes),
                "--det-format",
                name,
                "--segmenter",
                "detection-masks",
                "--images",
                str(_images(tmp_path, 3)),
                "--results",
                str(out),
                "-q",
            ]
        )
        assert code == 0
        results[name] = out.read_text()
        err = capsys.readouterr().err
        assert ("deprecated" in err) == (name == "kitti"), err
        if name == "kitti":
            assert re.search(r"means 'boxes'.*kitti_tracking", err), err
    assert results["kitti"] == results["boxes"]
    with pytest.raises(SystemExit) as caught:
        main(["run", "--detections", str(boxes), "--det-format", "yolo", "--results", "x"])
    assert caught.value.code == 2
    assert "unknown detection format 'yolo'" in capsys.readouterr().err


def _images(root, count):
    import cv2

    folder = root / "images"
    folder.mkdir(exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i:06d}.png"), np.full((80, 100, 3), 40 * i, np.uint8))
    return folder
