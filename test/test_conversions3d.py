"""3-D message conversions (depth images, point clouds, camera_info, transforms) and the
lift3d.* parameter validation, without a running node."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from seg2track_ros.engine.geometry3d import PointCloudError, transform_from_pose
from seg2track_ros.params import ParameterError, default_values, lift3d_from_values
from seg2track_ros.ros.conversions import RejectedInput
from seg2track_ros.ros.conversions3d import camera_from_info, depth_from_msg, points_from_cloud


def test_depth_from_msg_padded_rows_and_big_endian():
    depth = np.arange(12, dtype=np.float32).reshape(3, 4)
    padded = np.zeros((3, 24), np.uint8)  # step 24 > 4 * 4 bytes
    padded[:, :16] = depth.astype(">f4").view(np.uint8).reshape(3, 16)
    msg = Image(height=3, width=4, encoding="32FC1", step=24, is_bigendian=1, data=padded.tobytes())
    assert np.array_equal(depth_from_msg(msg), depth)
    mm = np.array([[0, 1500], [65535, 7]], np.uint16)
    msg = Image(height=2, width=2, encoding="16UC1", step=4, data=mm.tobytes())
    assert np.array_equal(depth_from_msg(msg), mm)


@pytest.mark.parametrize(
    "msg, match",
    [
        (Image(height=2, width=2, encoding="rgb8", step=6, data=bytes(12)), "not supported"),
        (Image(height=2, width=2, encoding="32FC1", step=8, data=bytes(9)), "does not hold"),
        (Image(height=0, width=2, encoding="32FC1", step=8, data=b""), "0 pixels|2x0"),
    ],
)
def test_depth_from_msg_rejects(msg, match):
    with pytest.raises(RejectedInput, match=match) as error:
        depth_from_msg(msg)
    assert error.value.reason == "depth_invalid"


def _cloud(points: np.ndarray, dtype: str, datatype: int, step: int, names=("x", "y", "z")):
    size = np.dtype(dtype).itemsize
    record = np.zeros((len(points), step), np.uint8)
    # fields in the order z, x, y at offsets 4, 4 + size, 4 + 2 size (an intensity first)
    for k, name in enumerate(names):
        column = points[:, "xyz".index(name) if name in "xyz" else 0].astype(dtype)
        record[:, 4 + k * size : 4 + (k + 1) * size] = column.view(np.uint8).reshape(-1, size)
    fields = [
        PointField(name=n, offset=4 + k * size, datatype=datatype, count=1)
        for k, n in enumerate(names)
    ]
    return PointCloud2(
        height=1,
        width=len(points),
        fields=fields,
        point_step=step,
        row_step=step * len(points),
        data=record.tobytes(),
    )


def test_points_from_cloud_any_layout():
    points = np.array([[1.0, 2.0, 3.0], [-4.5, 0.25, 10.0], [np.nan, 0, 1]])
    for dtype, datatype, step in (("<f4", PointField.FLOAT32, 20), ("<f8", PointField.FLOAT64, 32)):
        cloud = _cloud(points, dtype, datatype, step, names=("z", "x", "y"))
        assert np.allclose(points_from_cloud(cloud), points, equal_nan=True)


def test_points_from_cloud_rejects():
    points = np.zeros((4, 3))
    with pytest.raises(RejectedInput, match=r"without field\(s\) z"):
        points_from_cloud(_cloud(points, "<f4", PointField.FLOAT32, 16, names=("x", "y", "i")))
    short = _cloud(points, "<f4", PointField.FLOAT32, 16)
    short.data = short.data[:20]
    with pytest.raises(RejectedInput, match="shorter"):
        points_from_cloud(short)
    narrow = _cloud(points, "<f4", PointField.FLOAT32, 16)
    narrow.point_step = 8
    with pytest.raises(RejectedInput, match="point_step"):
        points_from_cloud(narrow)


def test_camera_from_info():
    info = CameraInfo(height=480, width=640)
    info.k = [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]
    camera = camera_from_info(info)
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (500, 510, 320, 240)
    info.k = [0.0] * 9
    with pytest.raises(RejectedInput, match="focal") as error:
        camera_from_info(info)
    assert error.value.reason == "camera_info_invalid"


def test_transform_from_pose():
    # 90 degrees about z: x -> y
    s = np.sqrt(0.5)
    transform = transform_from_pose(["1", "2", "3", "0", "0", str(s), str(s)])
    assert np.allclose(transform[:3, :3] @ [1, 0, 0], [0, 1, 0])
    assert np.allclose(transform[:3, 3], [1, 2, 3])
    for bad in (["1", "2"], ["a"] * 7, [0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, np.inf]):
        with pytest.raises(PointCloudError):
            transform_from_pose(bad)


def test_lift3d_parameters_are_validated():
    values = default_values()

    def lookup(overrides):
        return lambda name: overrides.get(name, values[name])

    settings = lift3d_from_values(lookup({"lift3d.static_transform": "0 0 -1 0 0 0 1"}))
    assert settings.static_transform == "0 0 -1 0 0 0 1" and not settings.enabled
    with pytest.raises(ParameterError, match=r"lift3d\.static_transform"):
        lift3d_from_values(lookup({"lift3d.static_transform": "0 0 1"}))
    with pytest.raises(ParameterError, match="min_range"):
        lift3d_from_values(lookup({"lift3d.min_range": 50.0, "lift3d.max_range": 10.0}))
