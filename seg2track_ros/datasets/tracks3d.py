"""3-D track files: what `seg2track run --results-3d` writes and `evaluate-3d` reads, and
the KITTI Velodyne scans and 3-D labels it is scored against.

3-D track file: one line per track and frame, space separated, frames from 0::

    frame track_id class left top right bottom x y z vx vy vz size_x size_y size_z points

``left top right bottom``: the track mask's box in pixels (pixel edges), which
evaluate-3d matches to the labels' boxes; ``x y z`` (m), ``vx vy vz`` (m/s) and
``size_*`` (m) are in the colour camera's optical frame (KITTI: image_02's, x right,
y down, z forward), ``nan`` when the track had too few valid 3-D points on that frame;
``points``: the count of valid points. Lines starting with ``#`` are comments.

KITTI tracking labels (``label_02/NNNN.txt``): ``frame track_id type truncated occluded
alpha left top right bottom height width length x y z rotation_y``; ``x y z`` is the
bottom centre of the object's 3-D box in rectified camera-0 coordinates (metres), so its
centre is ``(x, y - height / 2, z)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg2track_ros.datasets._lines import data_lines, expect_fields, parse_float, parse_int
from seg2track_ros.datasets.errors import DatasetError

TRACKS3D_LAYOUT = (
    "frame track_id class left top right bottom x y z vx vy vz size_x size_y size_z points"
)
KITTI_LABEL_LAYOUT = (
    "frame track_id type truncated occluded alpha left top right bottom height width length"
    " x y z rotation_y"
)


@dataclass(frozen=True)
class Track3DRow:
    frame: int
    track_id: int
    class_id: str
    box: tuple[float, float, float, float]
    position: np.ndarray  # (3,), NaN without a 3-D estimate
    velocity: np.ndarray
    size: np.ndarray
    points: int

    @property
    def has_3d(self) -> bool:
        return bool(np.isfinite(self.position).all())


@dataclass(frozen=True)
class LabelObject:
    frame: int
    track_id: int
    class_id: str  # lower case: car, pedestrian, van, cyclist, ...
    box: tuple[float, float, float, float]
    centre: np.ndarray  # (3,) the 3-D box centre, rectified camera-0 frame


def format_track3d(row: Track3DRow) -> str:
    numbers = [*row.box, *row.position, *row.velocity, *row.size]
    text = " ".join("nan" if not np.isfinite(v) else f"{v:.4f}" for v in numbers)
    return f"{row.frame} {row.track_id} {row.class_id} {text} {row.points}"


def write_tracks3d(path: Path, rows) -> int:
    path = Path(path)
    lines = [f"# {TRACKS3D_LAYOUT}"] + [format_track3d(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def read_tracks3d(path: Path) -> list[Track3DRow]:
    """Rows of a 3-D track file; FormatError names the first bad line."""
    path = Path(path)
    rows = []
    for line, fields in data_lines(path):
        if fields[0].startswith("#"):
            continue
        expect_fields(path, line, fields, 17, TRACKS3D_LAYOUT)
        frame = parse_int(path, line, "frame", fields[0], minimum=0)
        track_id = parse_int(path, line, "track_id", fields[1])
        box = tuple(parse_float(path, line, "box", t) for t in fields[3:7])
        values = [*box] + [_number_or_nan(path, line, t) for t in fields[7:16]]
        rows.append(
            Track3DRow(
                frame,
                track_id,
                fields[2].lower(),
                box,
                np.array(values[4:7]),
                np.array(values[7:10]),
                np.array(values[10:13]),
                parse_int(path, line, "points", fields[16], minimum=0),
            )
        )
    return rows


def _number_or_nan(path: Path, line: int, text: str) -> float:
    if text.lower() == "nan":
        return float("nan")
    return parse_float(path, line, "3-D value", text)


def read_kitti_labels(path: Path) -> list[LabelObject]:
    """The objects of a KITTI tracking label file (DontCare skipped), with their 3-D box
    centres; FormatError names the first bad line."""
    path = Path(path)
    objects = []
    for line, fields in data_lines(path):
        if len(fields) not in (17, 18):
            expect_fields(path, line, fields, 17, KITTI_LABEL_LAYOUT)
        if fields[2] == "DontCare":
            continue
        frame = parse_int(path, line, "frame", fields[0], minimum=0)
        track_id = parse_int(path, line, "track_id", fields[1])
        box = tuple(parse_float(path, line, "box", t) for t in fields[6:10])
        height = parse_float(path, line, "height", fields[10])
        x, y, z = (parse_float(path, line, n, t) for n, t in zip("xyz", fields[13:16], strict=True))
        objects.append(
            LabelObject(frame, track_id, fields[2].lower(), box, np.array([x, y - height / 2, z]))
        )
    return objects


def read_velodyne_scan(path: Path) -> np.ndarray:
    """(N, 3) x, y, z (float64) of a KITTI Velodyne scan (``velodyne/NNNN/NNNNNN.bin``:
    float32 x, y, z, reflectance per point)."""
    return read_velodyne_points(path)[:, :3].astype(np.float64)


def read_velodyne_points(path: Path) -> np.ndarray:
    """(N, 4) float32 x, y, z, reflectance of a KITTI Velodyne scan."""
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype="<f4")
    except OSError as error:
        raise DatasetError(f"cannot read the Velodyne scan {path}: {error.strerror}") from None
    if raw.size % 4:
        raise DatasetError(
            f"{path}: {raw.size * 4} bytes is not a whole number of KITTI points (16 bytes:"
            " x, y, z, reflectance as float32)"
        )
    return raw.reshape(-1, 4)
