"""Drawing tracks on images (ROS-free): the node's overlay and `seg2track render`.

Each track's mask is tinted with its colour (``track_colour``: a fixed colour per track
id) and labelled "<id> <class>" in a filled box of that colour, placed next to the
track's box where it overlaps no other label (``place_labels``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), pixels


class Drawable(Protocol):
    track_id: int
    class_id: str
    mask: np.ndarray
    bbox: tuple[float, float, float, float] | None


FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX
PAD = 2  # pixels of background around a label's text


def label_style(height: int, width: int) -> tuple[float, int]:
    """Font scale and thickness readable at this image size (0.5 at VGA, 1.0 at 1080p)."""
    scale = float(np.clip(min(height, width) / 960.0, 0.4, 1.5))
    return scale, 1 if scale < 0.8 else 2


def overlay_image(
    rgb: np.ndarray, tracks: Sequence[Drawable], alpha: float = 0.5, title: str | None = None
) -> np.ndarray:
    """bgr8 picture of the frame with each track's mask tinted and its id and class on
    a filled label; `title` (e.g. the frame number) goes in the top-left corner."""
    import cv2

    bgr = np.ascontiguousarray(rgb[..., ::-1]).copy()
    height, width = bgr.shape[:2]
    for track in tracks:
        if track.mask.any():
            colour = np.array(track_colour(track.track_id), np.float32)
            bgr[track.mask] = ((1 - alpha) * bgr[track.mask] + alpha * colour).astype(np.uint8)
    scale, thickness = label_style(height, width)
    reserved: list[Rect] = []
    if title:
        size = _text_size(title, scale, thickness)
        rect = (0, 0, size[0] + 2 * PAD, size[1] + 2 * PAD)
        _draw_label(bgr, title, rect, (0, 0, 0), scale, thickness)
        reserved.append(rect)
    labelled = [t for t in tracks if t.bbox is not None]
    texts = [f"{t.track_id} {t.class_id}" for t in labelled]
    sizes = [_text_size(text, scale, thickness) for text in texts]
    rects = place_labels(
        [t.bbox for t in labelled],
        [(w + 2 * PAD, h + 2 * PAD) for w, h in sizes],
        (height, width),
        reserved,
    )
    for track, text, rect in zip(labelled, texts, rects, strict=True):
        _draw_label(bgr, text, rect, track_colour(track.track_id), scale, thickness)
        cv2.rectangle(bgr, rect[:2], (rect[2] - 1, rect[3] - 1), (0, 0, 0), 1)
    return bgr


def place_labels(
    boxes: Sequence[tuple[float, float, float, float]],
    sizes: Sequence[tuple[int, int]],
    image_shape: tuple[int, int],
    reserved: Sequence[Rect] = (),
) -> list[Rect]:
    """A rectangle of `sizes[k]` (width, height) for each box's label, inside the image,
    overlapping neither another label nor a `reserved` rectangle where the image has
    room: tried above the box's top-left corner, inside it, below the box, then moved
    down (and across) from there in label-height steps. Greedy, in the given order."""
    height, width = image_shape
    placed: list[Rect] = list(reserved)
    out: list[Rect] = []
    for (x0, y0, _x1, y1), (w, h) in zip(boxes, sizes, strict=True):
        left = int(np.clip(round(x0), 0, max(width - w, 0)))
        candidates = [
            (left, round(y0) - h),  # above the box
            (left, round(y0)),  # inside, at the top
            (left, round(y1)),  # below the box
        ]
        step = max(h, 1)
        for dy in range(step, height + step, step):  # then down the box's column
            candidates.append((left, round(y0) + dy))
        for dx in (w, -w, 2 * w, -2 * w):  # then beside it
            for dy in range(0, height, step):
                candidates.append((left + dx, dy))
        chosen = None
        for cx, cy in candidates:
            rect = _clamp((cx, cy, cx + w, cy + h), width, height)
            if not any(_overlaps(rect, other) for other in placed):
                chosen = rect
                break
        if chosen is None:  # the image is full of labels: overlap rather than drop
            chosen = _clamp((left, round(y0) - h, left + w, round(y0)), width, height)
        placed.append(chosen)
        out.append(chosen)
    return out


def _clamp(rect: Rect, width: int, height: int) -> Rect:
    x0, y0, x1, y1 = rect
    w, h = x1 - x0, y1 - y0
    x0 = int(min(max(x0, 0), max(width - w, 0)))
    y0 = int(min(max(y0, 0), max(height - h, 0)))
    return x0, y0, x0 + w, y0 + h


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _text_size(text: str, scale: float, thickness: int) -> tuple[int, int]:
    import cv2

    (w, h), baseline = cv2.getTextSize(text, FONT, scale, thickness)
    return w, h + baseline


def _draw_label(
    bgr: np.ndarray,
    text: str,
    rect: Rect,
    colour: tuple[int, int, int],
    scale: float,
    thickness: int,
) -> None:
    import cv2

    x0, y0, x1, y1 = rect
    cv2.rectangle(bgr, (x0, y0), (x1 - 1, y1 - 1), colour, cv2.FILLED)
    # Black text on light colours, white on dark (ITU-R BT.601 luma of the BGR colour).
    luma = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
    ink = (0, 0, 0) if luma > 140 else (255, 255, 255)
    _, baseline = cv2.getTextSize(text, FONT, scale, thickness)
    cv2.putText(
        bgr, text, (x0 + PAD, y1 - PAD - baseline), FONT, scale, ink, thickness, cv2.LINE_AA
    )


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per track id (golden-ratio hue steps)."""
    import colorsys

    hue = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def colour_labels(labels: np.ndarray) -> np.ndarray:
    """bgr8 picture of an `instance_labels` image (mono16, pixel = track id, 0 =
    background) in the overlay's colours: black background, each id in
    ``track_colour(id)``. One table lookup over the ids present."""
    labels = np.asarray(labels)
    ids, inverse = np.unique(labels, return_inverse=True)
    table = np.array([(0, 0, 0) if i == 0 else track_colour(int(i)) for i in ids], np.uint8)
    return table[inverse.reshape(labels.shape)]
