"""Engine tracks to ROS outputs: TrackedObjectArray, Detection2DArray with track ids,
mono16 instance labels, bgr8 overlay."""

from __future__ import annotations

import numpy as np
from std_msgs.msg import Header

from seg2track_ros.engine.masks import mask_to_box
from seg2track_ros.engine.types import Track, TrackState
from seg2track_ros.ros.conversions import (
    bgr_to_image_msg,
    instance_labels,
    labels_to_image_msg,
    rle_msg_to_mask,
    tracks_to_detections_msg,
    tracks_to_msg,
)
from seg2track_ros.visualize import overlay_image

H, W = 20, 30


def _track(track_id, rows, cols, state=TrackState.CONFIRMED, cls="car") -> Track:
    mask = np.zeros((H, W), bool)
    mask[rows, cols] = True
    return Track.with_mask(
        mask,
        track_id=track_id,
        class_id=cls,
        state=state,
        bbox=mask_to_box(mask),
        detection_score=0.75,
        mask_score=0.5,
        existence=0.9,
        age=3,
        frames_since_detection=1,
    )


def _header() -> Header:
    header = Header(frame_id="camera")
    header.stamp.sec, header.stamp.nanosec = 5, 6
    return header


TRACKS = [
    _track(3, slice(2, 6), slice(4, 10)),
    _track(70000, slice(10, 15), slice(0, 3), TrackState.OCCLUDED, "pedestrian"),
    _track(9, slice(0, 0), slice(0, 0), TrackState.LOST),  # empty mask
]


def test_tracked_object_array_carries_every_field():
    msg = tracks_to_msg(TRACKS, _header())
    assert msg.header.frame_id == "camera" and msg.header.stamp.nanosec == 6
    assert [o.track_id for o in msg.objects] == [3, 70000, 9]
    first = msg.objects[0]
    assert (first.class_id, first.state, first.age, first.frames_since_detection) == (
        "car",
        1,
        3,
        1,
    )
    assert (first.detection_score, first.mask_score) == (0.75, 0.5)
    assert first.bbox.center.position.x == 7.0 and first.bbox.size_x == 6.0
    np.testing.assert_array_equal(rle_msg_to_mask(first.mask), TRACKS[0].mask)
    assert msg.objects[2].bbox.size_x == 0.0 and list(msg.objects[2].mask.counts) == [H * W]


def test_detections_use_track_ids_and_skip_empty_masks():
    msg = tracks_to_detections_msg(TRACKS, _header())
    assert [d.id for d in msg.detections] == ["3", "70000"]
    assert msg.detections[1].results[0].hypothesis.class_id == "pedestrian"
    assert msg.detections[0].header.frame_id == "camera"


def test_instance_labels_and_id_wrap():
    labels = instance_labels(TRACKS, H, W)
    assert labels.dtype == np.uint16
    assert set(np.unique(labels)) == {0, 3, 70000 - 65535}
    assert (labels == 3).sum() == TRACKS[0].mask.sum()
    assert instance_labels([_track(65535, 0, 0)], H, W)[0, 0] == 65535
    assert instance_labels([_track(65536, 0, 0)], H, W)[0, 0] == 1
    msg = labels_to_image_msg(labels, _header())
    assert (msg.encoding, msg.step, len(msg.data)) == ("mono16", 2 * W, 2 * H * W)
    back = np.frombuffer(bytes(msg.data), "<u2").reshape(H, W)
    np.testing.assert_array_equal(back, labels)


def test_overlay_tints_only_masked_pixels():
    import dataclasses

    rgb = np.full((H, W, 3), 100, np.uint8)
    # Without a box there is no label: only the mask's pixels change.
    unlabelled = dataclasses.replace(TRACKS[0], bbox=None)
    bgr = overlay_image(rgb, [unlabelled])
    assert bgr.shape == (H, W, 3)
    assert (bgr[TRACKS[0].mask] != 100).all()
    assert (bgr[~TRACKS[0].mask] == 100).all()
    # With its box, a label is drawn too (on an image this small it spans the width).
    labelled = overlay_image(rgb, TRACKS[:1])
    assert (labelled[~TRACKS[0].mask] != 100).any()
    bgr = labelled
    msg = bgr_to_image_msg(bgr, _header())
    assert (msg.encoding, msg.step) == ("bgr8", 3 * W)
