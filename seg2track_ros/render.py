"""`seg2track render`: an MP4 of the frames with each track's mask, id and class drawn,
from a results file (KITTI MOTS / MOTS20) or from a `tracks` bag (`replay --out-bag`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg2track_ros.engine.masks import mask_to_box
from seg2track_ros.errors import UserFacingError, make_parent_folder
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


@dataclass
class BagTracks:
    """A `tracks` bag's messages numbered by frame: ``frames`` {frame: tracks}, and
    ``unanswered``, the frames that have no tracks message (drawn without masks)."""

    frames: dict[int, list[DrawnTrack]]
    unanswered: list[int]


def tracks_from_bag(
    path: Path, frame_stamps: Sequence[int] | None = None, frame_count: int | None = None
) -> BagTracks:
    """Tracks messages paired with frames by their header stamp, never by their order:
    a frame the tracker did not answer (a realtime replay, a live recording) must not
    shift every later mask onto the wrong image.

    ``frame_stamps``: the stamp of each frame, in order (the image stamps of the bag that
    was replayed); None: kitti-to-bag's clock without timestamps (frame i at 1 s + i /
    10 Hz) for ``frame_count`` frames. A tracks message whose stamp is no frame's raises
    RenderError (pass the replayed bag with --source-bag).
    """
    from seg2track_ros.bags.reader import open_bag
    from seg2track_ros.bags.typestore import TRACKS, typestore
    from seg2track_ros.bags.writer import default_stamp
    from seg2track_ros.engine.masks import counts_to_mask

    if frame_stamps is None:
        if frame_count is None:
            raise ValueError("tracks_from_bag needs frame_stamps or frame_count")
        frame_stamps = [default_stamp(i) for i in range(frame_count)]
    frame_of = {stamp: index for index, stamp in enumerate(frame_stamps)}
    store = typestore()
    out: dict[int, list[DrawnTrack]] = {}
    reader = open_bag(path)
    try:
        connections = [c for c in reader.connections if c.msgtype == TRACKS]
        if not connections:
            raise RenderError(f"bag {path} has no {TRACKS} topic")
        for _c, _t, data in reader.messages(connections=connections):
            message = store.deserialize_cdr(bytes(data), TRACKS)
            stamp = message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec
            frame = frame_of.get(stamp)
            if frame is None:
                raise RenderError(
                    f"{path}: a tracks message stamped {stamp / 1e9:.9f} s is none of the"
                    f" {len(frame_stamps)} frames' stamps; pass the bag that was replayed"
                    " with --source-bag (its image stamps number the frames)"
                )
            drawn = []
            for obj in message.objects:
                counts = np.asarray(obj.mask.counts, dtype=np.uint32)
                mask = counts_to_mask(counts, obj.mask.height, obj.mask.width).astype(bool)
                drawn.append(DrawnTrack(obj.track_id, obj.class_id, mask, mask_to_box(mask)))
            out[frame] = drawn
    finally:
        reader.close()
    unanswered = [index for index in range(len(frame_stamps)) if index not in out]
    return BagTracks(out, unanswered)


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
    sized = next((track.mask.shape for drawn in tracks.values() for track in drawn), None)
    if sized is not None and sized != (height, width):
        raise RenderError(
            f"the masks are {sized[1]}x{sized[0]} pixels but the images ({images[0]}) are"
            f" {width}x{height}: these tracks belong to other images"
        )
    out = Path(out)
    make_parent_folder(out, "video")
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RenderError(f"OpenCV cannot write an mp4v video to {out}")
    count = 0
    try:
        for frame, rgb in _frames(images, first):
            if rgb.shape[:2] != (height, width):
                raise RenderError(
                    f"{images[frame]} is {rgb.shape[1]}x{rgb.shape[0]} pixels, the first"
                    f" image {width}x{height}; one video holds one image size"
                )
            drawn = tracks.get(frame, [])
            for track in drawn:
                if track.mask.shape != (height, width):
                    raise RenderError(
                        f"the masks of frame {frame} are {track.mask.shape[1]}x"
                        f"{track.mask.shape[0]} pixels but its image {images[frame]} is"
                        f" {width}x{height}: these results belong to other images"
                    )
            bgr = overlay_image(rgb, drawn)
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
