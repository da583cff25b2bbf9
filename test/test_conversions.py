"""The package's own ROS message conversions: every image encoding (with row padding)
and every kind of bad image or detection input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from seg2track_ros.engine.types import Detections
from seg2track_ros.ros.conversions import (
    ImageConverter,
    RejectedInput,
    detections_from_msg,
    image_to_rgb,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 255, (5, 7, 3), dtype=np.uint8)


def _image(pixels: np.ndarray, encoding: str, padding: int = 0) -> Image:
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    step = rows.shape[1] + padding
    padded = np.zeros((height, step), np.uint8)
    padded[:, : rows.shape[1]] = rows
    padded[:, rows.shape[1] :] = 77  # garbage in the padding must not leak in
    return Image(height=height, width=width, encoding=encoding, step=step, data=padded.tobytes())


ENCODED = {
    "rgb8": (RGB, RGB),
    "bgr8": (RGB[..., ::-1], RGB),
    "rgba8": (np.dstack([RGB, np.full((5, 7), 255, np.uint8)]), RGB),
    "bgra8": (np.dstack([RGB[..., ::-1], np.full((5, 7), 9, np.uint8)]), RGB),
    "mono8": (RGB[..., 0], np.repeat(RGB[..., :1], 3, axis=2)),
}


@pytest.mark.parametrize("encoding", sorted(ENCODED))
@pytest.mark.parametrize("padding", [0, 3])
def test_every_encoding_with_and_without_row_padding(encoding, padding):
    pixels, expected = ENCODED[encoding]
    rgb = image_to_rgb(_image(pixels, encoding, padding))
    assert rgb.dtype == np.uint8 and rgb.shape == (5, 7, 3) and rgb.flags.c_contiguous
    np.testing.assert_array_equal(rgb, expected)


def test_converter_backend_follows_cv_bridge_availability():
    import importlib.util

    has_cv_bridge = importlib.util.find_spec("cv_bridge") is not None
    expected = "cv_bridge" if has_cv_bridge else "seg2track_ros.ros.conversions"
    assert ImageConverter().backend == expected
    fallback = ImageConverter(max_pixels=100, use_cv_bridge=False)
    assert fallback.backend == "seg2track_ros.ros.conversions"
    np.testing.assert_array_equal(fallback(_image(RGB[..., ::-1], "bgr8", padding=2)), RGB)


def _bad(**changes) -> Image:
    msg = _image(RGB, "rgb8")
    for key, value in changes.items():
        setattr(msg, key, value)
    return msg


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (_bad(data=bytes(5 * 21 - 1)), "data_size_mismatch"),
        (_bad(data=bytes(5 * 21 + 4)), "data_size_mismatch"),
        (_bad(step=20), "step_too_small"),
        (_bad(width=0, step=0, data=b""), "empty_image"),
        (_bad(height=0, data=b""), "empty_image"),
        (_bad(encoding="16UC1"), "unsupported_encoding"),
        (_bad(encoding="yuv422"), "unsupported_encoding"),
    ],
)
def test_bad_images_are_rejected_with_a_reason(message, reason):
    for convert in (image_to_rgb, ImageConverter(use_cv_bridge=False)):
        with pytest.raises(RejectedInput) as error:
            convert(message)
        assert error.value.reason == reason


def test_image_above_the_pixel_limit_is_rejected():
    with pytest.raises(RejectedInput, match="max_image_pixels is 34") as error:
        image_to_rgb(_image(RGB, "rgb8"), max_pixels=34)
    assert error.value.reason == "too_many_pixels"
    assert image_to_rgb(_image(RGB, "rgb8"), max_pixels=35).shape == (5, 7, 3)


def _detection(cx, cy, sx, sy, hypotheses=(("car", 0.9),), theta=0.0) -> Detection2D:
    detection = Detection2D()
    detection.bbox.center.position.x, detection.bbox.center.position.y = cx, cy
    detection.bbox.center.theta = theta
    detection.bbox.size_x, detection.bbox.size_y = sx, sy
    for class_id, score in hypotheses:
        result = ObjectHypothesisWithPose()
        result.hypothesis.class_id, result.hypothesis.score = class_id, score
        detection.results.append(result)
    return detection


def _array(*detections) -> Detection2DArray:
    msg = Detection2DArray()
    msg.detections = list(detections)
    return msg


def test_class_and_score_from_the_best_hypothesis_and_box_from_center_size():
    out = detections_from_msg(
        _array(_detection(50, 40, 20, 10, (("car", 0.3), ("pedestrian", 0.8), ("bus", 0.5)))),
        width=100,
        height=80,
    )
    assert out.detections.class_ids == ("pedestrian",)
    assert out.detections.scores.tolist() == pytest.approx([0.8])
    assert out.detections.boxes.tolist() == [[40, 35, 60, 45]]
    assert not out.rejected and out.clipped == 0 and out.rotated == 0


def test_rotated_box_becomes_its_axis_aligned_bound():
    out = detections_from_msg(_array(_detection(50, 40, 20, 10, theta=math.pi / 2)), 100, 80)
    np.testing.assert_allclose(out.detections.boxes, [[45, 30, 55, 50]], atol=1e-4)
    assert out.rotated == 1


def test_bad_detections_are_dropped_by_reason_and_partial_boxes_clipped():
    out = detections_from_msg(
        _array(
            _detection(50, 40, 20, 10),  # good
            _detection(5, 5, 20, 20),  # partly outside: clipped
            _detection(float("nan"), 40, 20, 10),  # NaN
            _detection(50, 40, float("inf"), 10),  # inf
            _detection(50, 40, 20, 10, (("car", float("nan")),)),  # NaN score
            _detection(50, 40, 0, 10),  # zero size
            _detection(50, 40, 20, -3),  # negative size
            _detection(500, 40, 20, 10),  # fully outside
            _detection(50, 40, 20, 10, ()),  # no hypothesis
            _detection(50, 40, 20, 10, (("  ", 0.9),)),  # empty class id
        ),
        width=100,
        height=80,
    )
    assert len(out.detections) == 2
    assert out.detections.boxes.tolist() == [[40, 35, 60, 45], [0, 0, 15, 15]]
    assert out.clipped == 1
    assert dict(out.rejected) == {
        "non_finite": 3,
        "non_positive_size": 2,
        "outside_image": 1,
        "missing_class_id": 2,
    }


def test_more_than_max_detections_keeps_the_highest_scores():
    scores = [0.5, 0.9, 0.1, 0.7, 0.3]
    msg = _array(*[_detection(10 + 10 * i, 40, 8, 8, (("car", s),)) for i, s in enumerate(scores)])
    out = detections_from_msg(msg, 100, 80, max_detections=3)
    assert out.detections.scores.tolist() == pytest.approx([0.5, 0.9, 0.7])  # message order
    assert out.rejected == {"over_max_detections": 2}
    assert len(detections_from_msg(_array(), 100, 80).detections) == 0


# Values that pass float64 checks but break in the engine's float32 (issue 10, defect 5).
FLOAT32_BREAKERS = {
    "score_1e39": (_detection(50, 40, 20, 10, (("car", 1e39),)), "non_finite"),
    "score_minus_1e39": (_detection(50, 40, 20, 10, (("car", -1e39),)), "non_finite"),
    "size_1e-7": (_detection(50, 40, 1e-7, 1e-7), "non_positive_size"),
    "width_1e-7": (_detection(50, 40, 1e-7, 10), "non_positive_size"),
    "starts_1e-6_inside_right_edge": (
        _detection(100 - 1e-6 + 5, 40, 10, 10),  # x from 100 - 1e-6 to 110, clipped at 100
        "non_positive_size",
    ),
    "starts_1e-6_inside_bottom_edge": (_detection(50, 80 - 1e-6 + 5, 10, 10), "non_positive_size"),
    "nan_score": (_detection(50, 40, 20, 10, (("car", float("nan")),)), "non_finite"),
    "inf_center": (_detection(float("inf"), 40, 20, 10), "non_finite"),
    "negative_size": (_detection(50, 40, -20, 10), "non_positive_size"),
}


@pytest.mark.parametrize("case", sorted(FLOAT32_BREAKERS))
def test_a_detection_bad_in_float32_is_dropped_alone_and_the_rest_reach_the_engine(case):
    bad, reason = FLOAT32_BREAKERS[case]
    good = _detection(30, 30, 20, 10, (("car", 0.7),))
    out = detections_from_msg(_array(good, bad, _detection(70, 50, 10, 10)), 100, 80)
    assert dict(out.rejected) == {reason: 1}
    assert out.detections.boxes.tolist() == [[20, 25, 40, 35], [65, 45, 75, 55]]
    assert out.detections.scores.tolist() == pytest.approx([0.7, 0.9])
    # What the engine does with them: the very checks that refused the frame before.
    Detections(out.detections.boxes, out.detections.scores, out.detections.class_ids)
    assert out.detections.boxes.dtype == np.float32
    assert np.isfinite(out.detections.scores).all()


def test_tiny_but_float32_representable_boxes_and_scores_are_kept():
    out = detections_from_msg(
        _array(_detection(50, 40, 1e-3, 1e-3, (("car", 3e38),)), _detection(99.95, 40, 0.2, 1)),
        100,
        80,
    )
    assert not out.rejected and len(out.detections) == 2
    assert out.clipped == 1
