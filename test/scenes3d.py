"""Synthetic 3-D scenes for the lifting tests: axis-aligned boxes in the camera optical
frame, ray-cast into a depth image (with the label image of their masks) and into a
LiDAR-like point cloud. Independent of the code under test: it casts rays against boxes
(slab method) and never back-projects depth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seg2track_ros.engine.geometry3d import PinholeCamera

CAMERA = PinholeCamera(fx=500.0, fy=500.0, cx=320.0, cy=240.0, width=640, height=480)
BACKGROUND_RANGE = 60.0  # a wall behind everything, metres along z


@dataclass(frozen=True)
class Box:
    """An upright box: ``size`` (across, height, along) in its own axes, turned by
    ``yaw`` about the camera's y axis (its along-axis is camera z turned towards x)."""

    centre: tuple[float, float, float]
    size: tuple[float, float, float]
    yaw: float = 0.0

    @property
    def rotation(self) -> np.ndarray:
        """Camera-from-box rotation: columns are the box's across, height, along axes."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])

    @property
    def low(self) -> np.ndarray:
        return np.asarray(self.centre) - np.asarray(self.size) / 2

    @property
    def high(self) -> np.ndarray:
        return np.asarray(self.centre) + np.asarray(self.size) / 2

    @property
    def front_face_centre(self) -> np.ndarray:
        """The centre of the face towards the camera: what a camera sees of a box ahead."""
        c = np.asarray(self.centre, dtype=np.float64)
        return np.array([c[0], c[1], c[2] - self.size[2] / 2])


def ray_box(origin: np.ndarray, dirs: np.ndarray, box: Box) -> np.ndarray:
    """Ray parameter of the first hit of each ray (N, 3) with the box, inf for a miss
    (slab method in the box's own axes)."""
    rotation = box.rotation
    origin = (np.asarray(origin, dtype=np.float64) - np.asarray(box.centre)) @ rotation
    dirs = np.asarray(dirs, dtype=np.float64) @ rotation
    half = np.asarray(box.size) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-half - origin) / dirs
        t2 = (half - origin) / dirs
    t_near = np.nanmax(np.minimum(t1, t2), axis=1)
    t_far = np.nanmin(np.maximum(t1, t2), axis=1)
    hit = (t_near <= t_far) & (t_far > 0)
    return np.where(hit, np.maximum(t_near, 0), np.inf)


def render_depth(boxes: list[Box], camera: PinholeCamera = CAMERA):
    """(depth in metres float64 (H, W), labels uint16 (H, W): box k is label k + 1)."""
    v, u = np.mgrid[0 : camera.height, 0 : camera.width]
    dirs = np.stack(
        [
            (u.ravel() + 0.5 - camera.cx) / camera.fx,
            (v.ravel() + 0.5 - camera.cy) / camera.fy,
            np.ones(u.size),
        ],
        axis=1,
    )
    best = np.full(u.size, BACKGROUND_RANGE)
    labels = np.zeros(u.size, np.uint16)
    for k, box in enumerate(boxes):
        t = ray_box(np.zeros(3), dirs, box)  # z-component 1: t is the depth
        closer = t < best
        best[closer] = t[closer]
        labels[closer] = k + 1
    shape = (camera.height, camera.width)
    return best.reshape(shape), labels.reshape(shape)


def render_lidar(boxes: list[Box], camera_from_sensor: np.ndarray, rng: np.random.Generator):
    """Points (N, 3) in the sensor frame: a 64-beam scanner (x forward, z up) at 0.1 deg
    azimuth steps over +-40 deg, hitting the boxes or the wall (no ground)."""
    azimuth = np.deg2rad(np.arange(-40, 40, 0.1))
    elevation = np.deg2rad(np.linspace(-15, 5, 64))
    az, el = np.meshgrid(azimuth, elevation)
    sensor_dirs = np.stack(
        [np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1
    ).reshape(-1, 3)
    rotation, origin = camera_from_sensor[:3, :3], camera_from_sensor[:3, 3]
    dirs = sensor_dirs @ rotation.T
    with np.errstate(divide="ignore"):
        best = np.where(dirs[:, 2] > 0, (BACKGROUND_RANGE - origin[2]) / dirs[:, 2], np.inf)
    for box in boxes:
        best = np.minimum(best, ray_box(origin, dirs, box))
    keep = np.isfinite(best)
    ranges = best[keep] + rng.normal(0, 0.01, keep.sum())  # 1 cm range noise
    return sensor_dirs[keep] * ranges[:, None]


def kitti_like_camera_from_sensor() -> np.ndarray:
    """Camera optical frame from a LiDAR 0.3 m above and 0.27 m behind the camera, axes
    as KITTI's Velodyne (x forward, y left, z up)."""
    transform = np.eye(4)
    transform[:3, :3] = [[0, -1, 0], [0, 0, -1], [1, 0, 0]]
    transform[:3, 3] = [0.0, -0.3, -0.27]
    return transform
