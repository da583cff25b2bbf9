"""Where `run` and `render` read frames from: an image folder, a video file, or the images
of a bag (raw or compressed), all as (H, W, 3) uint8 RGB in order (ROS-free but for a
bag, whose images are converted by ``seg2track_ros.ros.conversions``).

Frame k of a source is frame k of the detections file and of the results: an image
folder's k-th file in natural order, a video's k-th decoded frame (OpenCV), a bag's
image with the k-th smallest stamp.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg2track_ros.errors import UserFacingError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")


class FrameSourceError(UserFacingError):
    """Frames cannot be read (missing file, a video OpenCV cannot open); says why."""


class FrameSource:
    """Frames in order. ``len`` is the number of frames (a video's as its container
    states it: the frames actually decoded may be fewer, and iteration stops there)."""

    description: str

    def __len__(self) -> int:
        raise NotImplementedError

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError


@dataclass
class ImageFolder(FrameSource):
    images: Sequence[Path]
    description: str = "images"

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[np.ndarray]:
        from seg2track_ros.pipeline import load_rgb

        for path in self.images:
            yield load_rgb(path)


@dataclass
class VideoFile(FrameSource):
    path: Path
    frame_count: int
    fps: float
    description: str = "video"

    def __len__(self) -> int:
        return self.frame_count

    def __iter__(self) -> Iterator[np.ndarray]:
        import cv2

        capture = cv2.VideoCapture(str(self.path))
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    return
                if bgr.ndim == 2:
                    bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
                yield np.ascontiguousarray(bgr[..., ::-1])
        finally:
            capture.release()


@dataclass
class BagImages(FrameSource):
    path: Path
    count: int
    image_topic: str | None = None
    description: str = "bag images"

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[np.ndarray]:
        from seg2track_ros.bags.reader import read_pairs
        from seg2track_ros.bags.typestore import typestore
        from seg2track_ros.ros.conversions import (
            RejectedInput,
            compressed_image_to_rgb,
            image_to_rgb,
        )

        store = typestore()
        for index, pair in enumerate(
            read_pairs(self.path, self.image_topic, with_detections=False)
        ):
            message = store.deserialize_cdr(pair.image_cdr, pair.image_type)
            try:
                if pair.compressed:
                    yield compressed_image_to_rgb(message)
                else:
                    yield image_to_rgb(message)
            except RejectedInput as error:
                raise FrameSourceError(f"{self.path}: image {index}: {error}") from None


def is_bag(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "metadata.yaml").is_file()


def open_video(path: Path) -> VideoFile:
    import cv2

    path = Path(path)
    if not path.is_file():
        raise FrameSourceError(f"video {path} does not exist")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise FrameSourceError(
                f"OpenCV cannot open the video {path} (its build has no decoder for this"
                " container or codec: convert it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`,"
                " or extract frames: `ffmpeg -i IN frames/%06d.png`)"
            )
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        capture.release()
    return VideoFile(path, max(count, 0), fps)


def open_frames(
    images: Path | None = None, video: Path | None = None, image_topic: str | None = None
) -> FrameSource:
    """The frame source of `--images` (a folder of images, or a bag) or `--video`."""
    if video is not None:
        return open_video(video)
    if images is None:
        raise FrameSourceError("no frames given: pass --images DIR|BAG or --video FILE")
    if is_bag(images):
        from seg2track_ros.bags.reader import read_pairs

        count = sum(1 for _ in read_pairs(images, image_topic, with_detections=False))
        return BagImages(Path(images), count, image_topic)
    if Path(images).is_file() and Path(images).suffix.lower() in VIDEO_SUFFIXES:
        return open_video(images)
    from seg2track_ros.pipeline import list_images

    return ImageFolder(list_images(images))
