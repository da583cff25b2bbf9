"""Masks to 3-D: camera model, depth and point-cloud lifting, the KITTI calibration, and
the constant-velocity filters, on synthetic scenes with known boxes (test/scenes3d.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scenes3d import CAMERA, Box, kitti_like_camera_from_sensor, render_depth, render_lidar

from seg2track_ros.datasets.errors import DatasetError
from seg2track_ros.datasets.kitti_calib import read_kitti_calibration
from seg2track_ros.engine.geometry3d import (
    CameraModelError,
    DepthImageError,
    LiftConfig,
    PinholeCamera,
    PointCloudError,
    depth_to_metres,
    erode_labels,
    lift_from_depth,
    lift_from_points,
    transform_points,
)
from seg2track_ros.engine.motion3d import MotionConfig, MotionFilters

from conftest import TEST_DATA

CALIB = TEST_DATA / "kitti_calib"

# Three boxes: a car ahead-left, a pedestrian right, a far car; at 8-40 m.
SCENE = [
    Box(centre=(-3.0, 0.6, 14.0), size=(1.8, 1.5, 0.6)),
    Box(centre=(2.5, 0.3, 8.0), size=(0.6, 1.7, 0.4)),
    Box(centre=(1.0, 0.8, 40.0), size=(1.8, 1.5, 0.5)),
]


def bleed_labels(labels: np.ndarray, pixels: int) -> np.ndarray:
    """Masks grown by ``pixels`` into the background (a segmenter's soft edge)."""
    import cv2

    grown = cv2.dilate(labels, np.ones((2 * pixels + 1,) * 2, np.uint8))
    return np.where(labels == 0, grown, labels).astype(labels.dtype)


def noisy_depth_mm(depth_m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """16UC1 millimetres with 0.5 % range noise and 5 % dropouts (0 = no return)."""
    noisy = depth_m * (1 + rng.normal(0, 0.005, depth_m.shape))
    mm = np.round(noisy * 1000).astype(np.uint16)
    mm[rng.random(depth_m.shape) < 0.05] = 0
    return mm


def noisy_depth(depth_m: np.ndarray, encoding: str, rng: np.random.Generator) -> np.ndarray:
    """A depth image with 0.5 % range noise and 5 % dropouts: 16UC1 millimetres (0 = no
    return, noisy_depth_mm) or 32FC1 metres (NaN = no return)."""
    if encoding == "16UC1":
        return noisy_depth_mm(depth_m, rng)
    image = (depth_m * (1 + rng.normal(0, 0.005, depth_m.shape))).astype(np.float32)
    image[rng.random(depth_m.shape) < 0.05] = np.nan
    return image


def relative_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(estimate - truth) / np.linalg.norm(truth))


# --- camera model ------------------------------------------------------------------


def test_zero_focal_length_is_a_typed_error():
    with pytest.raises(CameraModelError, match="focal"):
        PinholeCamera.from_k([0, 0, 0, 0, 0, 0, 0, 0, 0], 640, 480)
    with pytest.raises(CameraModelError, match="finite"):
        PinholeCamera(np.nan, 500, 320, 240, 640, 480)
    with pytest.raises(CameraModelError, match="9 values"):
        PinholeCamera.from_k([500, 0, 320], 640, 480)


def test_camera_scales_with_image_size():
    half = CAMERA.scaled_to(320, 240)
    point = np.array([[1.0, -0.5, 10.0]])
    assert np.allclose(half.project(point)[0], CAMERA.project(point)[0] / 2)


def test_kitti_projection_by_hand():
    """simple.txt, worked by hand: Velodyne X = (10, 1, 0.5).
    Tr_velo_cam X = (-1, -0.5 - 0.08, 10 - 0.27) = (-1, -0.58, 9.73) (rectified cam 0,
    R_rect = I); P2 = K [I | t] with K = [[700, 0, 600], [0, 700, 180], [0, 0, 1]] and
    K t = (70, 0, 0), so t = (0.1, 0, 0) and image_02's frame has (-0.9, -0.58, 9.73);
    u = 700 * -0.9 / 9.73 + 600 = 535.2518, v = 700 * -0.58 / 9.73 + 180 = 138.2734
    (the devkit's P2 @ (x, 1) = (5208, 1345.4, 9.73) gives the same)."""
    calib = read_kitti_calibration(CALIB / "simple.txt")
    camera = calib.camera(1242, 375)
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (700, 700, 600, 180)
    assert np.allclose(calib.rect_to_camera2, [0.1, 0, 0])
    in_camera = transform_points(np.array([[10.0, 1.0, 0.5]]), calib.camera_from_velodyne)
    assert np.allclose(in_camera, [[-0.9, -0.58, 9.73]])
    uv, depth = camera.project(in_camera)
    assert np.allclose(uv, [[535.2518, 138.2734]], atol=1e-4)
    assert depth[0] == pytest.approx(9.73)


def test_kitti_projection_matches_the_devkit_formula():
    """Sequence 0000's real calibration (rotated R_rect, P2 with a z offset): K applied
    to camera_from_velodyne equals the devkit's P2 @ R_rect @ Tr_velo_cam."""
    calib = read_kitti_calibration(CALIB / "0000.txt")
    rng = np.random.default_rng(0)
    velo = np.column_stack(
        [rng.uniform(5, 60, 200), rng.uniform(-10, 10, 200), rng.uniform(-2, 1, 200)]
    )
    rect = np.eye(4)
    rect[:3, :3] = calib.r_rect
    tr = np.vstack([calib.tr_velo_cam, [0, 0, 0, 1]])
    devkit = (calib.p2 @ rect @ tr @ np.column_stack([velo, np.ones(len(velo))]).T).T
    devkit_uv = devkit[:, :2] / devkit[:, 2:3]
    ours, _ = calib.camera(1242, 375).project(transform_points(velo, calib.camera_from_velodyne))
    assert np.abs(ours - devkit_uv).max() < 1e-6


def test_kitti_calibration_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("P2: 1 2 3\nR_rect 1 0 0 0 1 0 0 0 1\nTr_velo_cam 0 0 0 0 0 0 0 0 0 0 0 0\n")
    with pytest.raises(DatasetError, match=r"bad\.txt:1: P2 must be 12"):
        read_kitti_calibration(bad)
    bad.write_text("P2: 0 0 0 0 0 0 0 0 0 0 1 0\nR_rect 1 0 0 0 1 0 0 0 1\n")
    with pytest.raises(DatasetError, match="no Tr_velo_cam"):
        read_kitti_calibration(bad)
    with pytest.raises(DatasetError, match="cannot read"):
        read_kitti_calibration(tmp_path / "missing.txt")


# --- depth lifting ----------------------------------------------------------------


def test_depth_conversion_invalid_values():
    config = LiftConfig(min_range=0.5, max_range=50.0)
    depth = np.array([[np.nan, np.inf, 0.0, -1.0, 0.2, 60.0, 10.0]], np.float32)
    metres = depth_to_metres(depth, config)
    assert np.isnan(metres[0, :6]).all() and metres[0, 6] == 10.0
    mm = np.array([[0, 1500, 65535]], np.uint16)
    assert np.allclose(depth_to_metres(mm, config), [[np.nan, 1.5, np.nan]], equal_nan=True)
    with pytest.raises(DepthImageError, match="uint16"):
        depth_to_metres(np.zeros((2, 2), np.int32), config)


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_depth_lifting_centroid_within_2_percent_of_range(encoding):
    """Boxes ray-cast into a noisy depth image (0.5 % noise, 5 % dropouts), masks bled 2
    px into the background: each centre lies within 2 % of its range of the box's
    visible face centre, and the visible size is that face's width and height."""
    rng = np.random.default_rng(1)
    depth, labels = render_depth(SCENE)
    labels = bleed_labels(labels, 2)
    image = noisy_depth(depth, encoding, rng)
    config = LiftConfig(erosion=3, min_valid_points=20)
    result = lift_from_depth(labels, [1, 2, 3], image, CAMERA, config)
    for box, measurement in zip(SCENE, result, strict=True):
        assert measurement.valid and measurement.valid_points > 100
        truth = box.front_face_centre
        error = np.linalg.norm(measurement.centre - truth)
        assert error < 0.02 * np.linalg.norm(truth), (box, measurement.centre)
        # the percentile span of a face lies within its true width/height and at least
        # 75 % of it (erosion takes a few pixels off each side)
        for axis in (0, 1):
            assert 0.75 * box.size[axis] < measurement.size[axis] < 1.05 * box.size[axis]


def test_erosion_keeps_background_out_of_the_extent():
    """Without erosion the bled edge pixels (background at 60 m) enter the z extent;
    eroding by the bleed width removes them."""
    depth, labels = render_depth(SCENE[:1])
    labels = bleed_labels(labels, 2)
    eroded = lift_from_depth(labels, [1], depth.astype(np.float32), CAMERA, LiftConfig(erosion=3))
    raw = lift_from_depth(labels, [1], depth.astype(np.float32), CAMERA, LiftConfig(erosion=0))
    assert eroded[0].size[2] < 0.1
    assert raw[0].size[2] > 10


def test_erode_labels_per_label():
    labels = np.zeros((12, 12), np.uint16)
    labels[2:8, 2:6] = 1
    labels[2:8, 6:10] = 2  # touching label 1: both lose the shared edge
    eroded = erode_labels(labels, 1)
    assert (eroded == 1).sum() == 4 * 2 and (eroded == 2).sum() == 4 * 2
    assert np.array_equal(erode_labels(labels, 0), labels)


def test_too_few_points_flags_the_track():
    depth, labels = render_depth(SCENE)
    image = depth.astype(np.float32)
    image[labels == 3] = np.nan  # the far car has no depth at all
    small = np.zeros_like(labels)
    small[100:103, 100:103] = 4  # a 3x3 mask: nothing left after erosion
    labels = np.where(small > 0, small, labels)
    result = lift_from_depth(labels, [1, 3, 4, 9], image, CAMERA, LiftConfig(erosion=1))
    assert [m.valid for m in result] == [True, False, False, False]
    assert [m.label for m in result] == [1, 3, 4, 9]
    assert result[1].valid_points == 0 and np.isnan(result[1].centre).all()
    assert result[2].valid_points == 1


def test_depth_of_another_size():
    depth, labels = render_depth(SCENE[:1])
    half = depth[::2, ::2].astype(np.float32)  # same aspect ratio: resampled
    full = lift_from_depth(labels, [1], depth.astype(np.float32), CAMERA, LiftConfig())[0]
    resampled = lift_from_depth(labels, [1], half, CAMERA, LiftConfig())[0]
    assert np.linalg.norm(full.centre - resampled.centre) < 0.05
    with pytest.raises(DepthImageError, match="register the depth"):
        lift_from_depth(labels, [1], np.zeros((100, 100), np.float32), CAMERA, LiftConfig())


def test_camera_calibrated_at_another_resolution_is_scaled():
    depth, labels = render_depth(SCENE[:1])
    double = PinholeCamera(1000, 1000, 640, 480, 1280, 960)  # CAMERA at twice the size
    a = lift_from_depth(labels, [1], depth.astype(np.float32), CAMERA, LiftConfig())[0]
    b = lift_from_depth(labels, [1], depth.astype(np.float32), double, LiftConfig())[0]
    assert np.allclose(a.centre, b.centre)


# --- point-cloud lifting ----------------------------------------------------------


def test_point_cloud_lifting_centroid_within_2_percent_of_range():
    """A 64-beam scan (1 cm noise) of the same boxes, from a LiDAR offset and rotated
    from the camera; masks bled 2 px: centres within 2 % of range of the visible face."""
    rng = np.random.default_rng(2)
    transform = kitti_like_camera_from_sensor()
    points = render_lidar(SCENE, transform, rng)
    _, labels = render_depth(SCENE)
    labels = bleed_labels(labels, 2)
    result = lift_from_points(
        labels, [1, 2, 3], points, transform, CAMERA, LiftConfig(erosion=3, min_valid_points=10)
    )
    for box, measurement in zip(SCENE, result, strict=True):
        assert measurement.valid, box
        truth = box.front_face_centre
        assert np.linalg.norm(measurement.centre - truth) < 0.02 * np.linalg.norm(truth), (
            box,
            measurement.centre,
        )


def test_point_cloud_bad_input():
    _, labels = render_depth(SCENE[:1])
    config = LiftConfig()
    with pytest.raises(PointCloudError, match=r"\(N, 3\)"):
        lift_from_points(labels, [1], np.zeros((5, 2)), np.eye(4), CAMERA, config)
    with pytest.raises(PointCloudError, match="4x4"):
        lift_from_points(labels, [1], np.zeros((5, 3)), np.eye(3), CAMERA, config)
    bad = np.eye(4)
    bad[0, 3] = np.nan
    with pytest.raises(PointCloudError, match="finite"):
        lift_from_points(labels, [1], np.zeros((5, 3)), bad, CAMERA, config)
    # non-finite points and points behind the camera are dropped, not fatal
    points = np.array([[np.nan, 0, 10], [0, 0, -5], [np.inf, 1, 1]])
    result = lift_from_points(labels, [1], points, np.eye(4), CAMERA, config)
    assert result[0].valid_points == 0 and not result[0].valid


# --- constant-velocity filter -----------------------------------------------------


def _moving_box_run(stamps, velocity, start, measure):
    filters = MotionFilters(MotionConfig(process_noise=0.5))
    rng = np.random.default_rng(3)
    state = None
    for stamp in stamps:
        centre = np.asarray(start) + np.asarray(velocity) * (stamp - stamps[0])
        box = Box(centre=tuple(centre), size=(1.8, 1.5, 0.6))
        state = filters.update(stamp, {7: measure(box, rng)}, active_ids=[7])[7]
    return state


def _measure_depth(box, rng):
    depth, labels = render_depth([box])
    return lift_from_depth(labels, [1], noisy_depth_mm(depth, rng), CAMERA, LiftConfig())[0].centre


def test_velocity_from_depth_within_5_percent_on_straight_motion():
    """A box at 12-20 m moving at (1.5, 0, -4) m/s, imaged at about 10 Hz with jittered
    stamps and two dropped frames: the filtered velocity is within 5 % of the truth."""
    rng = np.random.default_rng(4)
    stamps = np.cumsum(np.r_[100.0, 0.1 + rng.uniform(-0.02, 0.02, 24)])
    stamps = np.delete(stamps, [8, 15])  # dropped frames: dt from stamps, not counts
    velocity = np.array([1.5, 0.0, -4.0])
    state = _moving_box_run(stamps, velocity, (-3.0, 0.5, 20.0), _measure_depth)
    assert relative_error(state.velocity, velocity) < 0.05, state.velocity
    assert state.covariance.shape == (6, 6)
    assert np.all(np.linalg.eigvalsh(state.covariance) > 0)


def test_velocity_from_points_within_5_percent_on_straight_motion():
    transform = kitti_like_camera_from_sensor()

    def measure(box, rng):
        _, labels = render_depth([box])
        points = render_lidar([box], transform, rng)
        return lift_from_points(labels, [1], points, transform, CAMERA, LiftConfig())[0].centre

    rng = np.random.default_rng(5)
    stamps = np.cumsum(np.r_[50.0, 0.1 + rng.uniform(-0.02, 0.02, 24)])
    velocity = np.array([-1.0, 0.0, -5.0])
    state = _moving_box_run(stamps, velocity, (2.0, 0.5, 22.0), measure)
    assert relative_error(state.velocity, velocity) < 0.05, state.velocity


def test_filter_uses_stamps_and_forgets_ended_tracks():
    filters = MotionFilters(
        MotionConfig(process_noise=0.01, measurement_noise=0.0, measurement_noise_floor=0.001)
    )
    # exact positions at uneven stamps: 1 m/s along x
    for stamp in (0.0, 0.1, 0.5, 0.6, 1.6):
        states = filters.update(stamp, {1: [stamp, 0, 10]}, active_ids=[1, 2])
    assert states[1].velocity[0] == pytest.approx(1.0, rel=0.01)
    assert len(filters) == 1
    filters.update(2.0, {}, active_ids=[])  # track 1 ended
    assert len(filters) == 0
    # a track without a measurement keeps its filter; stamps going backwards restart it
    filters.update(3.0, {5: [0, 0, 10]}, active_ids=[5])
    filters.update(3.1, {}, active_ids=[5])
    assert len(filters) == 1
    restarted = filters.update(1.0, {5: [4, 0, 10]}, active_ids=[5])[5]
    assert np.allclose(restarted.position, [4, 0, 10]) and np.allclose(restarted.velocity, 0)


def test_motion_config_validation():
    from seg2track_ros.engine.types import InvalidInputError

    with pytest.raises(InvalidInputError, match="process_noise"):
        MotionFilters(MotionConfig(process_noise=-1))
    with pytest.raises(InvalidInputError, match="both be 0"):
        MotionFilters(MotionConfig(measurement_noise=0, measurement_noise_floor=0))
    with pytest.raises(InvalidInputError, match="min_range"):
        LiftConfig(min_range=5, max_range=1).validate()
