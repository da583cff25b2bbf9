"""Tracking results to KITTI MOTS / MOTS20 files: the one writer behind `seg2track run`,
`seg2track replay` and the results_writer node, so all three write identical files.

Which tracks count as results: by default CONFIRMED, OCCLUDED and LOST tracks with a
non-empty mask. TENTATIVE tracks are left out: they are the ones the existence filter
does not yet believe (typically false-positive detections), which is what the state is
for. ``states`` changes that.

Classes: each track's class goes through a ``ClassMap`` (default: COCO names and ids to
the benchmark's, see ``seg2track_ros.classmap``); tracks of unmapped classes are left
out, warned about once per class and counted in ``WriteSummary.unmapped_tracks``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from seg2track_ros.classmap import ClassMap, UnmappedTracks
from seg2track_ros.datasets import MotsWriter, WriteSummary, kitti_mots_writer, mots20_writer
from seg2track_ros.engine.types import Track, TrackState
from seg2track_ros.errors import UserFacingError, make_parent_folder

RESULT_FORMATS = {"kitti_mots": kitti_mots_writer, "mots20": mots20_writer}
DEFAULT_STATES = (TrackState.CONFIRMED, TrackState.OCCLUDED, TrackState.LOST)


class ResultsError(UserFacingError, ValueError):
    """Results that cannot be written where or how asked (the message says why)."""


class ResultRow(NamedTuple):
    track_id: int
    class_id: str
    state: TrackState
    mask: np.ndarray  # (H, W) bool


class ResultsRecorder:
    """Writes one frame of tracks at a time; frames must increase. Use `with` or close()."""

    def __init__(
        self,
        path: Path,
        fmt: str = "kitti_mots",
        states: Sequence[TrackState] = DEFAULT_STATES,
        class_map: ClassMap | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        if fmt not in RESULT_FORMATS:
            raise ResultsError(f"results format must be one of {', '.join(RESULT_FORMATS)}")
        prepare_results_path(path)
        self._writer: MotsWriter = RESULT_FORMATS[fmt](path)
        self._states = frozenset(TrackState(s) for s in states)
        self._class_map = class_map if class_map is not None else ClassMap()
        self._unmapped = UnmappedTracks(warn)

    def add(self, frame: int, rows: Iterable[ResultRow]) -> None:
        classes = self._writer.dialect.class_numbers
        kept = []
        for row in rows:
            if TrackState(row.state) not in self._states:
                continue
            name = self._class_map.benchmark_class(row.class_id)
            if name is None:
                self._unmapped.add(row.class_id, row.track_id, "has no class map entry")
            elif name not in classes:
                self._unmapped.add(
                    row.class_id,
                    row.track_id,
                    f"maps to {name}, which {self._writer.dialect.name} does not have",
                )
            else:
                kept.append((row.track_id, name, row.mask))
        self._writer.write_frame(frame, kept)

    def add_tracks(self, frame: int, tracks: Iterable[Track]) -> None:
        self.add(frame, (ResultRow(t.track_id, t.class_id, t.state, t.mask) for t in tracks))

    def close(self) -> WriteSummary:
        summary = self._writer.close()
        summary.unmapped_tracks = self._unmapped.counts()
        return summary

    def __enter__(self) -> ResultsRecorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def prepare_results_path(path: Path) -> None:
    """Create the results file's folder; ResultsError when it cannot be (a file in the
    way, no permission). Commands call it before a long run, not only at the end."""
    path = Path(path)
    if path.is_dir():
        raise ResultsError(f"results path {path} is a folder; give a file name")
    make_parent_folder(path, "results")


def parse_states(text: str) -> tuple[TrackState, ...]:
    """'confirmed,occluded' -> states; raises ResultsError (a ValueError) naming a wrong
    one."""
    states = []
    for name in (part.strip() for part in text.split(",") if part.strip()):
        try:
            states.append(TrackState[name.upper()])
        except KeyError:
            choices = ", ".join(s.name.lower() for s in TrackState)
            raise ResultsError(f"unknown track state '{name}' (choose from {choices})") from None
    if not states:
        raise ResultsError(f"track states {text!r} name no state")
    return tuple(states)
