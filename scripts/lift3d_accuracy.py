"""The synthetic 3-D accuracy figures quoted in the README ("3-D tracks"): the scenes and
helpers of test/test_geometry3d.py (same seeds), printed as numbers.

    source env.sh && python scripts/lift3d_accuracy.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))

import test_amodal3d as A
import test_geometry3d as T
from scenes3d import kitti_like_camera_from_sensor, render_depth, render_lidar


def _report(source: str, boxes, measurements) -> None:
    for box, m in zip(boxes, measurements, strict=True):
        face, centre = box.front_face_centre, np.asarray(box.centre)
        print(
            f"{source:6s} box at {box.centre} size {box.size}: error / range"
            f" {np.linalg.norm(m.centre - face) / np.linalg.norm(face):.2%} (visible face),"
            f" {np.linalg.norm(m.centre - centre) / np.linalg.norm(centre):.2%} (box centre),"
            f" {m.valid_points} points"
        )


def main() -> None:
    rng = np.random.default_rng(1)
    depth, labels = render_depth(T.SCENE)
    labels = T.bleed_labels(labels, 2)
    image = T.noisy_depth_mm(depth, rng)
    _report(
        "depth",
        T.SCENE,
        T.lift_from_depth(labels, [1, 2, 3], image, T.CAMERA, T.LiftConfig(erosion=3)),
    )
    transform = kitti_like_camera_from_sensor()
    points = render_lidar(T.SCENE, transform, np.random.default_rng(2))
    config = T.LiftConfig(erosion=3, min_valid_points=10)
    _report(
        "points",
        T.SCENE,
        T.lift_from_points(labels, [1, 2, 3], points, transform, T.CAMERA, config),
    )

    _amodal(transform)

    rng = np.random.default_rng(4)
    stamps = np.cumsum(np.r_[100.0, 0.1 + rng.uniform(-0.02, 0.02, 24)])
    stamps = np.delete(stamps, [8, 15])
    velocity = np.array([1.5, 0.0, -4.0])
    state = T._moving_box_run(stamps, velocity, (-3.0, 0.5, 20.0), T._measure_depth)
    print(
        f"depth  velocity after {len(stamps)} frames: {state.velocity.round(3)} vs {velocity}:"
        f" error {T.relative_error(state.velocity, velocity):.2%}"
    )

    def measure(box, rng):
        _, box_labels = render_depth([box])
        cloud = render_lidar([box], transform, rng)
        lifted = T.lift_from_points(box_labels, [1], cloud, transform, T.CAMERA, T.LiftConfig())
        return lifted[0].centre

    rng = np.random.default_rng(5)
    stamps = np.cumsum(np.r_[50.0, 0.1 + rng.uniform(-0.02, 0.02, 24)])
    velocity = np.array([-1.0, 0.0, -5.0])
    state = T._moving_box_run(stamps, velocity, (2.0, 0.5, 22.0), measure)
    print(
        f"points velocity after {len(stamps)} frames: {state.velocity.round(3)} vs {velocity}:"
        f" error {T.relative_error(state.velocity, velocity):.2%}"
    )


def _amodal(transform: np.ndarray) -> None:
    """Whole boxes (test_amodal3d's car- and pedestrian-sized scenes, same seeds): the
    fitted box's centre against the box centre, beside the visible surface's median."""
    for index, scene in enumerate(A.SCENES):
        boxes = [box for _, box in scene]
        classes = [name for name, _ in scene]
        track_labels = list(range(1, len(scene) + 1))
        depth, labels = render_depth(boxes)
        labels = T.bleed_labels(labels, 2)
        image = T.noisy_depth_mm(depth, np.random.default_rng(4))
        config = T.LiftConfig(erosion=3, object_sizes=A.SIZES)
        whole = T.lift_from_depth(labels, track_labels, image, T.CAMERA, config, classes)
        visible = T.lift_from_depth(labels, track_labels, image, T.CAMERA, config)
        points = render_lidar(boxes, transform, np.random.default_rng(5))
        lidar_config = T.LiftConfig(erosion=3, min_valid_points=10, object_sizes=A.SIZES)
        lidar = T.lift_from_points(
            labels, track_labels, points, transform, T.CAMERA, lidar_config, classes
        )
        for (name, box), w, v, p in zip(scene, whole, visible, lidar, strict=True):
            centre = np.asarray(box.centre)
            print(
                f"whole  scene {index} {name:10s} at {box.centre} yaw"
                f" {np.degrees(box.yaw):4.0f}: error / range, box centre: depth (16UC1)"
                f" {T.relative_error(w.centre, centre):.2%}, points"
                f" {T.relative_error(p.centre, centre):.2%}; visible surface's median"
                f" {T.relative_error(v.centre, centre):.2%}; yaw"
                f" {np.degrees(w.yaw):4.0f} (depth) {np.degrees(p.yaw):4.0f} (points)"
            )


if __name__ == "__main__":
    main()
