"""Input messages for the stress suite, built field by field so that malformed ones
(wrong step, NaN boxes, empty class ids, ...) can be made as easily as good ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose


def set_stamp(header, stamp_ns: int, frame_id: str = "camera") -> None:
    header.stamp.sec, header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    header.frame_id = frame_id


def image_msg(rgb: np.ndarray, stamp_ns: int) -> Image:
    """A good rgb8 image."""
    msg = Image(
        height=int(rgb.shape[0]),
        width=int(rgb.shape[1]),
        encoding="rgb8",
        step=int(rgb.shape[1]) * 3,
        data=np.ascontiguousarray(rgb).tobytes(),
    )
    set_stamp(msg.header, stamp_ns)
    return msg


def raw_image_msg(
    stamp_ns: int, height: int, width: int, encoding: str, step: int, data: bytes
) -> Image:
    """An image with exactly these header fields and bytes, consistent or not."""
    msg = Image(height=int(height), width=int(width), encoding=encoding, step=int(step))
    msg.data = data
    set_stamp(msg.header, stamp_ns)
    return msg


@dataclass(frozen=True)
class RawDetection:
    """One Detection2D's fields as sent (any float, even NaN; no hypothesis when
    `class_id` is None)."""

    cx: float
    cy: float
    size_x: float
    size_y: float
    score: float = 0.9
    class_id: str | None = "car"
    theta: float = 0.0

    @classmethod
    def from_box(cls, box: Sequence[float], score: float = 0.9, class_id: str = "car"):
        x0, y0, x1, y1 = (float(v) for v in box)
        return cls((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, score, class_id)


def detections_msg(stamp_ns: int, detections: Sequence[RawDetection]) -> Detection2DArray:
    msg = Detection2DArray()
    set_stamp(msg.header, stamp_ns)
    for raw in detections:
        detection = Detection2D()
        detection.header = msg.header
        # rosidl refuses ints in float64 fields: every value goes through float()
        detection.bbox.center.position.x = float(raw.cx)
        detection.bbox.center.position.y = float(raw.cy)
        detection.bbox.center.theta = float(raw.theta)
        detection.bbox.size_x = float(raw.size_x)
        detection.bbox.size_y = float(raw.size_y)
        if raw.class_id is not None:
            hypothesis = ObjectHypothesisWithPose()
            hypothesis.hypothesis.class_id = raw.class_id
            hypothesis.hypothesis.score = float(raw.score)
            detection.results.append(hypothesis)
        msg.detections.append(detection)
    return msg


def box_detections(boxes: Sequence[Sequence[float]]) -> list[RawDetection]:
    return [RawDetection.from_box(box) for box in boxes]
