"""Field-level fuzzing (hypothesis) of the one place that turns ROS messages into arrays
(seg2track_ros/ros/conversions.py): whatever the fields hold, a conversion either gives
an array / detections the engine accepts, or refuses the input with a known reason; it
never raises anything else (issue 10, the fuzz suite's field-level half)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import Image

from seg2track_ros.engine.config import TrackerConfig
from seg2track_ros.engine.detection_masks import DetectionMaskSegmenter
from seg2track_ros.engine.tracker import Tracker
from seg2track_ros.ros.conversions import (
    IMAGE_ENCODINGS,
    ImageConverter,
    RejectedInput,
    detections_from_msg,
    image_to_rgb,
)
from seg2track_ros.stress.messages import RawDetection, detections_msg

IMAGE_REASONS = {
    "empty_image",
    "unsupported_encoding",
    "too_many_pixels",
    "step_too_small",
    "data_size_mismatch",
}
DETECTION_REASONS = {
    "missing_class_id",
    "non_finite",
    "non_positive_size",
    "outside_image",
    "over_max_detections",
}
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Sizes around the interesting edges (0, 1, small), and a few huge claims.
dimension = st.one_of(st.integers(0, 12), st.integers(2**20, 2**32 - 1))
encoding = st.one_of(st.sampled_from(sorted(IMAGE_ENCODINGS)), st.text(max_size=12))


@st.composite
def images(draw):
    height, width = draw(dimension), draw(dimension)
    enc = draw(encoding)
    channels = IMAGE_ENCODINGS.get(enc, 3)
    natural = (width * channels) % 2**32
    step = draw(st.one_of(st.just(natural), st.integers(0, 2**32 - 1), st.integers(0, 64)))
    consistent = step * height if step * height <= 4096 else 0
    length = draw(st.one_of(st.just(consistent), st.integers(0, 4096)))
    data = (
        bytes(draw(st.binary(min_size=length, max_size=length))) if length < 64 else bytes(length)
    )
    return Image(height=height, width=width, encoding=enc, step=step, data=data)


@FUZZ
@given(msg=images(), max_pixels=st.one_of(st.none(), st.integers(1, 10_000)))
def test_image_conversion_gives_rgb_or_a_known_reason(msg, max_pixels):
    try:
        rgb = image_to_rgb(msg, max_pixels)
    except RejectedInput as error:
        assert error.reason in IMAGE_REASONS, error.reason
        # the converter the node uses refuses the same input for the same reason
        try:
            ImageConverter(max_pixels, use_cv_bridge=False)(msg)
        except RejectedInput as again:
            assert again.reason == error.reason
        else:
            raise AssertionError("ImageConverter accepted what image_to_rgb refused")
        return
    assert rgb.shape == (msg.height, msg.width, 3) and rgb.dtype == np.uint8
    assert msg.encoding in IMAGE_ENCODINGS and msg.height * msg.width > 0
    assert len(msg.data) == msg.step * msg.height


anything = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e-6, 1e-6),
    st.sampled_from([0.0, -0.0, 1e-7, 1e39, -1e39, 5e-324, 159.999999, 160.000001]),
)
coordinate = st.one_of(st.floats(-50, 250), anything)
class_id = st.one_of(st.none(), st.just(""), st.just(" "), st.text(max_size=6))
raw_detection = st.builds(
    RawDetection,
    cx=coordinate,
    cy=coordinate,
    size_x=st.one_of(st.floats(0, 80), anything),
    size_y=st.one_of(st.floats(0, 80), anything),
    score=st.one_of(st.floats(0, 1), anything),
    class_id=class_id,
    theta=st.one_of(st.just(0.0), anything),
)


@FUZZ
@given(
    raws=st.lists(raw_detection, max_size=12),
    width=st.integers(1, 200),
    height=st.integers(1, 200),
    max_detections=st.one_of(st.none(), st.integers(1, 5)),
)
def test_detections_are_valid_for_the_engine_or_dropped_with_a_reason(
    raws, width, height, max_detections
):
    converted = detections_from_msg(detections_msg(1, raws), width, height, max_detections)
    detections = converted.detections
    assert set(converted.rejected) <= DETECTION_REASONS, converted.rejected
    assert len(detections) + sum(converted.rejected.values()) == len(raws)
    if max_detections is not None:
        assert len(detections) <= max_detections
    boxes = detections.boxes
    assert boxes.dtype == np.float32 and detections.scores.dtype == np.float32
    assert np.isfinite(boxes).all() and np.isfinite(detections.scores).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert (boxes[:, [0, 2]] >= 0).all() and (boxes[:, [0, 2]] <= width).all()
    assert (boxes[:, [1, 3]] >= 0).all() and (boxes[:, [1, 3]] <= height).all()
    assert all(c.strip() for c in detections.class_ids)
    # Every detection that came through is one the message really held (no invented ones).
    sent = {r.class_id.strip() for r in raws if r.class_id is not None}
    assert set(detections.class_ids) <= sent
    # The engine takes whatever the conversion lets through: one bad detection never
    # costs a frame (issue 10, defect 5).
    tracker = Tracker(TrackerConfig(), DetectionMaskSegmenter())
    result = tracker.step(np.zeros((height, width, 3), np.uint8), detections)
    assert result.labels.shape == (height, width)


@FUZZ
@given(score=anything, size=anything)
def test_a_bad_value_drops_only_its_own_detection(score, size):
    good = RawDetection(50.0, 40.0, 20.0, 10.0, score=0.9, class_id="car")
    bad = RawDetection(80.0, 40.0, size, 10.0, score=score, class_id="car")
    converted = detections_from_msg(detections_msg(1, [good, bad]), 160, 120)
    assert len(converted.detections) in (1, 2)
    np.testing.assert_allclose(converted.detections.boxes[0], [40, 35, 60, 45])
    kept_bad = len(converted.detections) == 2
    if kept_bad:
        with np.errstate(over="ignore"):
            assert math.isfinite(np.float32(score)) and np.float32(size) > 0
    else:
        assert sum(converted.rejected.values()) == 1
