"""KITTI MOTS ground truth and results (``instances_txt/<sequence>.txt``).

Lines ``frame object_id class_id img_height img_width rle``, frames from 0, classes
1 car, 2 pedestrian, 10 ignore region (object id 10000). The line format, the checks and
the writer's object-id policy are in ``mots_format``; this module fixes the dialect.
"""

from __future__ import annotations

from pathlib import Path

from seg2track_ros.datasets.mots_format import (
    KITTI_MOTS,
    FramesLike,
    MotsWriter,
    WriteSummary,
    read_mots,
    write_mots,
)
from seg2track_ros.datasets.records import MaskObject


def read_kitti_mots(path: str | Path) -> dict[int, list[MaskObject]]:
    """Objects per 0-based frame (frames without objects absent); raises FormatError."""
    return read_mots(path, KITTI_MOTS)


def write_kitti_mots(
    path: str | Path, frames: FramesLike, *, keep_track_ids: bool = False
) -> WriteSummary:
    """Write tracks per 0-based frame as a KITTI MOTS results file (cars, pedestrians).

    ``frames``: ``{frame: tracks}`` or ``(frame, tracks)`` pairs; tracks are engine
    ``Track`` objects or ``(track_id, class, mask)`` tuples. Track ids are renumbered per
    class and sequence unless ``keep_track_ids`` (see ``mots_format``).
    """
    return write_mots(path, frames, KITTI_MOTS, keep_track_ids=keep_track_ids)


def kitti_mots_writer(path: str | Path, *, keep_track_ids: bool = False) -> MotsWriter:
    """A writer that takes one frame at a time (for a tracker running over a sequence)."""
    return MotsWriter(path, KITTI_MOTS, keep_track_ids=keep_track_ids)
