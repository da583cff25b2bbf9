"""Tracking a sequence without ROS: image folder + detections file -> results file.

The engine runs directly (no DDS); with the same inputs and parameters it writes the
same results file as `seg2track replay --lockstep` through tracker_node.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg2track_ros.classmap import ClassMap, DetectionClassMapper
from seg2track_ros.datasets import DetectionSequence, WriteSummary
from seg2track_ros.engine.config import EngineConfig
from seg2track_ros.engine.registry import DEFAULT_SEGMENTER
from seg2track_ros.engine.types import TrackState
from seg2track_ros.errors import UserFacingError
from seg2track_ros.frames import FrameSource
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
    """The folder's images in natural order (1.png, 2.png, 10.png; 000001.png, ...), the
    order in which ffmpeg and cameras number frames."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PipelineError(f"image folder {directory} does not exist")
    images = sorted(
        (p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: natural_key(p.name),
    )
    if not images:
        raise PipelineError(f"no {'/'.join(IMAGE_SUFFIXES)} images in {directory}")
    return images


def natural_key(name: str) -> tuple:
    """Sort key comparing runs of digits as numbers: 'f2.png' < 'f10.png'. Ties (01 vs 1)
    fall back to the plain name, so the order is total and stable."""
    parts = re.split(r"(\d+)", name)
    return (
        tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in parts if part),
        name,
    )


def check_image_sizes(
    images: Sequence[Path], mask_size: tuple[int, int] | None = None, source: str = ""
) -> tuple[int, int]:
    """(height, width) of every image, which must be the same (one sequence, one camera)
    and, when the detections carry masks, the masks' size. Reads only the files' headers,
    so a wrong folder is refused before anything is tracked or written."""
    from PIL import Image, UnidentifiedImageError

    first: tuple[Path, tuple[int, int]] | None = None
    for path in images:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except (OSError, UnidentifiedImageError) as error:
            raise PipelineError(f"cannot read image {path}: {error}") from None
        if first is None:
            first = (path, (height, width))
            if mask_size is not None and (height, width) != tuple(mask_size):
                mask_height, mask_width = mask_size
                raise PipelineError(
                    f"{path} is {width}x{height} pixels but the masks in {source} are"
                    f" {mask_width}x{mask_height}: these detections belong to other images"
                )
        elif (height, width) != first[1]:
            first_path, (first_height, first_width) = first
            raise PipelineError(
                f"{path} is {width}x{height} pixels, but {first_path} is"
                f" {first_width}x{first_height}: every image of a sequence must have the"
                " same size (one camera); split the folder"
            )
    if first is None:
        raise PipelineError("no images")
    return first[1]


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
    images: Sequence[Path] | FrameSource | None = None,
    segmenter: str = DEFAULT_SEGMENTER,
    fmt: str = "kitti_mots",
    states: Sequence[TrackState] = DEFAULT_STATES,
    frames: int | None = None,
    progress: bool = False,
    class_map: ClassMap | None = None,
    input_class_map: ClassMap | None = None,
    lift3d=None,
) -> RunSummary:
    """Track every frame in order and write the results file.

    `images` are image paths or any ``FrameSource`` (an image folder, a video, a bag's
    images). Without them (detection-masks only) frames are blank images of the size
    the detections state, and the sequence ends at the last frame with detections unless
    `frames` says otherwise. ``class_map`` maps track classes to
    the benchmark's when writing; ``input_class_map`` renames detection classes before
    tracking, as tracker_node's ``class_map`` parameter does. ``lift3d`` (a
    lift3d_run.Lift3DRecorder) also lifts every tracked frame to 3-D and writes it.
    """
    import itertools
    import time

    from seg2track_ros.engine.tracker import Tracker
    from seg2track_ros.frames import ImageFolder

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
        source = itertools.repeat(blank)
    else:
        if not isinstance(images, FrameSource):
            images = ImageFolder(list(images))
        count = len(images) if frames is None else min(frames, len(images))
        if isinstance(images, ImageFolder):
            check_image_sizes(images.images[:count], detections.image_size, "the detections file")
        source = iter(images)
    mapper = None if input_class_map is None else DetectionClassMapper(input_class_map)
    tracker = Tracker(config.tracker, build_segmenter(config, segmenter))
    bar = _progress(progress, count)
    started = time.perf_counter()
    tracked = 0
    with ResultsRecorder(results, fmt, states, class_map) as recorder:
        # A video may decode fewer frames than its container states: stop there.
        for frame, image in zip(range(count), source, strict=False):
            frame_detections = detections.detections_at(frame)
            if mapper is not None:
                frame_detections = mapper(frame_detections)
            result = tracker.step(image, frame_detections)
            recorder.add_tracks(frame, result.tracks)
            if lift3d is not None:
                lift3d.add(frame, result)
            tracked += 1
            bar.update(1)
        summary = recorder.close()
    bar.close()
    elapsed_ms = (time.perf_counter() - started) * 1000
    return RunSummary(tracked, summary, elapsed_ms / max(tracked, 1))


def _progress(enabled: bool, total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="tracking", disable=not enabled, leave=False)
