"""Simulated detections: KITTI MOTS ground truth turned into noisy TrackR-CNN detections.

Tracking can be tested and tuned without a detector by feeding it ground truth spoilt in
known ways. ``simulate_detections`` takes ground truth per frame (``read_kitti_mots``)
and returns TrackR-CNN detections per frame (``write_trackrcnn`` writes them as
``frame x0 y0 x1 y1 score class_id img_height img_width rle``, no embedding).

The noise model (``NoiseConfig``, defaults in brackets), applied frame by frame from 0
to the last ground-truth frame, in file order:

1. Ignore regions (class 10) never produce a detection, and neither do empty masks.
2. Misses: each object on each frame is dropped with probability ``miss_rate`` [0.1],
   independently of everything else.
3. Mask noise: each kept mask is eroded (negative radius) or dilated (positive) by a
   radius drawn uniformly from the integers in [-``mask_radius``, ``mask_radius``] [2],
   with an elliptical structuring element of diameter 2|radius| + 1 (``cv2.erode`` /
   ``cv2.dilate``). The image border does not erode a mask (the object goes on outside
   the frame). When erosion would remove every pixel (thin or tiny objects), the mask is
   kept as it was, so step 2 alone decides misses.
4. Box: the tight box of the noisy mask, then each edge moved by Gaussian noise with a
   standard deviation of ``box_jitter`` [0.05] times the box's width (x0, x1) or height
   (y0, y1). The box is clipped to the image and kept at least one pixel wide and high.
5. Score: drawn from Beta(a, b) with (a, b) = ``true_positive_score_beta`` [(8.5, 1.5),
   mean 0.85].
6. False positives: on every frame a Poisson(``false_positives_per_frame`` [0.3]) number
   of detections of nothing. Each copies the size and class (car or pedestrian) of a
   ground-truth object drawn uniformly from the whole sequence (so sizes suit the
   camera), lies at a uniformly random position inside the image, has as mask the filled
   ellipse inscribed in that box, gets a jittered box as in step 4 and a score from
   Beta(``false_positive_score_beta``) [(2, 3), mean 0.4]. A sequence without car or
   pedestrian objects uses a 12% x 20% (car) or 3% x 30% (pedestrian) of the image box.

Each frame lists its true positives in ground-truth order, then its false positives.
Boxes are rounded to 0.01 px and scores to 1e-4, as a detector's text output would be.
All randomness comes from one ``numpy.random.default_rng(seed)`` drawn in that fixed
order (per object: miss, radius, box shifts, score, even for an object then missed; per
frame: the false positives), so a seed and a configuration give the same detections and,
written, the same file bytes (for a given numpy version).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg2track_ros.datasets.errors import DatasetError
from seg2track_ros.datasets.kitti_mots import read_kitti_mots
from seg2track_ros.datasets.records import (
    CAR,
    PEDESTRIAN,
    MaskDetection,
    MaskObject,
    encode_mask,
)
from seg2track_ros.datasets.trackrcnn import write_trackrcnn
from seg2track_ros.engine.masks import mask_to_box

# Box size (fraction of image width, of image height) and class of false positives when
# the ground truth has no car or pedestrian to copy one from.
FALLBACK_FALSE_POSITIVE_SIZES: tuple[tuple[float, float, int], ...] = (
    (0.12, 0.20, CAR),
    (0.03, 0.30, PEDESTRIAN),
)


class SimulationError(DatasetError):
    """A noise setting or ground truth the simulation cannot use (the message says which)."""


@dataclass(frozen=True)
class NoiseConfig:
    """The detection noise model; the module docstring describes each step."""

    miss_rate: float = 0.1  # probability that an object is not detected on a frame
    box_jitter: float = 0.05  # std of each box edge's shift, as a fraction of the box size
    false_positives_per_frame: float = 0.3  # Poisson mean
    true_positive_score_beta: tuple[float, float] = (8.5, 1.5)  # mean 0.85
    false_positive_score_beta: tuple[float, float] = (2.0, 3.0)  # mean 0.4
    mask_radius: int = 2  # masks eroded or dilated by an integer radius in [-r, r]

    def __post_init__(self) -> None:
        if not 0.0 <= self.miss_rate <= 1.0:
            raise SimulationError(f"miss_rate must be in [0, 1], got {self.miss_rate}")
        if not self.box_jitter >= 0.0:
            raise SimulationError(f"box_jitter must be >= 0, got {self.box_jitter}")
        if not self.false_positives_per_frame >= 0.0:
            raise SimulationError(
                f"false_positives_per_frame must be >= 0, got {self.false_positives_per_frame}"
            )
        for name in ("true_positive_score_beta", "false_positive_score_beta"):
            shape = tuple(getattr(self, name))
            if len(shape) != 2 or not all(value > 0 for value in shape):
                raise SimulationError(f"{name} must be two positive numbers (a, b), got {shape}")
            object.__setattr__(self, name, (float(shape[0]), float(shape[1])))
        if int(self.mask_radius) != self.mask_radius or self.mask_radius < 0:
            raise SimulationError(
                f"mask_radius must be a non-negative integer, got {self.mask_radius}"
            )

    @classmethod
    def noiseless(cls) -> NoiseConfig:
        """No misses, jitter, false positives or mask changes: ground truth with scores."""
        return cls(miss_rate=0.0, box_jitter=0.0, false_positives_per_frame=0.0, mask_radius=0)


def simulate_detections(
    gt_frames: Mapping[int, Sequence[MaskObject]],
    config: NoiseConfig | None = None,
    seed: int = 0,
    *,
    frame_count: int | None = None,
) -> dict[int, list[MaskDetection]]:
    """Noisy detections per 0-based frame (frames without any absent), as documented above.

    ``gt_frames``: ground truth per 0-based frame, as ``read_kitti_mots`` returns it.
    ``frame_count``: frames to simulate (default: up to the last ground-truth frame), so
    that trailing frames without objects still get false positives.
    """
    config = NoiseConfig() if config is None else config
    objects = [obj for frame in gt_frames.values() for obj in frame]
    if not objects:
        raise SimulationError(
            "the ground truth has no objects, so the image size is unknown; give a"
            " non-empty ground-truth file"
        )
    height, width = objects[0].height, objects[0].width
    last_frame = max(frame for frame, objs in gt_frames.items() if objs)
    if frame_count is None:
        frame_count = last_frame + 1
    elif frame_count <= last_frame:
        raise SimulationError(
            f"frame_count {frame_count} leaves out ground truth up to frame {last_frame}"
        )
    templates = _false_positive_templates(objects, height, width)
    rng = np.random.default_rng(seed)
    detections: dict[int, list[MaskDetection]] = {}
    for frame in range(frame_count):
        found: list[MaskDetection] = []
        for obj in gt_frames.get(frame, ()):
            if obj.is_ignore:
                continue
            missed = rng.random() < config.miss_rate
            radius = int(rng.integers(-config.mask_radius, config.mask_radius + 1))
            shifts = rng.standard_normal(4)
            score = rng.beta(*config.true_positive_score_beta)
            if missed:
                continue
            mask = obj.mask()
            if mask_to_box(mask) is None:
                continue
            mask = _erode_or_dilate(mask, radius)
            found.append(_detection(frame, obj.class_id, mask, shifts, score, config))
        for _ in range(rng.poisson(config.false_positives_per_frame)):
            box_width, box_height, class_id = templates[rng.integers(len(templates))]
            x0 = rng.uniform(0.0, width - box_width)
            y0 = rng.uniform(0.0, height - box_height)
            shifts = rng.standard_normal(4)
            score = rng.beta(*config.false_positive_score_beta)
            mask = _ellipse_mask((height, width), x0, y0, box_width, box_height)
            found.append(_detection(frame, class_id, mask, shifts, score, config))
        if found:
            detections[frame] = found
    return detections


def simulate_file(
    gt_path: str | Path,
    out_path: str | Path,
    config: NoiseConfig | None = None,
    seed: int = 0,
    *,
    frame_count: int | None = None,
) -> int:
    """Read KITTI MOTS ground truth, simulate, write TrackR-CNN detections; returns lines."""
    detections = simulate_detections(
        read_kitti_mots(gt_path), config, seed, frame_count=frame_count
    )
    return write_trackrcnn(out_path, detections)


def _false_positive_templates(
    objects: Sequence[MaskObject], height: int, width: int
) -> list[tuple[float, float, int]]:
    """(box width, box height, class) of every car and pedestrian in the ground truth."""
    templates = []
    for obj in objects:
        if obj.class_id not in (CAR, PEDESTRIAN):
            continue
        box = obj.box()
        if box is not None:
            templates.append((box[2] - box[0], box[3] - box[1], obj.class_id))
    if not templates:
        templates = [(w * width, h * height, c) for w, h, c in FALLBACK_FALSE_POSITIVE_SIZES]
    return templates


def _erode_or_dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """The mask eroded (radius < 0) or dilated (radius > 0); unchanged if erosion empties it.

    Works on the mask's box plus a margin, not the whole image: the morphology only
    reaches |radius| pixels, and a KITTI frame is twenty times a typical car's box.
    """
    if radius == 0:
        return mask
    import cv2  # here, not at the top: OpenCV takes a quarter second to import

    height, width = mask.shape
    x0, y0, x1, y1 = (int(v) for v in mask_to_box(mask))
    margin = abs(radius) + 1
    top, bottom = max(y0 - margin, 0), min(y1 + margin, height)
    left, right = max(x0 - margin, 0), min(x1 + margin, width)
    size = 2 * abs(radius) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    crop = mask[top:bottom, left:right].astype(np.uint8)
    # cv2's default border counts as foreground when eroding and background when
    # dilating, so the image edge neither eats into a mask nor grows it.
    changed = (cv2.dilate if radius > 0 else cv2.erode)(crop, kernel)
    if not changed.any():
        return mask
    result = np.zeros_like(mask)
    result[top:bottom, left:right] = changed.astype(bool)
    return result


def _ellipse_mask(
    shape: tuple[int, int],
    x0: float,
    y0: float,
    box_width: float,
    box_height: float,
) -> np.ndarray:
    """The filled ellipse inscribed in a box, as an (H, W) bool mask."""
    import cv2  # here, not at the top: OpenCV takes a quarter second to import

    canvas = np.zeros(shape, dtype=np.uint8)
    center = (round(float(x0 + box_width / 2)), round(float(y0 + box_height / 2)))
    axes = (max(round(float(box_width / 2)), 1), max(round(float(box_height / 2)), 1))
    cv2.ellipse(canvas, center, axes, 0, 0, 360, 1, thickness=-1)
    return canvas.astype(bool)


def _detection(
    frame: int,
    class_id: int,
    mask: np.ndarray,
    shifts: np.ndarray,
    score: float,
    config: NoiseConfig,
) -> MaskDetection:
    height, width = mask.shape
    x0, y0, x1, y1 = mask_to_box(mask)
    box_width, box_height = x1 - x0, y1 - y0
    noise = shifts * config.box_jitter * np.array([box_width, box_height, box_width, box_height])
    x0, y0, x1, y1 = (float(v) for v in np.array([x0, y0, x1, y1]) + noise)
    # Clipped inside the image, then at least one pixel wide and high (the engine
    # rejects empty boxes); rounded as a detector's text output would be.
    x0 = min(max(x0, 0.0), width - 1.0)
    y0 = min(max(y0, 0.0), height - 1.0)
    x1 = min(max(x1, x0 + 1.0), float(width))
    y1 = min(max(y1, y0 + 1.0), float(height))
    box = (round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2))
    return MaskDetection(
        frame=frame,
        box=box,
        score=round(float(score), 4),
        class_id=class_id,
        height=height,
        width=width,
        counts=encode_mask(mask),
    )
