"""Amodal 3-D boxes (engine/amodal3d.py): car- and pedestrian-sized boxes at several
positions and headings, ray-cast into a noisy depth image and a LiDAR scan (scenes3d,
which never uses the code under test). The visible surface's median misses the box
centre by up to a quarter of the range; the fitted box finds it within 2 %."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scenes3d import CAMERA, Box, kitti_like_camera_from_sensor, render_depth, render_lidar
from test_geometry3d import bleed_labels, noisy_depth, relative_error

from seg2track_ros.engine.amodal3d import (
    ObjectSize,
    ObjectSizeError,
    amodal_box,
    parse_object_sizes,
)
from seg2track_ros.engine.geometry3d import LiftConfig, lift_from_depth, lift_from_points
from seg2track_ros.params import Lift3DSettings

CAR = ObjectSize(length=3.9, width=1.6, height=1.5)
PEDESTRIAN = ObjectSize(length=0.8, width=0.7, height=1.8)
SIZES = {"car": CAR, "pedestrian": PEDESTRIAN}
DEG = math.pi / 180
# (class, box) in view of CAMERA (640x480, fx 500), none cut by the image border or
# hidden by another: two scenes, each box alone in its part of the image
SCENES = [
    [
        ("car", Box((-3.0, 0.6, 14.0), (1.6, 1.5, 3.9))),  # ahead-left, seen from behind
        ("car", Box((3.0, 0.6, 8.0), (1.6, 1.5, 3.9))),  # close, right: back and side seen
        ("pedestrian", Box((0.0, 0.3, 9.0), (0.7, 1.8, 0.8))),
    ],
    [
        ("car", Box((2.0, 0.7, 22.0), (1.6, 1.5, 3.9), yaw=30 * DEG)),
        ("car", Box((-2.5, 0.6, 35.0), (1.6, 1.5, 3.9), yaw=90 * DEG)),  # crossing
        ("car", Box((-12.0, 0.6, 45.0), (1.6, 1.5, 3.9), yaw=-60 * DEG)),
    ],
]


def _yaw_error(estimate: float, truth: float) -> float:
    """Angle between two headings of a box (the same turned half a turn)."""
    return abs(math.remainder(estimate - truth, math.pi))


def _check(measurements, scene, label: str) -> list[float]:
    errors = []
    for (name, box), m in zip(scene, measurements, strict=True):
        assert m.valid and m.amodal, (label, box)
        error = relative_error(m.centre, np.asarray(box.centre))
        assert error < 0.02, (label, box, m.centre, error)
        errors.append(error)
        prior = SIZES[name]
        assert np.allclose(m.size, [prior.width, prior.height, prior.length], atol=0.4), m.size
        if name == "car":  # a pedestrian's footprint is almost square: no heading
            assert _yaw_error(m.yaw, box.yaw) < 10 * DEG, (label, box, m.yaw / DEG)
    return errors


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
@pytest.mark.parametrize("scene", [0, 1])
def test_depth_boxes_are_completed_to_their_centre(encoding, scene):
    SCENE = SCENES[scene]
    rng = np.random.default_rng(4)
    boxes = [box for _, box in SCENE]
    depth, labels = render_depth(boxes)
    labels = bleed_labels(labels, 2)
    image = noisy_depth(depth, encoding, rng)
    config = LiftConfig(erosion=3, object_sizes=SIZES)
    track_labels = list(range(1, len(SCENE) + 1))
    classes = [name for name, _ in SCENE]
    amodal = lift_from_depth(labels, track_labels, image, CAMERA, config, classes)
    _check(amodal, SCENE, encoding)
    # the same points without sizes: the visible surface, off the centre
    visible = lift_from_depth(labels, track_labels, image, CAMERA, config)
    misses = [
        relative_error(m.centre, np.asarray(b.centre))
        for m, (_, b) in zip(visible, SCENE, strict=True)
    ]
    assert not any(m.amodal for m in visible)
    assert max(misses) > 0.05 and sum(e > 0.02 for e in misses) >= 2, misses


@pytest.mark.parametrize("scene", [0, 1])
def test_lidar_boxes_are_completed_to_their_centre(scene):
    SCENE = SCENES[scene]
    rng = np.random.default_rng(5)
    transform = kitti_like_camera_from_sensor()
    boxes = [box for _, box in SCENE]
    points = render_lidar(boxes, transform, rng)
    _, labels = render_depth(boxes)
    labels = bleed_labels(labels, 2)
    config = LiftConfig(erosion=3, min_valid_points=10, object_sizes=SIZES)
    result = lift_from_points(
        labels,
        list(range(1, len(SCENE) + 1)),
        points,
        transform,
        CAMERA,
        config,
        [name for name, _ in SCENE],
    )
    _check(result, SCENE, "lidar")


def test_a_class_without_a_size_keeps_its_visible_surface():
    boxes = [box for _, box in SCENES[0][:2]]
    depth, labels = render_depth(boxes)
    image = depth.astype(np.float32)
    config = LiftConfig(object_sizes=SIZES)
    plain = lift_from_depth(labels, [1, 2], image, CAMERA, LiftConfig())
    mixed = lift_from_depth(labels, [1, 2], image, CAMERA, config, ["truck", "car"])
    assert not mixed[0].amodal and mixed[1].amodal
    assert np.array_equal(mixed[0].centre, plain[0].centre) and mixed[0].yaw == 0.0
    with pytest.raises(ValueError, match="1 classes for 2"):
        lift_from_depth(labels, [1, 2], image, CAMERA, config, ["car"])


def test_a_box_bigger_than_its_class_is_not_shrunk():
    """A 6 m long 'car' (a van): the seen extent stays, the hidden side is completed."""
    van = Box((0.0, 0.5, 12.0), (2.0, 2.2, 6.0), yaw=45 * DEG)
    depth, labels = render_depth([van])
    box = amodal_box(_points(depth, labels == 1), CAR)
    assert box.size[2] > 5.5 and box.size[0] > 1.8
    assert relative_error(box.centre, np.asarray(van.centre)) < 0.03


def _points(depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    v, u = np.nonzero(mask)
    z = depth[v, u]
    rx, ry = CAMERA.rays(u.astype(np.float64), v.astype(np.float64))
    return np.stack([rx * z, ry * z, z], axis=1)


def test_object_sizes_parse_and_errors():
    assert parse_object_sizes("") == {}
    assert parse_object_sizes(" car=3.9x1.6x1.5 , person = 0.8X0.7X1.8") == {
        "car": CAR,
        "person": ObjectSize(0.8, 0.7, 1.8),
    }
    for bad, message in (
        ("car=3.9x1.6", "LENGTHxWIDTHxHEIGHT"),
        ("car", "LENGTHxWIDTHxHEIGHT"),
        ("car=axbxc", "not numbers"),
        ("car=3.9x0x1.5", "positive"),
        ("car=1x1x1,car=2x2x2", "twice"),
    ):
        with pytest.raises(ObjectSizeError, match=message):
            parse_object_sizes(bad)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        amodal_box(np.zeros((0, 3)), CAR)


def test_default_sizes_are_the_kitti_classes():
    sizes = Lift3DSettings().lift_config().object_sizes
    assert sorted(sizes) == ["car", "cyclist", "pedestrian"]
    assert sizes["car"] == CAR
