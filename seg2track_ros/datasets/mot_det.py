"""MOTChallenge detections (``det/det.txt``): ``frame,id,x,y,w,h,score,...``.

Comma separated, frames from 1, id -1 (detections have no identity), (x, y) the top-left
corner and (w, h) the size in pixels, then the score; MOT17 appends three unused -1
columns, which must be numbers but are otherwise ignored. The format has no class: the
reader gives every detection the class it is told (pedestrian by default, MOTChallenge's
one class). Frames are shifted to the engine's 0-based index.
"""

from __future__ import annotations

from pathlib import Path

from seg2track_ros.datasets._lines import data_lines, expect_fields, parse_float, parse_int
from seg2track_ros.datasets.errors import FormatError
from seg2track_ros.datasets.records import BoxDetection

LAYOUT = "frame,id,x,y,w,h,score,..."
FIRST_FRAME = 1


def read_mot_det(path: str | Path, class_id: str = "pedestrian") -> dict[int, list[BoxDetection]]:
    """Detections per 0-based frame (file frame - 1); the first bad line raises FormatError."""
    path = Path(path)
    frames: dict[int, list[BoxDetection]] = {}
    for line, fields in data_lines(path, separator=","):
        expect_fields(path, line, fields, 7, LAYOUT, at_least=True)
        file_frame = parse_int(path, line, "frame", fields[0], minimum=FIRST_FRAME)
        parse_float(path, line, "id", fields[1])  # unused, but a non-number is a broken line
        x, y, w, h = (
            parse_float(path, line, name, text)
            for name, text in zip(("x", "y", "w", "h"), fields[2:6], strict=True)
        )
        if w <= 0 or h <= 0:
            raise FormatError(path, line, f"box size must be positive, found w={w} h={h}")
        score = parse_float(path, line, "score", fields[6])
        for index, text in enumerate(fields[7:], start=8):
            parse_float(path, line, f"column {index}", text)
        frame = file_frame - FIRST_FRAME
        frames.setdefault(frame, []).append(
            BoxDetection(frame, (x, y, x + w, y + h), score, class_id)
        )
    return dict(sorted(frames.items()))
