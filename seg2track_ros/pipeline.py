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
from seg2track_ros.engine.registry import DEFAULT_SEGMENTER
from seg2track_ros.engine.types import TrackState
from seg2track_ros.errors import UserFacingError
from seg2track_ros.results import DEFAULT_STATES, ResultsRecorder

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


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
    """The segmenter registered as `kind` (engine/registry.py: sam2, detection-masks or
    a plugin's), exactly as tracker_node builds it."""
    from seg2track_ros.engine.registry import load_segmenter

    return load_segmenter(kind, config.segmenter)


def run_sequence(
    config: EngineConfig,
    detections: DetectionSequence,
    results: Path,
    *,
    images: Sequence[Path] | None = None,
    segmenter: str = DEFAULT_SEGMENTER,
    fmt: str = "kitti_mots",
    states: Sequence[TrackState] = DEFAULT_STATES,
    frames: int | None = None,
    progress: bool = False,
) -> RunSummary:
    """Track every frame in order and write the results file.

    Without `images` (detection-masks only) frames are blank images of the size the
    detections state, and the sequence ends at the last frame with detections unless
    `frames` says otherwise.
    """
    import time

    from seg2track_ros.engine.tracker import Tracker

    if images is None:
        if segmenter != "detection-masks":
            raise PipelineError(
                f"--images is needed with the {segmenter} segmenter (only detection-masks"
                " can track without images)"
            )
        if detections.image_size is None:
            raise PipelineError("these detections do not state the image size; pass --images")
        count = frames if frames is not None else (max(detections.frames, default=-1) + 1)
        blank = np.zeros((*detections.image_size, 3), np.uint8)
    else:
        count = len(images) if frames is None else min(frames, len(images))
    tracker = Tracker(config.tracker, build_segmenter(config, segmenter))
    bar = _progress(progress, count)
    started = time.perf_counter()
    with ResultsRecorder(results, fmt, states) as recorder:
        for frame in range(count):
            image = blank if images is None else load_rgb(images[frame])
            result = tracker.step(image, detections.detections_at(frame))
            recorder.add_tracks(frame, result.tracks)
            bar.update(1)
        summary = recorder.close()
    bar.close()
    elapsed_ms = (time.perf_counter() - started) * 1000
    return RunSummary(count, summary, elapsed_ms / max(count, 1))


def _progress(enabled: bool, total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="tracking", disable=not enabled, leave=False)
