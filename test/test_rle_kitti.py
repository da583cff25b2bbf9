"""RLEMask round trip against pycocotools on real KITTI MOTS masks."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from rclpy.serialization import deserialize_message, serialize_message
from seg2track_msgs.msg import RLEMask

from seg2track_ros.engine.masks import (
    MaskEncodingError,
    counts_to_coco,
    counts_to_mask,
    mask_to_box,
    mask_to_counts,
)
from seg2track_ros.ros.conversions import mask_to_bbox_msg, mask_to_rle_msg, rle_msg_to_mask

SEQUENCES = ["0002", "0006", "0012"]


def _kitti_rles(path):
    """(frame, object_id, compressed RLE dict) for every line of a KITTI MOTS file."""
    for line in path.read_text().splitlines():
        frame, object_id, _class_id, height, width, counts = line.split(" ")
        yield int(frame), int(object_id), {"size": [int(height), int(width)], "counts": counts}


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_round_trip_through_message_on_real_masks(kitti_mots_gt, sequence):
    checked = 0
    for _frame, _object_id, rle in _kitti_rles(kitti_mots_gt / f"{sequence}.txt"):
        mask = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        # through our message, serialised to CDR bytes and back as DDS carries it
        wire = serialize_message(mask_to_rle_msg(mask))
        msg = deserialize_message(wire, RLEMask)
        assert (msg.height, msg.width) == tuple(rle["size"])
        assert sum(msg.counts) == msg.height * msg.width
        np.testing.assert_array_equal(rle_msg_to_mask(msg), mask)
        # pycocotools compresses our uncompressed counts to the annotation's own string
        coco = counts_to_coco(np.asarray(msg.counts), msg.height, msg.width)
        assert coco["counts"].decode() == rle["counts"]
        checked += 1
    assert checked > 200


def test_box_matches_mask_extent(kitti_mots_gt):
    _frame, _oid, rle = next(_kitti_rles(kitti_mots_gt / "0002.txt"))
    mask = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    x0, y0, x1, y1 = mask_to_box(mask)
    ys, xs = np.nonzero(mask)
    assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    # pycocotools' toBbox is [x, y, w, h] in the same pixel-edge convention
    assert mask_utils.toBbox({"size": rle["size"], "counts": rle["counts"].encode()}).tolist() == [
        x0,
        y0,
        x1 - x0,
        y1 - y0,
    ]
    box = mask_to_bbox_msg(mask)
    assert (box.center.position.x, box.size_x) == ((x0 + x1) / 2, x1 - x0)


def test_edge_cases():
    empty = np.zeros((3, 4), dtype=np.uint8)
    assert mask_to_counts(empty).tolist() == [12]
    full = np.ones((3, 4), dtype=np.uint8)
    assert mask_to_counts(full).tolist() == [0, 12]
    assert mask_to_box(empty) is None
    assert mask_to_bbox_msg(empty).size_x == 0.0
    np.testing.assert_array_equal(counts_to_mask(np.array([0, 12]), 3, 4), full)
    # column-major: the second pixel of the first column is (row 1, col 0)
    one = np.zeros((3, 4), dtype=np.uint8)
    one[1, 0] = 1
    assert mask_to_counts(one).tolist() == [1, 1, 10]


def test_counts_of_the_wrong_length_are_rejected():
    bad = RLEMask(height=3, width=4, counts=[5, 2])
    with pytest.raises(MaskEncodingError, match="sum to 7 pixels"):
        rle_msg_to_mask(bad)
