"""Tracking results to KITTI MOTS / MOTS20 files: the one writer behind `seg2track run`,
`seg2track replay` and the results_writer node, so all three write identical files.

Which tracks count as results: by default CONFIRMED, OCCLUDED and LOST tracks with a
non-empty mask. TENTATIVE tracks are left out: they are the ones the existence filter
does not yet believe (typically false-positive detections), which is what the state is
for. ``states`` changes that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from seg2track_ros.datasets import MotsWriter, WriteSummary, kitti_mots_writer, mots20_writer
from seg2track_ros.engine.types import Track, TrackState

RESULT_FORMATS = {"kitti_mots": kitti_mots_writer, "mots20": mots20_writer}
DEFAULT_STATES = (TrackState.CONFIRMED, TrackState.OCCLUDED, TrackState.LOST)


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
    ) -> None:
        if fmt not in RESULT_FORMATS:
            raise ValueError(f"results format must be one of {', '.join(RESULT_FORMATS)}")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._writer: MotsWriter = RESULT_FORMATS[fmt](path)
        self._states = frozenset(TrackState(s) for s in states)

    def add(self, frame: int, rows: Iterable[ResultRow]) -> None:
        kept = [
            (row.track_id, row.class_id, row.mask)
            for row in rows
            if TrackState(row.state) in self._states
        ]
        self._writer.write_frame(frame, kept)

    def add_tracks(self, frame: int, tracks: Iterable[Track]) -> None:
        self.add(frame, (ResultRow(t.track_id, t.class_id, t.state, t.mask) for t in tracks))

    def close(self) -> WriteSummary:
        return self._writer.close()

    def __enter__(self) -> ResultsRecorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def parse_states(text: str) -> tuple[TrackState, ...]:
    """'confirmed,occluded' -> states; raises ValueError naming a wrong one."""
    states = []
    for name in (part.strip() for part in text.split(",") if part.strip()):
        try:
            states.append(TrackState[name.upper()])
        except KeyError:
            choices = ", ".join(s.name.lower() for s in TrackState)
            raise ValueError(f"unknown track state '{name}' (choose from {choices})") from None
    return tuple(states)
