"""`seg2track render`: an MP4 of the frames with each track's mask, id and class drawn,
from a results file (KITTI MOTS / MOTS20) or from a `tracks` bag (`replay --out-bag`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg2track_ros.engine.masks import mask_to_box
from seg2track_ros.errors import UserFacingError
from seg2track_ros.visualize import overlay_image


class RenderError(UserFacingError):
    """The video cannot be made (no codec, unreadable inputs)."""


@dataclass
class DrawnTrack:
    track_id: int
    class_id: str
    mask: np.ndarray
    bbox: tuple[float, float, float, float] | None


def tracks_from_results(path: Path, fmt: str = "kitti_mots") -> dict[int, list[DrawnTrack]]:
    from seg2track_ros.datasets import class_name, read_kitti_mots, read_mots20

    frames = read_kitti_mots(path) if fmt == "kitti_mots" else read_mots20(path)
    out: dict[int, list[DrawnTrack]] = {}
    for frame, objects in frames.items():
        drawn = []
        for obj in objects:
            if obj.is_ignore:
                continue
            mask = obj.mask().astype(bool)
            drawn.append(
                DrawnTrack(obj.object_id, class_name(obj.class_id), mask, mask_to_box(mask))
            )
        out[frame] = drawn
    return out


def tracks_from_bag(path: Path) -> dict[int, list[DrawnTrack]]:
    """Frames in the order the `tracks` messages were recorded."""
    from rosbags.rosbag2 import Reader

    from seg2track_ros.bags.typestore import TRACKS, typestore
    from seg2track_ros.engine.masks import counts_to_mask

    store = typestore()
    out: dict[int, list[DrawnTrack]] = {}
    with Reader(path) as reader:
        connections = [c for c in reader.connections if c.msgtype == TRACKS]
        if not connections:
            raise RenderError(f"bag {path} has no {TRACKS} topic")
        for frame, (_c, _t, data) in enumerate(reader.messages(connections=connections)):
            message = store.deserialize_cdr(bytes(data), TRACKS)
            drawn = []
            for obj in message.objects:
                counts = np.asarray(obj.mask.counts, dtype=np.uint32)
                mask = counts_to_mask(counts, obj.mask.height, obj.mask.width).astype(bool)
                drawn.append(DrawnTrack(obj.track_id, obj.class_id, mask, mask_to_box(mask)))
            out[frame] = drawn
    return out


def render_video(
    images: Sequence[Path], tracks: dict[int, list[DrawnTrack]], out: Path, fps: float = 10.0
) -> int:
    """Write the MP4; returns the number of frames written."""
    import cv2

    from seg2track_ros.pipeline import load_rgb

    if not images:
        raise RenderError("no images to render")
    first = load_rgb(images[0])
    height, width = first.shape[:2]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RenderError(f"OpenCV cannot write an mp4v video to {out}")
    count = 0
    try:
        for frame, rgb in _frames(images, first):
            if rgb.shape[:2] != (height, width):
                raise RenderError(
                    f"{images[frame]} is {rgb.shape[:2]}, the first {first.shape[:2]}"
                )
            bgr = overlay_image(rgb, tracks.get(frame, []))
            cv2.putText(
                bgr,
                f"frame {frame}",
                (8, 20),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.6,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
            writer.write(bgr)
            count += 1
    finally:
        writer.release()
    return count


def _frames(images: Sequence[Path], first: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    from seg2track_ros.pipeline import load_rgb

    yield 0, first
    for index in range(1, len(images)):
        yield index, load_rgb(images[index])
