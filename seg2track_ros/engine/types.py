"""The engine's public data types: detections in, tracks out."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


class InvalidInputError(ValueError):
    """Input the engine cannot use (wrong shape, dtype or values); the message says which."""


class TrackState(enum.IntEnum):
    """Track states; the values equal seg2track_msgs/TrackedObject's STATE_* constants."""

    TENTATIVE = 0  # existence probability still below the confirmation threshold
    CONFIRMED = 1  # visible and believed real
    OCCLUDED = 2  # hidden by another object this frame (SAM2MOT cross-object rule)
    LOST = 3  # the segmenter does not find it this frame (output without a mask); removed
    # after max_weak_frames / max_lost_frames such frames


@dataclass(frozen=True)
class Detections:
    """One frame's detections: boxes (N, 4) xyxy in pixels, scores (N,), class ids (N).

    ``masks`` (N, H, W) bool is optional: instance-segmentation detectors can pass their
    own masks for the detection-masks segmenter.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: tuple[str, ...]
    masks: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        class_ids = tuple(str(c) for c in self.class_ids)
        if not (len(boxes) == len(scores) == len(class_ids)):
            raise InvalidInputError(
                f"detections disagree in length: {len(boxes)} boxes, {len(scores)} scores,"
                f" {len(class_ids)} class ids"
            )
        if not np.isfinite(boxes).all() or not np.isfinite(scores).all():
            raise InvalidInputError("detection boxes and scores must be finite")
        if (boxes[:, 2] <= boxes[:, 0]).any() or (boxes[:, 3] <= boxes[:, 1]).any():
            raise InvalidInputError("detection boxes must have x1 > x0 and y1 > y0")
        if self.masks is not None and len(self.masks) != len(boxes):
            raise InvalidInputError(f"{len(self.masks)} detection masks for {len(boxes)} boxes")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "class_ids", class_ids)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), ())

    def __len__(self) -> int:
        return len(self.scores)


@dataclass
class Track:
    """One track's output on one frame.

    Its mask is a view of the frame's label image (``StepResult.labels``): the pixels
    labelled ``label``. It is computed on first access, so consumers that work on the
    label image directly (the node's outputs, RLE) never build per-track masks.
    """

    track_id: int
    class_id: str
    state: TrackState
    bbox: tuple[float, float, float, float] | None  # tight xyxy box of the mask, pixel edges
    detection_score: float  # last associated detection
    mask_score: float  # SAM 2 predicted IoU, [0, 1]
    existence: float  # Bernoulli existence probability, [0, 1]
    age: int  # frames since the track started (0 on its first frame)
    frames_since_detection: int  # 0 when a detection was associated this frame
    label: int = 0  # this track's value in the label image
    labels: np.ndarray | None = field(default=None, repr=False, compare=False)

    @cached_property
    def mask(self) -> np.ndarray:
        """(H, W) bool at the input image's resolution; never overlaps other tracks."""
        if self.labels is None:
            raise ValueError(f"track {self.track_id} has no label image")
        return self.labels == self.label

    @classmethod
    def with_mask(cls, mask: np.ndarray, **fields) -> Track:
        """A track whose mask is ``mask`` (H, W) bool (its own one-label image)."""
        return cls(**fields, label=1, labels=np.asarray(mask, dtype=bool).astype(np.uint16))


@dataclass
class StepResult:
    """What Tracker.step returns: the frame's tracks (ascending id), timings in ms, and
    the label image (H, W) uint16: 0 = background, ``tracks[k].label`` = k + 1 elsewhere
    (frame-local labels, not track ids)."""

    frame_index: int
    tracks: list[Track]
    timing_ms: dict[str, float] = field(default_factory=dict)
    labels: np.ndarray | None = None
