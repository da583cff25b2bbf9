"""One tracker_node, several cameras (parameter ``cameras``), over real Fast DDS: the
installed executable in a subprocess, SAM 2 tiny with random weights at 64 px.

Camera A's tracks are compared with the engine's single-stream Tracker fed only camera
A's frames, built from the same parameters (the same seeded random weights): ids up to
the node's shared counter (an order-preserving renaming), states, and masks up to float
noise (the batched calls sum in another order; see test_multi_stream.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from lifecycle_msgs.msg import Transition
from rclpy.qos import QoSProfile, ReliabilityPolicy
from seg2track_msgs.msg import TrackedObjectArray
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2DArray

from seg2track_ros.ros.conversions import rle_msg_to_mask

from node_harness import RANDOM_WEIGHT_PARAMS, NodeUnderTest, detections_msg, image_msg

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
# Different sizes per camera (height, width).
CAMERAS = {"front": (72, 96), "left": (64, 80), "rear": (80, 64)}
MAX_PIXEL_FLIPS = 0.002


def camera_scene(camera: str, frame: int) -> tuple[np.ndarray, list[tuple]]:
    """A camera's frame: two rectangles moving its own way, and their boxes."""
    height, width = CAMERAS[camera]
    shift = {"front": 0, "left": 7, "rear": 13}[camera]
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 1] = np.linspace(0, 100, height, dtype=np.uint8)[:, None]
    boxes = []
    for k, (x0, y0, w, h, colour) in enumerate(
        ((4 + shift, 6, 20, 24, (220, 30, 30)), (30, 30 + shift % 5, 18, 20, (30, 30, 220)))
    ):
        x = min(x0 + (2 if k == 0 else -1) * frame + 10, width - w - 1)
        y = min(y0 + frame // 2, height - h - 1)
        image[y : y + h, x : x + w] = colour
        boxes.append((x, y, x + w, y + h))
    return image, boxes


class CameraNode(NodeUnderTest):
    """tracker_node with ``cameras`` set, and per camera a publisher of each input and a
    subscription to each output."""

    def __init__(self, context, params: dict, name: str) -> None:
        super().__init__(context, {**params, "cameras": list(CAMERAS)}, name=name)
        self.per_camera: dict[str, dict[str, list]] = {}
        self.camera_images, self.camera_detections, self.camera_reset = {}, {}, {}
        self.camera_diagnostics: dict[str, dict[str, str]] = {}
        for camera in CAMERAS:
            received = {"tracks": [], "instance_labels": [], "tracked_detections": []}
            self.per_camera[camera] = received
            base = f"/{name}/{camera}"
            for topic, msg_type in (
                ("tracks", TrackedObjectArray),
                ("tracked_detections", Detection2DArray),
                ("instance_labels", Image),
            ):
                self.client.create_subscription(
                    msg_type, f"{base}/{topic}", received[topic].append, RELIABLE
                )
            self.camera_images[camera] = self.client.create_publisher(
                Image, f"{base}/image", RELIABLE
            )
            self.camera_detections[camera] = self.client.create_publisher(
                Detection2DArray, f"{base}/detections", RELIABLE
            )
            self.camera_reset[camera] = self.client.create_client(
                Trigger, f"/{name}/{name}/{camera}/reset"
            )

    def _on_diagnostics(self, msg) -> None:
        super()._on_diagnostics(msg)
        for status in msg.status:
            for camera in CAMERAS:
                if status.name == f"{self.name}: seg2track {camera}":
                    self.camera_diagnostics[camera] = {kv.key: kv.value for kv in status.values}

    def wait_cameras(self, timeout: float = 120.0) -> None:
        assert self.spin_until(
            lambda: all(
                p.get_subscription_count() > 0
                for p in (*self.camera_images.values(), *self.camera_detections.values())
            ),
            timeout,
        ), f"tracker_node never subscribed to every camera:\n{self.output()}"

    def send_camera(self, camera: str, frame: int, stamp_s: int, boxes=None) -> Image:
        rgb, scene_boxes = camera_scene(camera, frame)
        image = image_msg(rgb, stamp_s, frame_id=f"{camera}_optical")
        self.camera_images[camera].publish(image)
        self.camera_detections[camera].publish(
            detections_msg(image.header, scene_boxes if boxes is None else boxes)
        )
        return image

    def wait_outputs(self, counts: dict[str, int]) -> None:
        assert self.spin_until(
            lambda: all(len(self.per_camera[c]["tracks"]) >= n for c, n in counts.items())
        ), f"outputs missing ({counts}):\n{self.output()}"


@pytest.fixture(scope="module")
def cameras(request):
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    node = CameraNode(
        context,
        {**RANDOM_WEIGHT_PARAMS, "mode": "lockstep", "max_detections": 3},
        name="camera_tracker",
    )
    node.wait_cameras()
    yield node
    node.close()
    context.try_shutdown()


def _reference(frames: list[tuple[np.ndarray, list[tuple]]], stamp0: int):
    """The engine alone, one camera, the node's parameters: each frame's StepResult."""
    from seg2track_ros.engine.registry import load_segmenter
    from seg2track_ros.engine.tracker import Tracker
    from seg2track_ros.params import config_from_params_files
    from seg2track_ros.ros.conversions import detections_from_msg

    config, _ = config_from_params_files(overrides={**RANDOM_WEIGHT_PARAMS, "max_detections": 3})
    tracker = Tracker(config.tracker, load_segmenter("sam2", config.segmenter))
    results = []
    for k, (rgb, boxes) in enumerate(frames):
        header = image_msg(rgb, stamp0 + k).header
        dets = detections_from_msg(
            detections_msg(header, boxes), rgb.shape[1], rgb.shape[0], 3
        ).detections
        results.append(tracker.step(rgb, dets))
    return results


def _assert_like_reference(outputs: list[TrackedObjectArray], reference) -> None:
    renaming: dict[int, int] = {}
    assert sum(len(r.tracks) for r in reference) > 0, "no tracks: the comparison is vacuous"
    for msg, want in zip(outputs, reference, strict=True):
        assert len(msg.objects) == len(want.tracks)
        for obj, track in zip(msg.objects, want.tracks, strict=True):
            assert renaming.setdefault(obj.track_id, track.track_id) == track.track_id
            assert (obj.class_id, int(obj.state)) == (track.class_id, int(track.state))
            mask = rle_msg_to_mask(obj.mask).astype(bool)
            assert float((mask != track.mask).mean()) <= MAX_PIXEL_FLIPS
    pairs = sorted(renaming.items())
    assert [b for _, b in pairs] == sorted(b for _, b in pairs)


def test_each_camera_keeps_its_stamp_frame_id_and_size_and_equals_one_camera(cameras):
    """Three cameras of different sizes; camera 'left' also gets a malformed image and a
    flood of unpaired detections: 'front' and 'rear' track as if alone."""
    start = {c: len(cameras.per_camera[c]["tracks"]) for c in CAMERAS}
    frames = 6
    for f in range(frames):
        for camera in CAMERAS:
            stamp = 100 + f + 1000 * list(CAMERAS).index(camera)
            cameras.send_camera(camera, f, stamp)
        if f == 2:
            bad = image_msg(camera_scene("left", f)[0], 555)
            bad.data = bytes(bad.data)[:-7]  # shorter than step * height
            cameras.camera_images["left"].publish(bad)
            for k in range(40):
                header = image_msg(camera_scene("left", f)[0], 600 + k).header
                cameras.camera_detections["left"].publish(
                    detections_msg(header, [(1, 1, 9, 9)] * 5)
                )
        cameras.wait_outputs({c: start[c] + f + 1 for c in CAMERAS})
    for index, camera in enumerate(CAMERAS):
        tracks = cameras.per_camera[camera]["tracks"][start[camera] :]
        assert len(tracks) == frames
        height, width = CAMERAS[camera]
        for f, msg in enumerate(tracks):
            assert msg.header.frame_id == f"{camera}_optical"
            assert msg.header.stamp.sec == 100 + f + 1000 * index
        assert cameras.spin_until(
            lambda c=camera: len(cameras.per_camera[c]["instance_labels"]) >= start[c] + frames
        )
        for labels in cameras.per_camera[camera]["instance_labels"][start[camera] :]:
            assert (labels.height, labels.width) == (height, width)
            assert labels.header.frame_id == f"{camera}_optical"
    for camera in ("front", "rear"):
        reference = _reference([camera_scene(camera, f) for f in range(frames)], 0)
        _assert_like_reference(cameras.per_camera[camera]["tracks"][start[camera] :], reference)
    ids = {
        camera: {o.track_id for m in cameras.per_camera[camera]["tracks"] for o in m.objects}
        for camera in CAMERAS
    }
    assert not ids["front"] & ids["left"]
    assert not ids["front"] & ids["rear"] and not ids["left"] & ids["rear"]

    # The bad input is counted on 'left' only.
    def left_counted() -> bool:
        values = cameras.camera_diagnostics.get("left", {})
        return (
            # More than sync_queue (30) waiting: the oldest are dropped and counted.
            int(values.get("rejected_unpaired_detections", 0)) >= 10
            and int(values.get("rejected_data_size_mismatch", 0)) == 1
        )

    assert cameras.spin_until(left_counted, 30), str(cameras.camera_diagnostics.get("left"))
    for camera in ("front", "rear"):
        assert cameras.spin_until(
            lambda c=camera: int(cameras.camera_diagnostics[c]["frames_processed"]) >= frames, 30
        )
        values = cameras.camera_diagnostics[camera]
        assert not [k for k in values if k.startswith("rejected_")], (camera, values)


def test_per_camera_reset_clears_only_that_camera(cameras):
    counts = {c: len(cameras.per_camera[c]["tracks"]) for c in CAMERAS}
    for f in range(3):
        for k, camera in enumerate(CAMERAS):
            cameras.send_camera(camera, f, 3000 + f + 100 * k)
    cameras.wait_outputs({c: counts[c] + 3 for c in CAMERAS})
    before = {c: cameras.per_camera[c]["tracks"][-1] for c in CAMERAS}
    assert all(before[c].objects for c in CAMERAS)
    highest = max(o.track_id for m in before.values() for o in m.objects)
    response = cameras.call(cameras.camera_reset["front"], Trigger.Request())
    assert response.success and "camera front" in response.message, response.message
    counts = {c: len(cameras.per_camera[c]["tracks"]) for c in CAMERAS}
    for k, camera in enumerate(CAMERAS):
        cameras.send_camera(camera, 3, 3003 + 100 * k)
    cameras.wait_outputs({c: counts[c] + 1 for c in CAMERAS})
    after = {c: cameras.per_camera[c]["tracks"][-1] for c in CAMERAS}
    # front: only new tracks, with new ids; the others keep theirs.
    assert after["front"].objects and all(o.track_id > highest for o in after["front"].objects)
    for camera in ("left", "rear"):
        kept = {o.track_id for o in before[camera].objects} & {
            o.track_id for o in after[camera].objects
        }
        assert kept, camera


def test_deactivate_activate_keeps_the_cameras(cameras):
    assert cameras.transition(Transition.TRANSITION_DEACTIVATE)
    assert cameras.transition(Transition.TRANSITION_ACTIVATE)
    cameras.wait_cameras()
    for camera in CAMERAS:
        assert cameras.camera_images[camera].get_subscription_count() == 1
    counts = {c: len(cameras.per_camera[c]["tracks"]) for c in CAMERAS}
    for k, camera in enumerate(CAMERAS):
        cameras.send_camera(camera, 0, 7000 + 100 * k)
    cameras.wait_outputs({c: counts[c] + 1 for c in CAMERAS})
    # No input or output on the unnamed camera's plain topics.
    assert cameras.images.get_subscription_count() == 0
    assert cameras.client.count_publishers(f"/{cameras.name}/tracks") == 0
