"""TrackR-CNN detections: boxes, scores, classes, masks and association embeddings.

One detection per line, space separated, frames from 0::

    frame x0 y0 x1 y1 score class_id img_height img_width rle [embedding ...]

Boxes are xyxy in pixels, class ids 1 car and 2 pedestrian (others are kept as their
number), rle a compressed COCO string, and the optional trailing numbers TrackR-CNN's
association embedding. ``simulate`` writes this format without embeddings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from seg2track_ros.datasets._lines import (
    data_lines,
    expect_fields,
    parse_box_xyxy,
    parse_float,
    parse_int,
    parse_rle,
)
from seg2track_ros.datasets.errors import DatasetFileError, FormatError, WriteError
from seg2track_ros.datasets.records import MaskDetection

LAYOUT = "frame x0 y0 x1 y1 score class_id img_height img_width rle [embedding ...]"


def read_trackrcnn(path: str | Path) -> dict[int, list[MaskDetection]]:
    """Detections per 0-based frame, frames ascending, detections in file order.

    Frames without detections are absent. Every line is checked (field count, numbers,
    a non-empty box, one image size per file, RLE covering the image, numeric
    embedding); the first bad line raises FormatError.
    """
    path = Path(path)
    frames: dict[int, list[MaskDetection]] = {}
    size_line: tuple[int, int, int] | None = None
    for line, fields in data_lines(path):
        expect_fields(path, line, fields, 10, LAYOUT, at_least=True)
        frame = parse_int(path, line, "frame", fields[0], minimum=0)
        box = parse_box_xyxy(path, line, fields[1:5])
        score = parse_float(path, line, "score", fields[5])
        class_id = parse_int(path, line, "class_id", fields[6], minimum=0)
        height = parse_int(path, line, "img_height", fields[7], minimum=1)
        width = parse_int(path, line, "img_width", fields[8], minimum=1)
        if size_line is None:
            size_line = (height, width, line)
        elif (height, width) != size_line[:2]:
            raise FormatError(
                path,
                line,
                f"image size {height}x{width} differs from {size_line[0]}x{size_line[1]}"
                f" (line {size_line[2]}); one file holds one sequence",
            )
        counts = parse_rle(path, line, fields[9], height, width)
        embedding = np.array(
            [
                parse_float(path, line, f"embedding value {index}", text)
                for index, text in enumerate(fields[10:], start=1)
            ],
            dtype=np.float32,
        )
        detection = MaskDetection(frame, box, score, class_id, height, width, counts, embedding)
        frames.setdefault(frame, []).append(detection)
    return dict(sorted(frames.items()))


def write_trackrcnn(
    path: str | Path, detections: Mapping[int, Iterable[MaskDetection]] | Iterable[MaskDetection]
) -> int:
    """Write detections (``{frame: detections}`` or in order); returns the line count.

    Numbers are written in Python's shortest exact form, so reading the file back gives
    the same values, and the same detections always give the same bytes.
    """
    path = Path(path)
    if isinstance(detections, Mapping):
        ordered: Iterable[MaskDetection] = (
            detection for _, frame in sorted(detections.items()) for detection in frame
        )
    else:
        ordered = detections
    lines = []
    for detection in ordered:
        x0, y0, x1, y1 = detection.box
        if not (x1 > x0 and y1 > y0):
            raise WriteError(
                f"detection on frame {detection.frame} has an empty box {detection.box}"
            )
        fields = [
            str(detection.frame),
            *(_number(value) for value in detection.box),
            _number(detection.score),
            str(detection.class_id),
            str(detection.height),
            str(detection.width),
            detection.counts,
            *(_number(value) for value in detection.embedding),
        ]
        lines.append(" ".join(fields) + "\n")
    try:
        with path.open("w", encoding="ascii", newline="\n") as handle:
            handle.writelines(lines)
    except OSError as exc:
        raise DatasetFileError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return len(lines)


def _number(value: float) -> str:
    return repr(float(value))
