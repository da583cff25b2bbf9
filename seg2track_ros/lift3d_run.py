"""3-D tracks without ROS: KITTI Velodyne scans + calibration lifted per tracked frame
(`seg2track run --calib --velodyne --results-3d`), the same engine steps tracker_node's
lift3d stage takes (geometry3d.lift_from_points, motion3d.MotionFilters).

Stamps: frame k is at k * ``period_s`` seconds (KITTI tracking is recorded at 10 Hz and
ships no per-frame timestamps in its tracking set).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seg2track_ros.datasets.errors import DatasetError
from seg2track_ros.datasets.kitti_calib import KittiCalibration
from seg2track_ros.datasets.tracks3d import Track3DRow, format_track3d, read_velodyne_scan
from seg2track_ros.engine.geometry3d import LiftConfig, lift_from_points
from seg2track_ros.engine.motion3d import MotionConfig, MotionFilters
from seg2track_ros.engine.types import StepResult
from seg2track_ros.errors import make_parent_folder

KITTI_PERIOD_S = 0.1


def velodyne_scans(folder: Path) -> dict[int, Path]:
    """Frame index -> scan file of a KITTI Velodyne sequence folder (``000123.bin``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"--velodyne {folder} is not a folder of KITTI .bin scans")
    scans = {}
    for path in folder.glob("*.bin"):
        if path.stem.isdigit():
            scans[int(path.stem)] = path
    if not scans:
        raise DatasetError(f"--velodyne {folder} holds no NNNNNN.bin scans")
    return scans


@dataclass
class Lift3DRecorder:
    """Writes a 3-D track file (datasets/tracks3d.py) line by line as frames are tracked."""

    path: Path
    calibration: KittiCalibration
    scans: dict[int, Path]
    lift: LiftConfig = field(default_factory=LiftConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    period_s: float = KITTI_PERIOD_S

    def __post_init__(self) -> None:
        self.lift.validate()
        self.filters = MotionFilters(self.motion)
        self.lines = 0
        self.with_3d = 0
        self.frames_without_scan = 0
        make_parent_folder(Path(self.path), "3-D results")
        self._handle = Path(self.path).open("w")  # noqa: SIM115 (closed by close())
        self._handle.write(
            "# frame track_id class left top right bottom x y z vx vy vz size_x size_y"
            " size_z points\n"
        )

    def add(self, frame: int, result: StepResult) -> None:
        tracks = [t for t in result.tracks if t.bbox is not None]
        height, width = result.labels.shape
        scan = self.scans.get(frame)
        stamp = frame * self.period_s
        active = [t.track_id for t in result.tracks]
        states = {}
        measurements = {}
        if scan is None:
            self.frames_without_scan += 1
            self.filters.update(stamp, {}, active)
        else:
            lifted = lift_from_points(
                result.labels,
                [t.label for t in tracks],
                read_velodyne_scan(scan),
                self.calibration.camera_from_velodyne,
                self.calibration.camera(width, height),
                self.lift,
                [t.class_id for t in tracks],
            )
            measurements = {t.track_id: m for t, m in zip(tracks, lifted, strict=True) if m.valid}
            states = self.filters.update(
                stamp, {tid: m.centre for tid, m in measurements.items()}, active
            )
        nan3 = np.full(3, np.nan)
        for track in tracks:
            state = states.get(track.track_id)
            measured = measurements.get(track.track_id)
            row = Track3DRow(
                frame,
                track.track_id,
                track.class_id,
                tuple(float(v) for v in track.bbox),
                nan3 if state is None else state.position,
                nan3 if state is None else state.velocity,
                nan3 if measured is None else measured.size,
                0 if measured is None else measured.valid_points,
            )
            self._handle.write(format_track3d(row) + "\n")
            self.lines += 1
            self.with_3d += state is not None

    def close(self) -> None:
        self._handle.close()
