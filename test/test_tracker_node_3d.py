"""tracker_node's 3-D output over DDS (lift3d.*): camera_info plus a depth image or a
point cloud in, tracks_3d / tracks_3d_state / markers out; and every bad 3-D input
(NaN/inf/zero depth, a depth image of another size, a zero focal length, a cloud without
x/y/z, a missing transform, stamps that never pair) counted in diagnostics while the 2-D
outputs keep coming and the node stays up."""

from __future__ import annotations

import time

import numpy as np
import pytest
from seg2track_msgs.msg import Track3DArray
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from vision_msgs.msg import Detection3DArray
from visualization_msgs.msg import Marker, MarkerArray

from node_harness import RELIABLE, NodeUnderTest, scene_boxes

HEIGHT, WIDTH = 72, 96  # node_harness.scene
FX = FY = 100.0
CX, CY = 48.0, 36.0
BOX_DEPTHS = (10.0, 15.0)  # metres, scene_boxes order
BACKGROUND = 40.0
BASE = {
    "input_reliability": "reliable",
    "mode": "lockstep",
    "diagnostics_period": 0.2,
    "segmenter": "detection-masks",  # each track's mask is its detection's filled box
    "lift3d.enabled": True,
    "lift3d.erosion": 2,
    "lift3d.min_valid_points": 5,
    # the visible surface (each box is a flat face in depth); the whole-box estimate of
    # classes with a size: test_classes_with_a_size_get_the_whole_box
    "lift3d.object_sizes": "",
}


def camera_info(header, fx: float = FX) -> CameraInfo:
    msg = CameraInfo(height=HEIGHT, width=WIDTH)
    msg.header = header
    msg.k = [fx, 0.0, CX, 0.0, FY, CY, 0.0, 0.0, 1.0]
    return msg


def depth_metres(frame: int) -> np.ndarray:
    depth = np.full((HEIGHT, WIDTH), BACKGROUND, np.float32)
    for (x0, y0, x1, y1), z in zip(scene_boxes(frame), BOX_DEPTHS, strict=True):
        depth[int(y0) : int(y1), int(x0) : int(x1)] = z
    return depth


def depth_msg(header, depth: np.ndarray, encoding: str = "32FC1") -> Image:
    if encoding == "16UC1":
        depth = np.nan_to_num(depth * 1000, nan=0, posinf=0).astype(np.uint16)
    msg = Image(
        height=depth.shape[0],
        width=depth.shape[1],
        encoding=encoding,
        step=depth.shape[1] * depth.dtype.itemsize,
        data=depth.tobytes(),
    )
    msg.header = header
    return msg


def cloud_msg(header, points: np.ndarray, names=("x", "y", "z"), frame_id="lidar") -> PointCloud2:
    points = np.asarray(points, np.float32)
    msg = PointCloud2(height=1, width=len(points), point_step=12, row_step=12 * len(points))
    msg.fields = [
        PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
        for i, n in enumerate(names)
    ]
    msg.data = points.tobytes()
    msg.header = header
    msg.header.frame_id = frame_id
    return msg


def box_points(frame: int) -> np.ndarray:
    """The two boxes' surfaces as points in the camera frame, one per pixel centre."""
    points = []
    for (x0, y0, x1, y1), z in zip(scene_boxes(frame), BOX_DEPTHS, strict=True):
        v, u = np.mgrid[int(y0) : int(y1), int(x0) : int(x1)]
        points.append(
            np.stack(
                [
                    (u.ravel() + 0.5 - CX) / FX * z,
                    (v.ravel() + 0.5 - CY) / FY * z,
                    np.full(u.size, z),
                ],
                axis=1,
            )
        )
    return np.concatenate(points)


def expected_centre(frame: int, k: int) -> np.ndarray:
    """Median of the eroded (2 px) box's pixel rays at the box's depth."""
    x0, y0, x1, y1 = scene_boxes(frame)[k]
    z = BOX_DEPTHS[k]
    u = np.arange(int(x0) + 2, int(x1) - 2) + 0.5
    v = np.arange(int(y0) + 2, int(y1) - 2) + 0.5
    return np.array([(np.median(u) - CX) / FX * z, (np.median(v) - CY) / FY * z, z])


class Node3D:
    def __init__(self, node: NodeUnderTest, camera: str = "") -> None:
        """The 3-D inputs and outputs of `node`'s camera `camera` ("" unnamed)."""
        self.node = node
        client = node.client
        base = f"/{node.name}/{camera}/" if camera else f"/{node.name}/"
        self.camera_info = client.create_publisher(CameraInfo, f"{base}camera_info", RELIABLE)
        self.depth = client.create_publisher(Image, f"{base}depth", RELIABLE)
        self.points = client.create_publisher(PointCloud2, f"{base}points", RELIABLE)
        for topic, kind in (
            ("tracks_3d", Detection3DArray),
            ("tracks_3d_state", Track3DArray),
            ("markers", MarkerArray),
        ):
            client.create_subscription(
                kind, f"{base}{topic}", node.received[topic].append, RELIABLE
            )

    def wait_inputs(self, source: str) -> None:
        """Wait until the node has received a camera_info and a `source` ("depth" or
        "points") message. A publisher that sees the node's subscription can still send
        before the node's side of DDS discovery has matched it, and that message is lost;
        so send both, stamped long before any frame (they never pair with one), until the
        node logs them."""
        from node_harness import image_msg, scene

        publisher = self.depth if source == "depth" else self.points
        header = image_msg(scene(0), 1).header
        priming = (
            depth_msg(header, depth_metres(0))
            if source == "depth"
            else cloud_msg(header, box_points(0))
        )
        assert self.node.spin_until(
            lambda: (
                publisher.get_subscription_count() > 0
                and self.camera_info.get_subscription_count() > 0
            ),
            60,
        ), self.node.output()

        sent = [0.0]

        def received() -> bool:
            log = self.node.output()
            if "camera model from camera_info" in log and f"first {source} message" in log:
                return True
            if time.monotonic() - sent[0] > 0.2:
                self.camera_info.publish(camera_info(header))
                publisher.publish(priming)
                sent[0] = time.monotonic()
            return False

        assert self.node.spin_until(received, 30), self.node.output()

    def frame(self, frame: int, info=None, depth=None, cloud=None, stamp_offset_s: int = 0):
        """Send a frame's 3-D inputs first, then image and detections; wait for its 2-D
        tracks (lockstep: the 3-D outputs of a frame come right after its 2-D ones)."""
        from node_harness import image_msg, scene

        header = image_msg(scene(frame), 1000 + frame).header
        other = image_msg(scene(frame), 1000 + frame + stamp_offset_s).header
        if info is not None:
            self.camera_info.publish(info(header))
        if depth is not None:
            self.depth.publish(depth(other))
        if cloud is not None:
            self.points.publish(cloud(other))
        self.node.spin_until(lambda: False, 0.2)  # let the 3-D inputs arrive first
        before = len(self.node.received["tracks"])
        self.node.send_and_wait(frame)
        assert len(self.node.received["tracks"]) == before + 1
        return header


@pytest.fixture
def make_node(ros_context):
    nodes = []

    def start(params: dict, name: str, camera: str = "", remaps=None) -> Node3D:
        node = NodeUnderTest(ros_context, params, name=name, remaps=remaps)
        nodes.append(node)
        node.wait_active()
        return Node3D(node, camera)

    yield start
    for node in nodes:
        node.close()


def _by_id(msg: Detection3DArray) -> dict[int, object]:
    return {int(d.id): d for d in msg.detections}


def test_depth_gives_tracks_3d_state_and_markers_and_bad_depth_is_counted(make_node):
    n = make_node({**BASE, "lift3d.source": "depth"}, "lift_depth_node")
    node = n.node
    n.wait_inputs("depth")
    for frame in range(4):
        header = n.frame(
            frame, info=camera_info, depth=lambda h, f=frame: depth_msg(h, depth_metres(f))
        )
    assert node.spin_until(lambda: len(node.received["tracks_3d"]) == 4, 20), node.output()
    last = node.received["tracks_3d"][-1]
    assert last.header.stamp == header.stamp and last.header.frame_id == header.frame_id
    detections = _by_id(last)
    assert sorted(detections) == [1, 2]
    for k, track_id in enumerate((1, 2)):
        d = detections[track_id]
        centre = np.array(
            [d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.center.position.z]
        )
        # the filter smooths a box moving ~0.2 m per frame; within 5 % of range
        assert np.linalg.norm(centre - expected_centre(3, k)) < 0.05 * BOX_DEPTHS[k], centre
        assert d.results[0].hypothesis.class_id == "car"
        assert d.results[0].pose.covariance[0] > 0 and d.bbox.size.z < 0.1
    states = node.received["tracks_3d_state"][-1]
    assert [t.track_id for t in states.tracks] == [1, 2]
    assert states.tracks[0].velocity.x > 0 > states.tracks[1].velocity.x  # box 1 right, 2 left
    markers = node.received["markers"][-1].markers
    assert markers[0].action == Marker.DELETEALL
    assert sorted(m.type for m in markers[1:]) == [Marker.CUBE] * 2 + [Marker.TEXT_VIEW_FACING] * 2
    assert {m.text for m in markers if m.text} == {"1 car", "2 car"}

    # bad depth: all NaN/inf/0 (no valid points), another size, a zero focal length,
    # an unpaired stamp; each frame still gets its 2-D tracks (Node3D.frame checks)
    bad = depth_metres(4)
    bad[::3] = np.nan
    bad[1::3] = np.inf
    bad[2::3] = 0.0
    n.frame(4, info=camera_info, depth=lambda h: depth_msg(h, bad))
    n.frame(5, info=camera_info, depth=lambda h: depth_msg(h, np.ones((30, 30), np.float32)))
    n.frame(6, info=lambda h: camera_info(h, fx=0.0), depth=lambda h: depth_msg(h, depth_metres(6)))
    n.frame(7, info=camera_info, depth=lambda h: depth_msg(h, depth_metres(7)), stamp_offset_s=100)
    n.frame(8, info=camera_info, depth=lambda h: depth_msg(h, depth_metres(8), "16UC1"))
    expected = {
        "rejected_lift3d_too_few_points": "2",
        "rejected_depth_size": "1",
        "rejected_camera_info_invalid": "1",
        "rejected_lift3d_unpaired": "1",
    }
    assert node.spin_until(
        lambda: all(node.diagnostics.get(k) == v for k, v in expected.items()), 20
    ), (node.diagnostics, node.output())
    # frame 6 kept the last good camera model; frame 8 (16UC1 millimetres) is lifted;
    # frame 4 had depth but no valid point on either track: an empty array
    assert node.spin_until(lambda: node.received["tracks_3d"][-1].header.stamp.sec == 1008, 10)
    by_stamp = {m.header.stamp.sec: m for m in node.received["tracks_3d"]}
    assert sorted(by_stamp) == [1000, 1001, 1002, 1003, 1004, 1006, 1008]
    assert len(by_stamp[1004].detections) == 0
    assert len(by_stamp[1006].detections) == len(by_stamp[1008].detections) == 2
    assert node.state() == "active" and node.process.poll() is None
    assert "too few valid 3-D points" in node.output()


def test_classes_with_a_size_get_the_whole_box(make_node):
    """Default lift3d.object_sizes (car 3.9 x 1.6 x 1.5 m): each 'car' is a flat face in
    depth, seen from behind, so its box reaches 3.9 m behind the face: centre half a car
    length behind it, turned by no yaw, in tracks_3d, tracks_3d_state and markers."""
    params = {k: v for k, v in BASE.items() if k != "lift3d.object_sizes"}
    n = make_node({**params, "lift3d.source": "depth"}, "lift_amodal_node")
    node = n.node
    n.wait_inputs("depth")
    for frame in range(2):
        n.frame(frame, info=camera_info, depth=lambda h, f=frame: depth_msg(h, depth_metres(f)))
    assert node.spin_until(lambda: len(node.received["tracks_3d"]) == 2, 20), node.output()
    assert node.spin_until(lambda: len(node.received["tracks_3d_state"]) == 2, 10)
    detections = _by_id(node.received["tracks_3d"][-1])
    states = {t.track_id: t for t in node.received["tracks_3d_state"][-1].tracks}
    for k, track_id in enumerate((1, 2)):
        box = detections[track_id].bbox
        assert abs(box.center.position.z - (BOX_DEPTHS[k] + 3.9 / 2)) < 0.2, box.center
        assert abs(box.size.z - 3.9) < 0.05 and box.size.y >= 1.5, box.size
        assert abs(box.center.orientation.w - 1.0) < 1e-6  # yaw 0: a face across the view
        assert states[track_id].orientation == box.center.orientation
        assert abs(states[track_id].size.z - 3.9) < 0.05
    cubes = [m for m in node.received["markers"][-1].markers if m.type == Marker.CUBE]
    assert sorted(round(m.scale.z, 2) for m in cubes) == [3.9, 3.9]


def test_one_named_camera_lifts_on_its_own_topics(make_node):
    """cameras: [front] with lift3d: the 3-D inputs and outputs are front/camera_info,
    front/depth, front/tracks_3d, ... like its 2-D ones (remapped here to the harness's
    plain 2-D topics)."""
    two_d = ("image", "detections", "tracks", "tracked_detections", "instance_labels")
    n = make_node(
        {**BASE, "lift3d.source": "depth", "cameras": ["front"]},
        "lift_front_node",
        camera="front",
        remaps={f"front/{topic}": topic for topic in two_d},
    )
    node = n.node
    n.wait_inputs("depth")
    for frame in range(2):
        n.frame(frame, info=camera_info, depth=lambda h, f=frame: depth_msg(h, depth_metres(f)))
    assert node.spin_until(lambda: len(node.received["tracks_3d"]) == 2, 20), node.output()
    assert sorted(_by_id(node.received["tracks_3d"][-1])) == [1, 2]
    assert node.spin_until(lambda: len(node.received["tracks_3d_state"]) == 2, 10)
    assert node.client.count_publishers(f"/{node.name}/tracks_3d") == 0


def test_points_with_static_transform_and_bad_clouds_are_counted(make_node):
    # LiDAR frame = camera frame shifted 1 m back along z: sensor point p -> p + (0, 0, -1)
    params = {**BASE, "lift3d.source": "points", "lift3d.static_transform": "0 0 -1 0 0 0 1"}
    n = make_node(params, "lift_points_node")
    node = n.node
    n.wait_inputs("points")
    shifted = lambda h, f: cloud_msg(h, box_points(f) + np.array([0.0, 0.0, 1.0]))  # noqa: E731
    for frame in range(3):
        n.frame(frame, info=camera_info, cloud=lambda h, f=frame: shifted(h, f))
    assert node.spin_until(lambda: len(node.received["tracks_3d"]) == 3, 20), node.output()
    detections = _by_id(node.received["tracks_3d"][-1])
    assert sorted(detections) == [1, 2]
    z = detections[1].bbox.center.position.z
    assert abs(z - BOX_DEPTHS[0]) < 0.05 * BOX_DEPTHS[0]
    # a cloud without z; then stamps that never pair
    n.frame(
        3,
        info=camera_info,
        cloud=lambda h: cloud_msg(h, box_points(3), names=("x", "y", "intensity")),
    )
    n.frame(4, info=camera_info, cloud=lambda h: shifted(h, 4), stamp_offset_s=50)
    expected = {"rejected_points_invalid": "1", "rejected_lift3d_unpaired": "2"}
    assert node.spin_until(
        lambda: all(node.diagnostics.get(k) == v for k, v in expected.items()), 20
    ), (node.diagnostics, node.output())
    assert "without field(s) z" in node.output()
    assert node.state() == "active" and node.process.poll() is None


def test_points_without_a_transform_are_counted(make_node):
    """No static transform and no tf2 in this environment: every cloud is rejected
    (transform_missing) and the node keeps tracking in 2-D."""
    n = make_node({**BASE, "lift3d.source": "points"}, "lift_notf_node")
    node = n.node
    n.wait_inputs("points")
    for frame in range(2):
        n.frame(frame, info=camera_info, cloud=lambda h, f=frame: cloud_msg(h, box_points(f)))
    assert node.spin_until(lambda: node.diagnostics.get("rejected_transform_missing") == "2", 20), (
        node.diagnostics,
        node.output(),
    )
    assert not node.received["tracks_3d"]
    assert node.state() == "active" and node.process.poll() is None


def test_lift3d_off_by_default_subscribes_to_nothing_3d(make_node):
    n = make_node({k: v for k, v in BASE.items() if not k.startswith("lift3d")}, "lift_off_node")
    node = n.node
    node.send_and_wait(0)
    assert n.depth.get_subscription_count() == 0 and n.camera_info.get_subscription_count() == 0
    assert node.client.count_publishers(f"/{node.name}/tracks_3d") == 0
