"""Engine ``Detections`` per frame from any detection file format.

``read_detections(path, fmt)`` parses and checks the whole file at once (so a bad line
fails before tracking starts) but keeps masks as RLE strings: a ``DetectionSequence``
builds one frame's ``Detections`` when asked, decoding that frame's masks only. A KITTI
sequence (233 frames of 375x1242) holds a few megabytes of RLE, whereas its decoded masks
would take gigabytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from seg2track_ros.datasets.errors import DatasetError
from seg2track_ros.datasets.kitti_boxes import read_kitti_boxes
from seg2track_ros.datasets.kitti_tracking import read_kitti_tracking
from seg2track_ros.datasets.mot_det import read_mot_det
from seg2track_ros.datasets.records import BoxDetection, MaskDetection, decode_masks
from seg2track_ros.datasets.trackrcnn import read_trackrcnn
from seg2track_ros.engine.types import Detections

_LOG = logging.getLogger(__name__)

DetectionFormat = Literal["trackrcnn", "boxes", "mot_det", "kitti_tracking"]
DETECTION_FORMATS: tuple[str, ...] = get_args(DetectionFormat)
# Old names, still accepted: each maps to the format it always meant. ``kitti`` was never
# KITTI's tracking label format (that is ``kitti_tracking``) but the plain ``boxes``.
DEPRECATED_FORMAT_NAMES = {"kitti": "boxes", "kitti_boxes": "boxes", "mot": "mot_det"}

# One example line per format (the README's table shows the same lines; a test reads
# each back).
FORMAT_EXAMPLES = {
    "trackrcnn": "0 296.2 160.8 455.1 218.9 0.998 1 375 1242 <compressed COCO RLE> [embedding]",
    "boxes": "0 296.2 160.8 455.1 218.9 0.998 1",
    "mot_det": "1,-1,1359.1,413.27,120.26,362.77,2.3092,-1,-1,-1",
    "kitti_tracking": "0 -1 Car 0 0 -10 296.2 160.8 455.1 218.9 -1 -1 -1 -1000 -1000 -1000 -10"
    " 0.998",
}


def canonical_format(name: str) -> tuple[str, str | None]:
    """(format name, deprecation note or None) for a format name or a deprecated alias.

    Raises DatasetError for an unknown name."""
    if name in DETECTION_FORMATS:
        return name, None
    if name in DEPRECATED_FORMAT_NAMES:
        new = DEPRECATED_FORMAT_NAMES[name]
        note = f"detection format name {name!r} is deprecated; it means {new!r}"
        if name.startswith("kitti"):
            note += (
                " (frame x0 y0 x1 y1 score class_id), not KITTI's tracking label format,"
                " which is 'kitti_tracking'"
            )
        return new, note
    raise DatasetError(
        f"unknown detection format {name!r}; expected one of {', '.join(DETECTION_FORMATS)}"
    )


class DetectionSequence(Mapping[int, Detections]):
    """A sequence's detections as ``{0-based frame: Detections}``, built on access.

    Keys are the frames with at least one detection (ascending); ``detections_at``
    also answers for the other frames, with empty ``Detections``. Each access builds the
    frame anew (and for TrackR-CNN decodes its masks into ``Detections.masks``, (N, H, W)
    bool); hold on to the result rather than asking twice.
    """

    def __init__(
        self,
        frames: Mapping[int, Sequence[MaskDetection] | Sequence[BoxDetection]],
        image_size: tuple[int, int] | None = None,
    ) -> None:
        self._frames = dict(sorted(frames.items()))
        self.image_size = image_size  # (height, width) when the format states it

    @property
    def frames(self) -> tuple[int, ...]:
        return tuple(self._frames)

    @property
    def has_masks(self) -> bool:
        return self.image_size is not None

    def __getitem__(self, frame: int) -> Detections:
        records = self._frames[frame]
        masks = None
        if self.has_masks:
            masks = decode_masks(records)  # type: ignore[arg-type]
        return Detections(
            boxes=np.array([record.box for record in records], dtype=np.float32),
            scores=np.array([record.score for record in records], dtype=np.float32),
            class_ids=tuple(record.class_name for record in records),
            masks=masks,
        )

    def count_at(self, frame: int) -> int:
        """How many detections the frame has (without building them)."""
        return len(self._frames.get(frame, ()))

    def detections_at(self, frame: int) -> Detections:
        """The frame's detections, empty (with (0, H, W) masks where masks exist) if none."""
        if frame in self._frames:
            return self[frame]
        if self.image_size is None:
            return Detections.empty()
        height, width = self.image_size
        return Detections(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            (),
            masks=np.zeros((0, height, width), dtype=bool),
        )

    def __iter__(self) -> Iterator[int]:
        return iter(self._frames)

    def __len__(self) -> int:
        return len(self._frames)

    def __contains__(self, frame: object) -> bool:
        return frame in self._frames


def read_detections(
    path: str | Path, fmt: DetectionFormat, *, class_id: str = "pedestrian"
) -> DetectionSequence:
    """Detections per 0-based frame from a ``trackrcnn``, ``boxes``, ``mot_det`` or
    ``kitti_tracking`` file (a deprecated name in ``DEPRECATED_FORMAT_NAMES`` warns with
    a DeprecationWarning and reads the format it stands for).

    Class numbers become the engine's names (1 "car", 2 "pedestrian", others their
    number as a string); KITTI tracking class names are lower-cased; MOT det.txt has no
    class, so every detection gets ``class_id`` (ignored by the other formats). Boxes
    are xyxy float32; TrackR-CNN masks are decoded per frame on access. Raises
    FormatError at the first bad line.
    """
    size = None
    fmt, note = canonical_format(fmt)
    if note is not None:
        import warnings

        warnings.warn(note, DeprecationWarning, stacklevel=2)
    if fmt == "trackrcnn":
        frames: Mapping[int, Sequence[MaskDetection] | Sequence[BoxDetection]]
        frames = read_trackrcnn(path)
        first = next((records[0] for records in frames.values()), None)
        size = None if first is None else (first.height, first.width)
    elif fmt == "boxes":
        frames = read_kitti_boxes(path)
    elif fmt == "kitti_tracking":
        frames = read_kitti_tracking(path)
    else:
        frames = read_mot_det(path, class_id=class_id)
    _warn_about(path, frames)
    return DetectionSequence(frames, size)


def _warn_about(
    path: str | Path, frames: Mapping[int, Sequence[MaskDetection] | Sequence[BoxDetection]]
) -> None:
    """Inputs that parse but are probably not what the user meant: an empty file, and
    scores outside [0, 1] (every threshold compares a score in [0, 1], so logits or
    percentages would pass every threshold or none)."""
    if not frames:
        _LOG.warning(f"{path} holds no detections: nothing will be tracked")
        return
    scores = np.array([record.score for records in frames.values() for record in records])
    outside = (scores < 0.0) | (scores > 1.0)
    if outside.any():
        _LOG.warning(
            f"{path}: {int(outside.sum())} of {scores.size} detection scores are outside"
            f" [0, 1] (from {scores.min():g} to {scores.max():g}); thresholds expect"
            " probabilities in [0, 1] (logits or percentages?)"
        )
