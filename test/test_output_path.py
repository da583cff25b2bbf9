"""The output path: one label image on the device, boxes from it, RLE of every track from
it in one pass, and the node's messages built from it, all equal to the per-track masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from std_msgs.msg import Header

from seg2track_ros.engine import mask_ops
from seg2track_ros.engine.masks import (
    counts_to_mask,
    labels_to_counts,
    mask_to_box,
    mask_to_counts,
)
from seg2track_ros.engine.types import StepResult, Track, TrackState
from seg2track_ros.ros.conversions import (
    instance_labels,
    rle_msg_to_mask,
    step_to_msgs,
    tracks_to_detections_msg,
    tracks_to_msg,
)


def _reference_owners(masks: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The overlap rule written pixel by pixel: the covering mask with the higher score,
    ties to the lower row; 0 where no mask covers the pixel, else row + 1."""
    num, height, width = masks.shape
    labels = np.zeros((height, width), np.int64)
    for y in range(height):
        for x in range(width):
            covering = [k for k in range(num) if masks[k, y, x]]
            if covering:
                labels[y, x] = min(covering, key=lambda k: (-scores[k], k)) + 1
    return labels


@pytest.mark.parametrize("num", [0, 1, 2, 7])
def test_label_image_follows_the_overlap_rule(num):
    rng = np.random.default_rng(num)
    masks = rng.random((num, 9, 13)) > 0.6
    scores = rng.choice([0.2, 0.5, 0.9], size=num).astype(np.float32)  # ties on purpose
    labels = mask_ops.label_image(torch.from_numpy(masks), torch.from_numpy(scores))
    assert labels.shape == (9, 13) and labels.dtype == torch.int16
    np.testing.assert_array_equal(labels.numpy(), _reference_owners(masks, scores))


def test_label_image_above_255_masks_uses_wider_priorities():
    num, height, width = 300, 4, 300
    masks = np.zeros((num, height, width), bool)
    masks[np.arange(num), 0, np.arange(num)] = True  # one pixel each
    masks[:, 1, 0] = True  # every mask claims pixel (1, 0)
    scores = np.linspace(0.1, 0.9, num).astype(np.float32)
    labels = mask_ops.label_image(torch.from_numpy(masks), torch.from_numpy(scores)).numpy()
    np.testing.assert_array_equal(labels[0], np.arange(1, num + 1))
    assert labels[1, 0] == num  # the highest score


def test_label_boxes_are_the_tight_boxes_of_each_label():
    rng = np.random.default_rng(3)
    labels = np.zeros((20, 31), np.int16)
    labels[2:5, 3:9] = 1
    labels[10, 30] = 2
    labels[rng.random((20, 31)) > 0.97] = 4  # scattered; label 3 absent
    boxes, present = mask_ops.label_boxes(torch.from_numpy(labels), 4)
    for k in range(4):
        expected = mask_to_box(labels == k + 1)
        assert bool(present[k]) == (expected is not None)
        assert tuple(boxes[k].tolist()) == (expected or (0.0, 0.0, 0.0, 0.0))


def test_label_counts_equal_each_masks_own_counts_and_pycocotools():
    rng = np.random.default_rng(7)
    for trial in range(200):
        height, width = (int(v) for v in rng.integers(1, 10, 2))
        num = int(rng.integers(0, 5))
        labels = rng.integers(0, num + 2, (height, width)).astype(np.uint16)  # num+1: ignored
        if trial % 4 == 0:
            labels[:, :] = num  # one label everywhere (or background)
        counts = labels_to_counts(labels, num)
        assert len(counts) == num
        for k in range(num):
            mask = labels == k + 1
            np.testing.assert_array_equal(counts[k], mask_to_counts(mask))
            expected = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            np.testing.assert_array_equal(
                counts_to_mask(counts[k], height, width), mask_utils.decode(expected)
            )


def _result(masks: np.ndarray, ids: list[int]) -> StepResult:
    """A StepResult as the tracker builds it, from non-overlapping masks."""
    height, width = masks.shape[1:]
    labels = np.zeros((height, width), np.uint16)
    for k, m in enumerate(masks):
        labels[m] = k + 1
    tracks = [
        Track(
            track_id=track_id,
            class_id="car" if k % 2 else "pedestrian",
            state=TrackState(k % 4),
            bbox=mask_to_box(masks[k]),
            detection_score=0.5 + k / 100,
            mask_score=0.6,
            existence=0.7,
            age=k,
            frames_since_detection=0,
            label=k + 1,
            labels=labels,
        )
        for k, track_id in enumerate(ids)
    ]
    return StepResult(0, tracks, {}, labels)


def test_step_messages_equal_the_per_track_path():
    rng = np.random.default_rng(11)
    height, width = 37, 53
    owner = rng.integers(0, 5, (height, width))
    owner[:, :5] = 0
    masks = np.stack([owner == k for k in range(1, 5)] + [np.zeros((height, width), bool)])
    ids = [3, 4, 70000, 65535, 12]  # wrapped ids, and an empty mask
    result = _result(masks, ids)
    header = Header(frame_id="camera")
    fast = step_to_msgs(result, header)
    slow_tracks = tracks_to_msg(result.tracks, header)
    for got, want, mask in zip(fast.tracks.objects, slow_tracks.objects, masks, strict=True):
        assert got == want
        np.testing.assert_array_equal(rle_msg_to_mask(got.mask).astype(bool), mask)
    assert fast.detections == tracks_to_detections_msg(result.tracks, header)
    image = np.frombuffer(bytes(fast.labels.data), "<u2").reshape(height, width)
    np.testing.assert_array_equal(image, instance_labels(result.tracks, height, width))
    assert set(np.unique(image)) == {0, 3, 4, 70000 - 65535, 65535}


def test_step_messages_for_a_frame_without_tracks():
    result = StepResult(0, [], {}, np.zeros((4, 6), np.uint16))
    messages = step_to_msgs(result, Header())
    assert list(messages.tracks.objects) == [] and list(messages.detections.detections) == []
    assert bytes(messages.labels.data) == bytes(4 * 6 * 2)
