"""`seg2track render`: an MP4 of the frames with each track's mask, id and class drawn,
from a results file (KITTI MOTS / MOTS20) or from a `tracks` bag (`replay --out-bag`)."""

from __future__ import annotations

import contextlib
import functools
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg2track_ros.engine.masks import mask_to_box
from seg2track_ros.errors import UserFacingError, make_parent_folder
from seg2track_ros.stamps import header_stamp_ns
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
            stamp = header_stamp_ns(message.header)
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


@dataclass(frozen=True)
class RenderSummary:
    frames: int
    codec: str  # the FourCC written: avc1 (H.264) or mp4v (MPEG-4 Part 2)
    note: str | None  # why not H.264, when it is not


# H.264 plays in every browser and player; MPEG-4 Part 2 (mp4v) does not play in
# browsers (Chrome, Firefox) nor in macOS QuickTime. OpenCV's pip wheels ship FFmpeg
# without an H.264 encoder; builds linked against a full FFmpeg (distribution packages,
# conda) have one.
CODECS = ("avc1", "mp4v")
MP4V_NOTE = (
    "this OpenCV build cannot write H.264 (avc1), so the video is MPEG-4 Part 2 (mp4v):"
    " VLC and ffplay play it, browsers and QuickTime do not. For one that plays"
    " everywhere: ffmpeg -i {out} -c:v libx264 -pix_fmt yuv420p {stem}_h264.mp4"
)


@functools.cache
def h264_available() -> bool:
    """Whether this OpenCV build writes H.264 MP4s (probed once, on a scratch file, with
    FFmpeg's complaints about missing encoders kept off the terminal)."""
    import cv2

    with tempfile.TemporaryDirectory(prefix="seg2track-codec-") as folder, _quiet_stderr():
        writer = cv2.VideoWriter(
            str(Path(folder) / "probe.mp4"), cv2.VideoWriter_fourcc(*"avc1"), 10.0, (64, 64)
        )
        ok = writer.isOpened()
        if ok:
            writer.write(np.zeros((64, 64, 3), np.uint8))
        writer.release()
    return ok


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (FFmpeg and OpenCV write there from C, not via Python)."""
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _open_writer(out: Path, fps: float, size: tuple[int, int], codec: str):
    """(writer, fourcc, note): H.264 first under 'auto', mp4v when H.264 fails."""
    import cv2

    tried = CODECS if codec == "auto" else (codec,)
    if codec == "auto" and not h264_available():
        tried = ("mp4v",)
    for fourcc in tried:
        writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if writer.isOpened():
            note = None
            if fourcc == "mp4v":
                note = MP4V_NOTE.format(out=out, stem=out.with_suffix(""))
                if codec == "mp4v":
                    note = None  # asked for
            return writer, fourcc, note
        writer.release()
    raise RenderError(f"OpenCV cannot write a {'/'.join(tried)} video to {out}")


def render_video(
    images,
    tracks: dict[int, list[DrawnTrack]],
    out: Path,
    fps: float = 10.0,
    *,
    codec: str = "auto",
) -> RenderSummary:
    """Write the MP4 of `images` (image paths or a FrameSource) with the tracks drawn."""
    from seg2track_ros.frames import FrameSource, ImageFolder

    if codec != "auto" and codec not in CODECS:
        raise RenderError(f"codec must be auto or one of {', '.join(CODECS)}, got {codec!r}")
    source = images if isinstance(images, FrameSource) else ImageFolder(list(images))
    frames = iter(source)
    first = next(frames, None)
    if first is None:
        raise RenderError("no images to render")
    height, width = first.shape[:2]
    sized = next((track.mask.shape for drawn in tracks.values() for track in drawn), None)
    if sized is not None and sized != (height, width):
        raise RenderError(
            f"the masks are {sized[1]}x{sized[0]} pixels but the images ({source.description}) are"
            f" {width}x{height}: these tracks belong to other images"
        )
    out = Path(out)
    make_parent_folder(out, "video")
    writer, fourcc, note = _open_writer(out, fps, (width, height), codec)
    count = 0
    try:
        for frame, rgb in enumerate(_chain(first, frames)):
            if rgb.shape[:2] != (height, width):
                raise RenderError(
                    f"frame {frame} of the {source.description} is"
                    f" {rgb.shape[1]}x{rgb.shape[0]} pixels, the first {width}x{height};"
                    " one video holds one image size"
                )
            drawn = tracks.get(frame, [])
            for track in drawn:
                if track.mask.shape != (height, width):
                    raise RenderError(
                        f"the masks of frame {frame} are {track.mask.shape[1]}x"
                        f"{track.mask.shape[0]} pixels but its image ({source.description})"
                        f" is {width}x{height}: these results belong to other images"
                    )
            writer.write(overlay_image(rgb, drawn, title=f"frame {frame}"))
            count += 1
    finally:
        writer.release()
    return RenderSummary(count, fourcc, note)


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest
