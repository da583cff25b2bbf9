"""KITTI tracking labels and results as detections (the KITTI tracking benchmark's format).

One object per line, space separated, frames from 0::

    frame track_id type truncated occluded alpha left top right bottom
          height width length x y z rotation_y [score]

``type`` is the class name (``Car``, ``Pedestrian``, ``Van``, ``Cyclist``, ...); the box
is ``left top right bottom`` in pixels; the 3D fields (dimensions, location, rotation)
must be numbers and are otherwise ignored. Detector outputs in this format (results
files) end with a score; ground-truth label files have none, so their score is 1.0.
``DontCare`` lines mark regions to ignore, not objects, and are skipped. Classes become
the engine's lower-case names (``Car`` -> ``car``, ``Person_sitting`` -> ``person_sitting``).
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
from seg2track_ros.datasets.errors import FormatError
from seg2track_ros.datasets.records import BoxDetection

LAYOUT = (
    "frame track_id type truncated occluded alpha left top right bottom"
    " height width length x y z rotation_y [score]"
)
IGNORED_TYPE = "DontCare"


def read_kitti_tracking(path: str | Path) -> dict[int, list[BoxDetection]]:
    """Detections per 0-based frame, frames ascending; the first bad line raises FormatError."""
    path = Path(path)
    frames: dict[int, list[BoxDetection]] = {}
    for line, fields in data_lines(path):
        if len(fields) not in (17, 18):
            expect_fields(path, line, fields, 18, LAYOUT)
        frame = parse_int(path, line, "frame", fields[0], minimum=0)
        parse_int(path, line, "track_id", fields[1])
        kind = fields[2]
        if kind[0].isdigit() or kind[0] == "-":
            raise FormatError(path, line, f"type must be a class name such as Car, found {kind!r}")
        for name, text in zip(("truncated", "occluded", "alpha"), fields[3:6], strict=True):
            parse_float(path, line, name, text)
        if kind == IGNORED_TYPE:
            continue
        box = parse_box_xyxy(path, line, fields[6:10])
        for name, text in zip(
            ("height", "width", "length", "x", "y", "z", "rotation_y"), fields[10:17], strict=True
        ):
            parse_float(path, line, name, text)
        score = parse_float(path, line, "score", fields[17]) if len(fields) == 18 else 1.0
        frames.setdefault(frame, []).append(BoxDetection(frame, box, score, kind.lower()))
    return dict(sorted(frames.items()))
