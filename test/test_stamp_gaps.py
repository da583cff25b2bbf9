"""Images lost before they reach the node (best-effort QoS) are counted from the gaps in
the image stamps (issue 12, defect 12): unit tests of the counter, and the node's
diagnostics when images are skipped."""

from __future__ import annotations

import pytest
from rclpy.lifecycle import TransitionCallbackReturn

from seg2track_ros.ros.stamp_gaps import StampGapCounter

from node_harness import RANDOM_WEIGHT_PARAMS, image_msg, in_process_node, scene

MS = 1_000_000


def test_known_rate_counts_every_missing_image():
    counter = StampGapCounter(expected_rate_hz=10.0)
    stamps = [0, 100, 200, 500, 600, 601 + 99, 1000]  # 300, 400 lost; then 800, 900
    missing = [counter.add(s * MS) for s in stamps]
    assert missing == [0, 0, 0, 2, 0, 0, 2]
    assert (counter.missed, counter.gaps) == (4, 2)


def test_jitter_below_the_tolerance_is_no_gap():
    counter = StampGapCounter(expected_rate_hz=10.0)
    for stamp in (0, 100, 240, 300, 449):  # up to 1.49 periods apart
        assert counter.add(stamp * MS) == 0
    assert counter.missed == 0


def test_unknown_rate_is_estimated_from_the_median_period():
    counter = StampGapCounter(expected_rate_hz=0.0, min_periods=5)
    stamps = [i * 33 for i in range(6)]  # 30 Hz, 5 periods: now known
    assert [counter.add(s * MS) for s in stamps] == [0] * 6
    assert counter.period_ns == pytest.approx(33 * MS)
    assert counter.add((5 * 33 + 4 * 33) * MS) == 3
    # A gap does not move the median: the next regular period is no gap.
    assert counter.add((9 * 33 + 33) * MS) == 0
    assert counter.missed == 3


def test_nothing_is_counted_before_the_rate_is_known():
    counter = StampGapCounter(min_periods=10)
    assert [counter.add(s * MS) for s in (0, 100, 900, 1000)] == [0, 0, 0, 0]
    assert counter.period_ns is None


def test_stamps_going_backwards_start_afresh():
    counter = StampGapCounter(expected_rate_hz=10.0)
    for stamp in (0, 100, 200, 50, 150):
        assert counter.add(stamp * MS) == 0
    assert counter.add(150 * MS) == 0  # a repeated stamp
    assert counter.missed == 0


@pytest.mark.parametrize("rate", [1.0, 0.0])
def test_node_diagnostics_count_images_missing_in_the_stamps(ros_context, rate):
    """Without this, 8 of 16 images lost at 1 Hz left every counter at zero."""
    node = in_process_node(
        ros_context,
        f"/gaps_{int(rate)}",
        {**RANDOM_WEIGHT_PARAMS, "mode": "lockstep", "expected_image_rate": rate},
    )
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        # 1 Hz stamps; 11 regular images (10 periods: enough to estimate), then 3 lost.
        for second in [*range(11), 14, 15]:
            node._on_image(image_msg(scene(second % 5), 1000 + second))
        values = node._diagnostic_values()
        assert values["images_missed"] == 3
        assert values["image_period_ms"] == 1000.0
        assert values["frames_in"] == 13
    finally:
        node._stop_processing()
        node.destroy_node()
