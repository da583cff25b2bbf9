"""The one place where ROS messages become arrays and arrays become ROS messages."""

from __future__ import annotations

import array
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from seg2track_msgs.msg import RLEMask, TrackedObject, TrackedObjectArray
from sensor_msgs.msg import Image
from vision_msgs.msg import (
    BoundingBox2D,
    Detection2D,
    Detection2DArray,
    ObjectHypothesisWithPose,
)

from seg2track_ros.engine.masks import (
    counts_to_mask,
    labels_to_counts,
    mask_to_box,
    mask_to_counts,
)
from seg2track_ros.engine.types import Detections, StepResult, Track


def mask_to_rle_msg(mask: np.ndarray) -> RLEMask:
    """RLEMask message (uncompressed COCO RLE) of a binary mask (H, W)."""
    msg = RLEMask()
    msg.height, msg.width = int(mask.shape[0]), int(mask.shape[1])
    msg.counts = counts_field(mask_to_counts(mask))
    return msg


def counts_field(counts: np.ndarray) -> array.array:
    """RLE counts as the array.array('I') a uint32[] message field holds: one copy of the
    buffer. (Given a numpy array, the generated setter converts element by element.)"""
    field = array.array("I")
    field.frombytes(np.ascontiguousarray(counts, dtype=np.uint32).data.cast("B"))
    return field


def rle_msg_to_mask(msg: RLEMask) -> np.ndarray:
    """Binary mask (H, W) uint8 from an RLEMask message; raises MaskEncodingError."""
    counts = np.asarray(msg.counts, dtype=np.uint32)
    return counts_to_mask(counts, msg.height, msg.width)


def xyxy_to_bbox_msg(x0: float, y0: float, x1: float, y1: float) -> BoundingBox2D:
    """vision_msgs BoundingBox2D (center and size) from a box's corners."""
    x0, y0, x1, y1 = float(x0), float(y0), float(x1), float(y1)  # never ints in float64
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


# --------------------------------------------------------------------------- images
# Channels per supported sensor_msgs/Image encoding (8 bits per channel).
IMAGE_ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}


class RejectedInput(ValueError):
    """An input message the node cannot use; ``reason`` is a short key for diagnostics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def image_to_rgb(msg, max_pixels: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB array of a sensor_msgs/Image (rgb8, bgr8, mono8, rgba8, bgra8).

    Row padding (``step`` > width * channels) is honoured. Raises RejectedInput with
    reasons: empty_image, unsupported_encoding, too_many_pixels, step_too_small,
    data_size_mismatch. This is the package's own conversion; the node uses cv_bridge
    instead where it is installed (see ``ImageConverter``).
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    _check_image_header(msg, max_pixels)
    channels = IMAGE_ENCODINGS[msg.encoding]
    data = np.frombuffer(memoryview(msg.data), dtype=np.uint8)
    if data.size != step * height:
        raise RejectedInput(
            "data_size_mismatch",
            f"image data has {data.size} bytes, step * height = {step} * {height}"
            f" = {step * height}",
        )
    pixels = data.reshape(height, step)[:, : width * channels].reshape(height, width, channels)
    encoding = msg.encoding
    if encoding == "rgb8":
        rgb = pixels
    elif encoding == "bgr8":
        rgb = pixels[..., ::-1]
    elif encoding == "rgba8":
        rgb = pixels[..., :3]
    elif encoding == "bgra8":
        rgb = pixels[..., 2::-1]
    else:  # mono8
        rgb = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(rgb)


def _check_image_header(msg, max_pixels: int | None) -> None:
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise RejectedInput("empty_image", f"image is {width}x{height}")
    if msg.encoding not in IMAGE_ENCODINGS:
        raise RejectedInput(
            "unsupported_encoding",
            f"encoding '{msg.encoding}' is not supported (use one of {', '.join(IMAGE_ENCODINGS)})",
        )
    if max_pixels is not None and height * width > max_pixels:
        raise RejectedInput(
            "too_many_pixels",
            f"image {width}x{height} has {width * height} pixels, max_image_pixels is {max_pixels}",
        )
    minimum = width * IMAGE_ENCODINGS[msg.encoding]
    if step < minimum:
        raise RejectedInput("step_too_small", f"step {step} is below width * channels = {minimum}")


class ImageConverter:
    """sensor_msgs/Image -> RGB array: cv_bridge where installed, else image_to_rgb.

    Header checks (size, encoding, pixel limit, step, data length) always run here, so
    both paths reject the same inputs with the same reasons.
    """

    def __init__(self, max_pixels: int | None = None, use_cv_bridge: bool = True) -> None:
        self.max_pixels = max_pixels
        self._bridge = None
        if use_cv_bridge:
            try:
                from cv_bridge import CvBridge
            except ImportError:
                pass
            else:
                self._bridge = CvBridge()

    @property
    def backend(self) -> str:
        return "cv_bridge" if self._bridge is not None else "seg2track_ros.ros.conversions"

    def __call__(self, msg) -> np.ndarray:
        if self._bridge is None:
            return image_to_rgb(msg, self.max_pixels)
        _check_image_header(msg, self.max_pixels)
        expected = int(msg.step) * int(msg.height)
        if len(msg.data) != expected:
            raise RejectedInput(
                "data_size_mismatch",
                f"image data has {len(msg.data)} bytes, step * height = {expected}",
            )
        return np.ascontiguousarray(self._bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))


# ------------------------------------------------------------- compressed images
# sensor_msgs/CompressedImage: what image_transport's compressed plugin publishes on
# '<topic>/compressed'. Its `format` is "jpeg"/"png" or, from image_transport,
# "<raw encoding>; <jpeg|png> compressed <encoding>"; the data decode to BGR (or grey,
# which becomes three equal channels) whatever the raw encoding was.
COMPRESSED_CODECS = {"jpeg": ".jpg", "png": ".png"}
_COMPRESSED_FORMAT_WORDS = ("jpeg", "jpg", "png")


def compressed_image_to_rgb(msg, max_pixels: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB array of a sensor_msgs/CompressedImage (JPEG or PNG), decoded
    with OpenCV (cv2.imdecode). Works on rclpy and rosbags messages alike (``format`` and
    ``data``). Raises RejectedInput with reasons: empty_image, unsupported_encoding
    (compressedDepth and other formats), undecodable_image, too_many_pixels."""
    import cv2

    fmt = str(msg.format).lower()
    data = np.frombuffer(memoryview(msg.data), dtype=np.uint8)
    if data.size == 0:
        raise RejectedInput("empty_image", "compressed image has no data")
    if "compresseddepth" in fmt or (fmt and not any(w in fmt for w in _COMPRESSED_FORMAT_WORDS)):
        raise RejectedInput(
            "unsupported_encoding",
            f"compressed format '{msg.format}' is not supported (jpeg or png; for depth"
            " images use the raw topic)",
        )
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise RejectedInput(
            "undecodable_image",
            f"compressed image ({len(data)} bytes, format '{msg.format}') is not a JPEG or"
            " PNG OpenCV can decode",
        )
    height, width = bgr.shape[:2]
    if max_pixels is not None and height * width > max_pixels:
        raise RejectedInput(
            "too_many_pixels",
            f"image {width}x{height} has {width * height} pixels, max_image_pixels is {max_pixels}",
        )
    return np.ascontiguousarray(bgr[..., ::-1])


def encode_compressed(bgr: np.ndarray, codec: str = "jpeg", quality: int = 95) -> tuple[str, bytes]:
    """(format, data) of a CompressedImage holding `bgr` ((H, W, 3) uint8), as
    image_transport's compressed plugin writes them ("bgr8; jpeg compressed bgr8")."""
    import cv2

    if codec not in COMPRESSED_CODECS:
        raise ValueError(f"codec must be one of {', '.join(COMPRESSED_CODECS)}, got {codec!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if codec == "jpeg" else []
    ok, encoded = cv2.imencode(COMPRESSED_CODECS[codec], np.ascontiguousarray(bgr), params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {bgr.shape} {bgr.dtype} image as {codec}")
    return f"bgr8; {codec} compressed bgr8", encoded.tobytes()


def compressed_image_msg(bgr: np.ndarray, header, codec: str = "jpeg", quality: int = 95):
    """sensor_msgs/CompressedImage (rclpy) of a bgr8 array."""
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage()
    msg.header = header
    msg.format, data = encode_compressed(bgr, codec, quality)
    msg.data = data
    return msg


# ----------------------------------------------------------------------- detections
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class DetectionConversion:
    """Engine detections from one Detection2DArray, and what was dropped or changed."""

    detections: Detections
    rejected: Counter = field(default_factory=Counter)  # reason -> count (dropped)
    clipped: int = 0  # boxes partly outside the image, clipped to it
    rotated: int = 0  # rotated boxes replaced by their axis-aligned bound


def detections_from_msg(
    msg, width: int, height: int, max_detections: int | None = None
) -> DetectionConversion:
    """Engine Detections from a vision_msgs/Detection2DArray for a width x height image.

    Per detection: class id and score from the highest-scoring hypothesis; the box from
    bbox center and size; a rotated box (center.theta != 0) becomes its axis-aligned
    bound; a box partly outside the image is clipped. Dropped, counted by reason:
    missing_class_id (no hypothesis or an empty class id), non_finite (NaN/inf in the
    box or score), non_positive_size, outside_image, over_max_detections (the lowest
    scores beyond max_detections).

    Values are checked in float32, the engine's dtype, after the conversion: a score
    beyond float32's range (1e39) becomes inf (non_finite), and a box whose corners
    round to the same float32 (a size of 1e-7, or a box starting 1e-6 px inside the
    right edge and clipped to it) has no size (non_positive_size). Only that detection
    is dropped; the engine never sees a value it would refuse for the whole frame.
    """
    rejected: Counter = Counter()
    boxes, scores, class_ids = [], [], []
    clipped = rotated = 0
    for detection in msg.detections:
        if not detection.results:
            rejected["missing_class_id"] += 1
            continue
        best = max(detection.results, key=lambda r: r.hypothesis.score)
        class_id = best.hypothesis.class_id.strip()
        if not class_id:
            rejected["missing_class_id"] += 1
            continue
        box = detection.bbox
        values = (
            box.center.position.x,
            box.center.position.y,
            box.size_x,
            box.size_y,
            box.center.theta,
            best.hypothesis.score,
        )
        if not all(math.isfinite(v) for v in values):
            rejected["non_finite"] += 1
            continue
        cx, cy, size_x, size_y, theta, score = values
        if size_x <= 0 or size_y <= 0:
            rejected["non_positive_size"] += 1
            continue
        if theta != 0.0:
            rotated += 1
            cos, sin = abs(math.cos(theta)), abs(math.sin(theta))
            size_x, size_y = size_x * cos + size_y * sin, size_x * sin + size_y * cos
        x0, y0 = cx - size_x / 2, cy - size_y / 2
        x1, y1 = cx + size_x / 2, cy + size_y / 2
        cx0, cy0 = min(max(x0, 0.0), width), min(max(y0, 0.0), height)
        cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
        if cx1 <= cx0 or cy1 <= cy0:
            rejected["outside_image"] += 1
            continue
        box32 = np.array((cx0, cy0, cx1, cy1), dtype=np.float32)
        score32 = np.float32(score) if abs(score) <= _FLOAT32_MAX else np.float32(np.inf)
        if not math.isfinite(score32):
            rejected["non_finite"] += 1
            continue
        if not (box32[2] > box32[0] and box32[3] > box32[1]):
            rejected["non_positive_size"] += 1
            continue
        if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
            clipped += 1
        boxes.append(box32)
        scores.append(score32)
        class_ids.append(class_id)
    keep = np.arange(len(scores))
    if max_detections is not None and len(scores) > max_detections:
        rejected["over_max_detections"] += len(scores) - max_detections
        best_first = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
        keep = np.sort(best_first[:max_detections])  # message order among the kept
    detections = Detections(
        np.asarray(boxes, dtype=np.float32).reshape(-1, 4)[keep],
        np.asarray(scores, dtype=np.float32)[keep],
        tuple(class_ids[i] for i in keep),
    )
    return DetectionConversion(detections, rejected, clipped, rotated)


# -------------------------------------------------------------------------- outputs
@dataclass
class OutputMessages:
    """The node's per-frame outputs for one StepResult."""

    tracks: TrackedObjectArray
    detections: Detection2DArray
    labels: Image


def step_to_msgs(result: StepResult, header) -> OutputMessages:
    """The node's outputs from a StepResult, built from its label image: RLE of every
    track in one vectorised pass, the instance image by one table lookup; no per-track
    mask is ever formed."""
    tracks = result.tracks
    labels = result.labels
    # Track k carries label k + 1 (StepResult's contract), so counts[k] is its mask.
    if any(t.label != k + 1 for k, t in enumerate(tracks)):
        raise ValueError("StepResult tracks must carry labels 1..N in order")
    counts = labels_to_counts(labels, len(tracks))
    lookup = np.zeros(len(tracks) + 1, dtype=np.uint16)
    lookup[1:] = [wrap_label(t.track_id) for t in tracks]
    return OutputMessages(
        tracks=tracks_to_msg(tracks, header, counts),
        detections=tracks_to_detections_msg(tracks, header),
        # 'clip' skips the bounds check (labels are 0..N by contract): half the time
        labels=labels_to_image_msg(np.take(lookup, labels, mode="clip"), header),
    )


def tracks_to_msg(
    tracks: Sequence[Track], header, counts: Sequence[np.ndarray] | None = None
) -> TrackedObjectArray:
    """seg2track_msgs/TrackedObjectArray with the input image's header. ``counts`` are the
    tracks' RLE counts when already computed (``step_to_msgs``); otherwise each track's
    mask is encoded."""
    msg = TrackedObjectArray()
    msg.header = header
    for k, track in enumerate(tracks):
        obj = TrackedObject()
        obj.track_id = int(track.track_id)
        obj.class_id = track.class_id
        obj.detection_score = float(track.detection_score)
        obj.mask_score = float(track.mask_score)
        obj.existence = float(track.existence)
        obj.state = int(track.state)
        obj.age = int(track.age)
        obj.frames_since_detection = int(track.frames_since_detection)
        obj.bbox = BoundingBox2D() if track.bbox is None else xyxy_to_bbox_msg(*track.bbox)
        if counts is None:
            obj.mask = mask_to_rle_msg(track.mask)
        else:
            obj.mask.height, obj.mask.width = (int(v) for v in track.labels.shape)
            obj.mask.counts = counts_field(counts[k])
        msg.objects.append(obj)
    return msg


def tracks_to_detections_msg(tracks: Sequence[Track], header) -> Detection2DArray:
    """vision_msgs/Detection2DArray: id = track id, bbox from the mask, class and score
    (the last associated detection's) in results. Tracks with empty masks are left out."""
    msg = Detection2DArray()
    msg.header = header
    for track in tracks:
        if track.bbox is None:
            continue
        detection = Detection2D()
        detection.header = header
        detection.id = str(track.track_id)
        detection.bbox = xyxy_to_bbox_msg(*track.bbox)
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = track.class_id
        hypothesis.hypothesis.score = float(track.detection_score)
        detection.results.append(hypothesis)
        msg.detections.append(detection)
    return msg


def wrap_label(track_id: int) -> int:
    """A track id as a mono16 pixel: ids above 65535 wrap modulo 65535 into 1..65535
    (never 0, the background), so a label is ambiguous only after 65535 tracks."""
    return (int(track_id) - 1) % 65535 + 1


def instance_labels(tracks: Sequence[Track], height: int, width: int) -> np.ndarray:
    """(H, W) uint16: pixel = wrapped track id (``wrap_label``), 0 = background, from
    each track's mask (``step_to_msgs`` does this from the label image instead)."""
    labels = np.zeros((height, width), dtype=np.uint16)
    for track in tracks:
        labels[track.mask] = wrap_label(track.track_id)
    return labels


def labels_to_image_msg(labels: np.ndarray, header) -> Image:
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(labels.shape[0]), int(labels.shape[1])
    msg.encoding = "mono16"
    msg.is_bigendian = 0
    msg.step = msg.width * 2
    data = array.array("B")  # one copy of the pixels, taken as is by the message
    data.frombytes(np.ascontiguousarray(labels, dtype="<u2").data.cast("B"))
    msg.data = data
    return msg


def bgr_to_image_msg(bgr: np.ndarray, header) -> Image:
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(bgr.shape[0]), int(bgr.shape[1])
    msg.encoding = "bgr8"
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(bgr).tobytes()
    return msg
