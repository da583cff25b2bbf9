"""Plain box detections (format name ``boxes``): ``frame x0 y0 x1 y1 score class_id``,
frames from 0. Not KITTI's tracking label format (that is ``kitti_tracking``); the CLI
called this format ``kitti`` before, a name it still accepts with a deprecation warning.

Boxes xyxy in pixels; class ids 1 car, 2 pedestrian, other numbers kept as their string.
"""

from __future__ import annotations

from pathlib import Path

from seg2track_ros.datasets._lines import (
    data_lines,
    expect_fields,
    parse_box_xyxy,
    parse_float,
    parse_int,
)
from seg2track_ros.datasets.records import BoxDetection, class_name

LAYOUT = "frame x0 y0 x1 y1 score class_id"


def read_kitti_boxes(path: str | Path) -> dict[int, list[BoxDetection]]:
    """Detections per 0-based frame, frames ascending; the first bad line raises FormatError."""
    path = Path(path)
    frames: dict[int, list[BoxDetection]] = {}
    for line, fields in data_lines(path):
        expect_fields(path, line, fields, 7, LAYOUT)
        frame = parse_int(path, line, "frame", fields[0], minimum=0)
        box = parse_box_xyxy(path, line, fields[1:5])
        score = parse_float(path, line, "score", fields[5])
        class_number = parse_int(path, line, "class_id", fields[6], minimum=0)
        frames.setdefault(frame, []).append(
            BoxDetection(frame, box, score, class_name(class_number))
        )
    return dict(sorted(frames.items()))
