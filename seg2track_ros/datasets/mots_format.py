"""The mask line format that KITTI MOTS and MOTS20 share, read and written once.

One object per line, space separated::

    frame object_id class_id img_height img_width rle

``object_id`` is ``class_id * 1000 + instance``; ignore regions are class 10 with object
id 10000; ``rle`` is a compressed COCO run-length string. The two benchmarks differ only
in where frames start (KITTI MOTS 0, MOTS20 1) and in their classes (KITTI MOTS: 1 car,
2 pedestrian; MOTS20: 2 pedestrian), which a ``MotsDialect`` states.

Writing results (``MotsWriter``):

- Object ids. A tracker's ids grow without bound over a sequence, but the format holds
  999 instances per class. By default the writer therefore renumbers each sequence:
  per class, instances 1, 2, 3, ... in order of first written appearance (by frame, then
  by position in that frame's list), so the same input always gives the same file.
  ``WriteSummary.object_ids`` maps each (class, track id) to the object id written. A
  class with more than 999 tracks in one file raises WriteError. ``keep_track_ids=True``
  writes the track id itself as the instance (to compare with live tracker output) and
  raises WriteError for a track id outside 0..999 instead of wrapping it.
- Overlap. The formats forbid two objects on one pixel. The engine's tracks never
  overlap, but other inputs may: a pixel claimed twice goes to the object listed first
  in that frame, and ``WriteSummary.overlap_pixels`` counts the pixels taken away.
- Empty masks (nothing to evaluate; the format cannot hold them usefully) are skipped
  and counted, as are objects of classes the format lacks (per class, in
  ``WriteSummary.skipped_classes``). The writer writes every object it is given; which
  track states to include (say, confirmed and occluded only) is the caller's choice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TextIO

import numpy as np

from seg2track_ros.datasets._lines import data_lines, expect_fields, parse_int, parse_rle
from seg2track_ros.datasets.errors import DatasetFileError, FormatError, WriteError
from seg2track_ros.datasets.records import (
    CAR,
    IGNORE_CLASS,
    IGNORE_OBJECT_ID,
    PEDESTRIAN,
    MaskObject,
    class_name,
    encode_mask,
)
from seg2track_ros.engine.types import Track

LAYOUT = "frame object_id class_id img_height img_width rle"
MAX_INSTANCE = 999

# A track as the writers take it: an engine Track, or (track_id, class, mask (H, W)),
# the class as the engine names it ("car") or as a file number (1).
TrackLike = Track | tuple[int, str | int, np.ndarray]
# Frames as the writers take them: {frame: tracks}, or (frame, tracks) pairs in order
# (a generator keeps one frame's masks in memory at a time).
FramesLike = Mapping[int, Iterable[TrackLike]] | Iterable[tuple[int, Iterable[TrackLike]]]


@dataclass(frozen=True)
class MotsDialect:
    """What differs between the benchmarks that share the line format."""

    name: str
    first_frame: int  # the file's number for the engine's frame 0
    class_numbers: Mapping[str, int]  # classes a results file may hold, by engine name

    @property
    def readable_classes(self) -> frozenset[int]:
        return frozenset(self.class_numbers.values()) | {IGNORE_CLASS}


KITTI_MOTS = MotsDialect("KITTI MOTS", 0, {"car": CAR, "pedestrian": PEDESTRIAN})
MOTS20 = MotsDialect("MOTS20", 1, {"pedestrian": PEDESTRIAN})


def read_mots(
    path: str | Path,
    dialect: MotsDialect,
    *,
    image_size: tuple[int, int] | None = None,
    frame_count: int | None = None,
) -> dict[int, list[MaskObject]]:
    """Objects per 0-based frame, frames ascending, objects in file order.

    Frames without a line are absent. Every line is checked (field count, numbers,
    class, object id, one image size per file, RLE covering the image, no object twice
    in a frame); the first bad line raises FormatError. ``image_size`` (height, width)
    and ``frame_count`` (in the file's own numbering, as ``seqinfo.ini`` gives it) add
    checks when known.
    """
    path = Path(path)
    frames: dict[int, list[MaskObject]] = {}
    seen: dict[tuple[int, int], int] = {}
    size_line: tuple[int, int, int] | None = None
    if image_size is not None:
        size_line = (image_size[0], image_size[1], 0)
    classes = sorted(dialect.readable_classes)
    for line, fields in data_lines(path):
        expect_fields(path, line, fields, 6, LAYOUT)
        file_frame = parse_int(path, line, "frame", fields[0], minimum=dialect.first_frame)
        if frame_count is not None and file_frame >= frame_count + dialect.first_frame:
            last = frame_count - 1 + dialect.first_frame
            raise FormatError(
                path, line, f"frame {file_frame} is past the sequence's last frame {last}"
            )
        object_id = parse_int(path, line, "object_id", fields[1], minimum=0)
        class_id = parse_int(path, line, "class_id", fields[2])
        if class_id not in dialect.readable_classes:
            raise FormatError(
                path, line, f"class_id {class_id} is not a {dialect.name} class {classes}"
            )
        if class_id == IGNORE_CLASS and object_id != IGNORE_OBJECT_ID:
            raise FormatError(
                path,
                line,
                f"ignore regions (class 10) have object_id {IGNORE_OBJECT_ID}, found {object_id}",
            )
        if class_id != IGNORE_CLASS and object_id // 1000 != class_id:
            raise FormatError(
                path,
                line,
                f"object_id {object_id} is not of class {class_id}: object ids are"
                " class_id * 1000 + instance",
            )
        height = parse_int(path, line, "img_height", fields[3], minimum=1)
        width = parse_int(path, line, "img_width", fields[4], minimum=1)
        if size_line is None:
            size_line = (height, width, line)
        elif (height, width) != size_line[:2]:
            known = "seqinfo.ini" if size_line[2] == 0 else f"line {size_line[2]}"
            raise FormatError(
                path,
                line,
                f"image size {height}x{width} differs from {size_line[0]}x{size_line[1]}"
                f" ({known}); one file holds one sequence",
            )
        counts = parse_rle(path, line, fields[5], height, width)
        key = (file_frame, object_id)
        if key in seen:
            raise FormatError(
                path,
                line,
                f"object_id {object_id} appears twice in frame {file_frame} (also on line"
                f" {seen[key]})",
            )
        seen[key] = line
        frame = file_frame - dialect.first_frame
        obj = MaskObject(frame, object_id, class_id, height, width, counts)
        frames.setdefault(frame, []).append(obj)
    return dict(sorted(frames.items()))


@dataclass
class WriteSummary:
    """What a results writer wrote and what it left out."""

    path: Path
    lines: int = 0
    frames: int = 0  # frames given, including those that ended up without a line
    skipped_classes: dict[str, int] = field(default_factory=dict)  # class -> objects
    skipped_empty: int = 0  # objects whose mask was empty (or entirely overlapped)
    overlap_pixels: int = 0  # pixels claimed by a second object, given to the first
    object_ids: dict[tuple[str, int], int] = field(default_factory=dict)
    # Set by results.ResultsRecorder: class -> distinct tracks its class map left out.
    unmapped_tracks: dict[str, int] = field(default_factory=dict)

    @property
    def skipped_class_objects(self) -> int:
        return sum(self.skipped_classes.values())


class MotsWriter:
    """Writes results one frame at a time; use as a context manager or call ``close``.

    Frames are 0-based engine indices and must strictly increase. See the module
    docstring for object ids, overlaps and what is skipped.
    """

    def __init__(
        self, path: str | Path, dialect: MotsDialect, *, keep_track_ids: bool = False
    ) -> None:
        self.dialect = dialect
        self.keep_track_ids = keep_track_ids
        self.summary = WriteSummary(Path(path))
        self._next_instance: dict[str, int] = {}
        self._last_frame: int | None = None
        self._size: tuple[int, int] | None = None
        try:
            self._file: TextIO = self.summary.path.open("w", encoding="ascii", newline="\n")
        except OSError as exc:
            raise DatasetFileError(
                f"cannot write {self.summary.path}: {exc.strerror or exc}"
            ) from exc

    def __enter__(self) -> MotsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> WriteSummary:
        if not self._file.closed:
            self._file.close()
        return self.summary

    def write_frame(self, frame: int, tracks: Iterable[TrackLike]) -> None:
        """Write one frame's objects (frame: the engine's 0-based index)."""
        if self._file.closed:
            raise WriteError(f"{self.summary.path} is already closed")
        if frame < 0:
            raise WriteError(f"frame indices are 0-based, got {frame}")
        if self._last_frame is not None and frame <= self._last_frame:
            raise WriteError(
                f"frame {frame} written after frame {self._last_frame}; write frames once"
                " each, in increasing order"
            )
        self._last_frame = frame
        self.summary.frames += 1
        claimed: np.ndarray | None = None
        lines = []
        for track_id, name, mask in (_unpack(track) for track in tracks):
            class_number = self.dialect.class_numbers.get(name)
            if class_number is None:
                skipped = self.summary.skipped_classes
                skipped[name] = skipped.get(name, 0) + 1
                continue
            mask = self._checked_mask(mask, track_id, frame)
            if claimed is None:
                claimed = np.zeros_like(mask)
            overlap = mask & claimed
            if overlap.any():
                self.summary.overlap_pixels += int(overlap.sum())
                mask = mask & ~claimed
            if not mask.any():
                self.summary.skipped_empty += 1
                continue
            claimed |= mask
            object_id = self._object_id(name, class_number, track_id)
            height, width = mask.shape
            file_frame = frame + self.dialect.first_frame
            lines.append(
                f"{file_frame} {object_id} {class_number} {height} {width} {encode_mask(mask)}\n"
            )
        self._file.writelines(lines)
        self.summary.lines += len(lines)

    def _checked_mask(self, mask: np.ndarray, track_id: int, frame: int) -> np.ndarray:
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise WriteError(
                f"track {track_id} on frame {frame}: mask shape {mask.shape} is not 2D"
            )
        if mask.dtype != bool and not np.issubdtype(mask.dtype, np.integer):
            # Probabilities or logits passed by mistake would all turn into foreground.
            raise WriteError(
                f"track {track_id} on frame {frame}: mask dtype {mask.dtype} is neither bool"
                " nor integer; threshold it first"
            )
        if self._size is None:
            self._size = mask.shape
        elif mask.shape != self._size:
            raise WriteError(
                f"track {track_id} on frame {frame}: mask is {mask.shape[0]}x{mask.shape[1]},"
                f" earlier masks in {self.summary.path} are {self._size[0]}x{self._size[1]};"
                " one file holds one sequence"
            )
        return mask.astype(bool, copy=False)

    def _object_id(self, name: str, class_number: int, track_id: int) -> int:
        key = (name, track_id)
        object_id = self.summary.object_ids.get(key)
        if object_id is not None:
            return object_id
        if self.keep_track_ids:
            if not 0 <= track_id <= MAX_INSTANCE:
                raise WriteError(
                    f"track id {track_id} ({name}) does not fit {self.dialect.name}'s"
                    f" object ids (class * 1000 + instance, instance 0..{MAX_INSTANCE});"
                    " write with keep_track_ids=False to renumber the tracks per sequence"
                )
            instance = track_id
        else:
            instance = self._next_instance.get(name, 1)
            if instance > MAX_INSTANCE:
                raise WriteError(
                    f"more than {MAX_INSTANCE} {name} tracks in {self.summary.path}:"
                    f" {self.dialect.name} object ids hold {MAX_INSTANCE} instances per"
                    " class; split the sequence into shorter files"
                )
            self._next_instance[name] = instance + 1
        object_id = class_number * 1000 + instance
        self.summary.object_ids[key] = object_id
        return object_id


def write_mots(
    path: str | Path, frames: FramesLike, dialect: MotsDialect, *, keep_track_ids: bool = False
) -> WriteSummary:
    """Write a whole results file with a MotsWriter; returns its summary."""
    with MotsWriter(path, dialect, keep_track_ids=keep_track_ids) as writer:
        for frame, tracks in _frame_items(frames):
            writer.write_frame(frame, tracks)
    return writer.summary


def _frame_items(frames: FramesLike) -> Iterator[tuple[int, Iterable[TrackLike]]]:
    if isinstance(frames, Mapping):
        yield from sorted(frames.items(), key=lambda item: item[0])
    else:
        yield from frames


def _unpack(track: TrackLike) -> tuple[int, str, np.ndarray]:
    if isinstance(track, Track):
        return track.track_id, track.class_id, track.mask
    track_id, name, mask = track
    if isinstance(name, int | np.integer):
        name = class_name(int(name))
    return int(track_id), str(name), mask
