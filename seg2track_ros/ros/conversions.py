"""The one place where ROS messages become arrays and arrays become ROS messages."""

from __future__ import annotations

import numpy as np
from seg2track_msgs.msg import RLEMask
from vision_msgs.msg import BoundingBox2D

from seg2track_ros.engine.masks import counts_to_mask, mask_to_box, mask_to_counts


def mask_to_rle_msg(mask: np.ndarray) -> RLEMask:
    """RLEMask message (uncompressed COCO RLE) of a binary mask (H, W)."""
    msg = RLEMask()
    msg.height, msg.width = int(mask.shape[0]), int(mask.shape[1])
    msg.counts = mask_to_counts(mask)
    return msg


def rle_msg_to_mask(msg: RLEMask) -> np.ndarray:
    """Binary mask (H, W) uint8 from an RLEMask message; raises MaskEncodingError."""
    counts = np.asarray(msg.counts, dtype=np.uint32)
    return counts_to_mask(counts, msg.height, msg.width)


def xyxy_to_bbox_msg(x0: float, y0: float, x1: float, y1: float) -> BoundingBox2D:
    """vision_msgs BoundingBox2D (center and size) from a box's corners."""
    box = BoundingBox2D()
    box.center.position.x = (x0 + x1) / 2.0
    box.center.position.y = (y0 + y1) / 2.0
    box.size_x = x1 - x0
    box.size_y = y1 - y0
    return box


def mask_to_bbox_msg(mask: np.ndarray) -> BoundingBox2D:
    """Tight BoundingBox2D of a mask; all zero when the mask is empty."""
    corners = mask_to_box(mask)
    return BoundingBox2D() if corners is None else xyxy_to_bbox_msg(*corners)
