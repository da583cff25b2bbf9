"""KITTI calibration files: the colour camera's model and the camera-from-LiDAR transform.

The KITTI tracking benchmark ships one file per sequence (``training/calib/0000.txt``),
one matrix per line, the name then its values row-major, space separated::

    P0: ... (12 values)       projection matrices of cameras 0-3 (3x4, rectified)
    P1: ...
    P2: ...                   the left colour camera (image_02)
    P3: ...
    R_rect ... (9 values)     rectifying rotation of camera 0 (3x3)
    Tr_velo_cam ... (12)      camera 0 from Velodyne (3x4)
    Tr_imu_velo ... (12)      Velodyne from IMU (3x4, unused here)

(the object benchmark writes ``R0_rect:`` and ``Tr_velo_to_cam:``; both spellings are
read). A Velodyne point X projects into image_02 as ``P2 @ R_rect @ Tr_velo_cam @ X``
(homogeneous, the KITTI devkit's formula). P2 = K [I | t]: image_02's optical frame is
the rectified camera-0 frame shifted by t, so

    camera_from_velodyne = [I | t] @ R_rect @ Tr_velo_cam        (4x4)

and projecting with K alone gives the same pixels. KITTI's 3-D labels (``location``) are
in rectified camera-0 coordinates: add t to compare them with image_02-frame positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg2track_ros.datasets.errors import DatasetError, FormatError
from seg2track_ros.engine.geometry3d import CameraModelError, PinholeCamera

KITTI_IMAGE_SIZE = (1242, 375)  # width, height of most KITTI tracking sequences

_NAMES = {
    "P2": ("P2",),
    "R_rect": ("R_rect", "R0_rect"),
    "Tr_velo_cam": ("Tr_velo_cam", "Tr_velo_to_cam"),
}
_SIZES = {"P2": 12, "R_rect": 9, "Tr_velo_cam": 12}


@dataclass(frozen=True)
class KittiCalibration:
    """P2 (3x4), R_rect (3x3) and Tr_velo_cam (3x4) of one sequence."""

    p2: np.ndarray
    r_rect: np.ndarray
    tr_velo_cam: np.ndarray

    def camera(self, width: int, height: int) -> PinholeCamera:
        """image_02's pinhole model for an image of ``width`` x ``height``."""
        return PinholeCamera.from_projection(self.p2, width, height)[0]

    @property
    def rect_to_camera2(self) -> np.ndarray:
        """t (3,): image_02's optical frame = rectified camera-0 frame + t."""
        return PinholeCamera.from_projection(self.p2, 1, 1)[1]

    @property
    def camera_from_velodyne(self) -> np.ndarray:
        """4x4: Velodyne points into image_02's optical frame."""
        shift = np.eye(4)
        shift[:3, 3] = self.rect_to_camera2
        rect = np.eye(4)
        rect[:3, :3] = self.r_rect
        velo = np.eye(4)
        velo[:3, :] = self.tr_velo_cam
        return shift @ rect @ velo


def read_kitti_calibration(path: str | Path) -> KittiCalibration:
    """The calibration in ``path``; FormatError names the line, DatasetError what is missing."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise DatasetError(f"cannot read the KITTI calibration {path}: {error.strerror}") from None
    found: dict[str, np.ndarray] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = raw.replace(":", " ").split()
        if not fields:
            continue
        key = next((k for k, names in _NAMES.items() if fields[0] in names), None)
        if key is None:
            continue
        try:
            values = np.array([float(v) for v in fields[1:]], dtype=np.float64)
        except ValueError:
            raise FormatError(path, number, f"{fields[0]} must be numbers") from None
        if values.size != _SIZES[key] or not np.isfinite(values).all():
            raise FormatError(
                path, number, f"{fields[0]} must be {_SIZES[key]} finite numbers, got {values.size}"
            )
        found[key] = values
    missing = [k for k in _SIZES if k not in found]
    if missing:
        raise DatasetError(
            f"{path}: no {', '.join(missing)} line; is this a KITTI tracking calib file"
            " (training/calib/NNNN.txt)?"
        )
    calib = KittiCalibration(
        found["P2"].reshape(3, 4), found["R_rect"].reshape(3, 3), found["Tr_velo_cam"].reshape(3, 4)
    )
    try:
        calib.camera(*KITTI_IMAGE_SIZE)
    except CameraModelError as error:
        raise DatasetError(f"{path}: P2 is not a camera: {error}") from None
    return calib
