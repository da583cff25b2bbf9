"""Tracking a sequence without ROS: image folder + detections file -> results file.

The engine runs directly (no DDS); with the same inputs and parameters it writes the
same results file as `seg2track replay --lockstep` through tracker_node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg2track_ros.datasets import DetectionSequence, WriteSummary
from seg2track_ros.engine.config import EngineConfig
from seg2track_ros.engine.types import TrackState
from seg2track_ros.errors import UserFacingError
from seg2track_ros.frames import FrameSource
from seg2track_ros.results import DEFAULT_STATES, ResultsRecorder

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SEGMENTERS = ("sam2", "detection-masks")


class PipelineError(UserFacingError):
    """Inputs that cannot be tracked (missing images, sizes unknown); says what to fix."""


@dataclass
class RunSummary:
    frames: int
    results: WriteSummary
    mean_frame_ms: float


def list_images(directory: Path) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise PipelineError(f"image folder {directory} does not exist")
    images = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise PipelineError(f"no {'/'.join(IMAGE_SUFFIXES)} images in {directory}")
    return images


def load_rgb(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise PipelineError(f"cannot read image {path}")
    return np.ascontiguousarray(bgr[..., ::-1])


def build_segmenter(config: EngineConfig, kind: str):
    if kind == "sam2":
        from seg2track_ros.engine.sam2_model import build_segmenter as build_sam2

        return build_sam2(config.segmenter)
    if kind == "detection-masks":
        from seg2track_ros.engine.detection_masks import DetectionMaskSegmenter

        return DetectionMaskSegmenter()
    raise PipelineError(f"segmenter must be one of {', '.join(SEGMENTERS)}, got {kind!r}")


def run_sequence(
    config: EngineConfig,
    detections: DetectionSequence,
    results: Path,
    *,
    images: Sequence[Path] | FrameSource | None = None,
    segmenter: str = "sam2",
    fmt: str = "kitti_mots",
    states: Sequence[TrackState] = DEFAULT_STATES,
    frames: int | None = None,
    progress: bool = False,
) -> RunSummary:
    """Track every frame in order and write the results file.

    `images` are image paths or any ``FrameSource`` (an image folder, a video, a bag's
    images). Without them (detection-masks only) frames are blank images of the size
    the detections state, and the sequence ends at the last frame with detections unless
    `frames` says otherwise.
    """
    import itertools
    import time

    from seg2track_ros.engine.tracker import Tracker
    from seg2track_ros.frames import ImageFolder

    if images is None:
        if segmenter != "detection-masks":
            raise PipelineError("--images is needed with the sam2 segmenter")
        if detections.image_size is None:
            raise PipelineError("these detections do not state the image size; pass --images")
        count = frames if frames is not None else (max(detections.frames, default=-1) + 1)
        blank = np.zeros((*detections.image_size, 3), np.uint8)
        source = itertools.repeat(blank)
    else:
        if not isinstance(images, FrameSource):
            images = ImageFolder(list(images))
        count = len(images) if frames is None else min(frames, len(images))
        source = iter(images)
    tracker = Tracker(config.tracker, build_segmenter(config, segmenter))
    bar = _progress(progress, count)
    started = time.perf_counter()
    tracked = 0
    with ResultsRecorder(results, fmt, states) as recorder:
        # A video may decode fewer frames than its container states: stop there.
        for frame, image in zip(range(count), source, strict=False):
            result = tracker.step(image, detections.detections_at(frame))
            recorder.add_tracks(frame, result.tracks)
            tracked += 1
            bar.update(1)
        summary = recorder.close()
    bar.close()
    elapsed_ms = (time.perf_counter() - started) * 1000
    return RunSummary(tracked, summary, elapsed_ms / max(tracked, 1))


def _progress(enabled: bool, total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="tracking", disable=not enabled, leave=False)
