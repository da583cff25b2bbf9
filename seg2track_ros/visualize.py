"""Drawing tracks on images (ROS-free): the node's overlay and `seg2track render`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Drawable(Protocol):
    track_id: int
    class_id: str
    mask: np.ndarray
    bbox: tuple[float, float, float, float] | None


def overlay_image(rgb: np.ndarray, tracks: Sequence[Drawable], alpha: float = 0.5) -> np.ndarray:
    """bgr8 picture of the frame with each track's mask tinted and its id and class drawn."""
    import cv2

    bgr = np.ascontiguousarray(rgb[..., ::-1]).copy()
    for track in tracks:
        colour = track_colour(track.track_id)
        if track.mask.any():
            bgr[track.mask] = (
                (1 - alpha) * bgr[track.mask] + alpha * np.array(colour, np.float32)
            ).astype(np.uint8)
        if track.bbox is not None:
            x0, y0 = int(track.bbox[0]), int(track.bbox[1])
            cv2.putText(
                bgr,
                f"{track.track_id} {track.class_id}",
                (x0, max(y0 - 3, 10)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.45,
                colour,
                1,
                cv2.LINE_AA,
            )
    return bgr


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per track id (golden-ratio hue steps)."""
    import colorsys

    hue = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)
