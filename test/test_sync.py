"""Stamp pairing of images and detections."""

from __future__ import annotations

import pytest

from seg2track_ros.ros.sync import StampSynchronizer

MS = 1_000_000


def _stamps(pairs):
    return [(p.stamp_ns, p.detections) for p in pairs]


def test_exact_pairing_in_either_arrival_order():
    sync = StampSynchronizer(timeout_ns=200 * MS)
    assert sync.add_image(100, "img100", now_ns=0) == []
    assert _stamps(sync.add_detections(100, "det100", now_ns=1)) == [(100, "det100")]
    # detections first
    assert sync.add_detections(200, "det200", now_ns=2) == []
    (pair,) = sync.add_image(200, "img200", now_ns=3)
    assert (pair.image, pair.detections, pair.received_ns) == ("img200", "det200", 3)


def test_image_without_detections_is_released_after_the_timeout():
    sync = StampSynchronizer(timeout_ns=50 * MS)
    sync.add_image(100, "img", now_ns=0)
    assert sync.poll(now_ns=49 * MS) == []
    assert _stamps(sync.poll(now_ns=50 * MS)) == [(100, None)]
    assert sync.pending_images == 0
    # its late detections are dropped, not paired with a later image
    sync.add_detections(100, "late", now_ns=51 * MS)
    assert sync.dropped_detections == 1
    sync.add_image(200, "img200", now_ns=52 * MS)
    assert _stamps(sync.poll(now_ns=200 * MS)) == [(200, None)]


def test_later_detections_release_earlier_waiting_images_in_order():
    sync = StampSynchronizer(timeout_ns=10_000 * MS)
    sync.add_image(100, "a", 0)
    sync.add_image(200, "b", 1)
    sync.add_image(300, "c", 2)
    assert _stamps(sync.add_detections(200, "det200", 3)) == [(100, None), (200, "det200")]
    assert sync.pending_images == 1


def test_approximate_pairing_within_slop():
    sync = StampSynchronizer(slop_ns=5 * MS, timeout_ns=10_000 * MS)
    sync.add_image(100 * MS, "img", 0)
    assert sync.add_detections(106 * MS, "too far", 1) == []
    assert _stamps(sync.add_detections(104 * MS, "near", 2)) == [(100 * MS, "near")]
    exact = StampSynchronizer(slop_ns=0, timeout_ns=10_000 * MS)
    exact.add_image(100 * MS, "img", 0)
    assert exact.add_detections(100 * MS + 1, "off by 1 ns", 1) == []


def test_buffers_are_bounded():
    sync = StampSynchronizer(timeout_ns=10_000 * MS, max_pending=3)
    released = []
    for stamp in range(1, 6):
        released += sync.add_image(stamp, f"img{stamp}", stamp)
    assert _stamps(released) == [(1, None), (2, None)]
    assert sync.pending_images == 3
    for stamp in range(100, 106):
        sync.add_detections(stamp, "future", 0)
    assert sync.dropped_detections == 3
    sync.reset()
    assert sync.pending_images == 0


def test_invalid_settings():
    with pytest.raises(ValueError):
        StampSynchronizer(slop_ns=-1)
    with pytest.raises(ValueError):
        StampSynchronizer(max_pending=0)


def test_rewind_when_stamps_go_backwards():
    sync = StampSynchronizer(timeout_ns=10_000 * MS)
    sync.add_image(500, "a", 0)
    sync.add_detections(500, "d", 1)
    assert not sync.rewind_if_before(600)
    assert sync.rewind_if_before(100)
    sync.add_image(100, "looped", 2)
    assert _stamps(sync.add_detections(100, "d100", 3)) == [(100, "d100")]


def test_images_released_without_detections_say_why():
    sync = StampSynchronizer(timeout_ns=50 * MS, max_pending=2)
    sync.add_image(100, "a", now_ns=0)
    (late,) = sync.poll(now_ns=60 * MS)
    assert (late.stamp_ns, late.unpaired) == (100, "timeout")
    sync.add_image(200, "b", now_ns=61 * MS)
    sync.add_image(300, "c", now_ns=62 * MS)
    (full,) = sync.add_image(400, "d", now_ns=63 * MS)  # a third waiting image
    assert (full.stamp_ns, full.unpaired) == (200, "queue_full")
    overtaken, paired = sync.add_detections(400, "det400", now_ns=64 * MS)
    assert (overtaken.stamp_ns, overtaken.unpaired) == (300, "overtaken")
    assert (paired.stamp_ns, paired.detections, paired.unpaired) == (400, "det400", None)


def test_detections_that_never_pair_are_counted_once():
    sync = StampSynchronizer(timeout_ns=50 * MS)
    for stamp in (10, 20, 30):
        sync.add_detections(stamp, f"det{stamp}", now_ns=0)  # their images never come
    sync.add_image(40, "img40", now_ns=1)
    sync.add_detections(40, "det40", now_ns=2)  # pairs; releasing 40 drops 10, 20, 30
    assert sync.take_dropped_detections() == 3
    assert sync.take_dropped_detections() == 0  # reported once
    sync.add_detections(35, "stale", now_ns=3)  # older than the last released image
    sync.add_detections(50, "waiting", now_ns=4)
    sync.reset()  # a detection still waiting at a reset never pairs either
    assert sync.take_dropped_detections() == 2
    assert sync.dropped_detections == 5


def test_images_waiting_at_a_reset_are_counted_once():
    """A rewind (stamps going backwards) or a stop resets the pairing: images still
    waiting for their detections are never released; they must not vanish uncounted."""
    sync = StampSynchronizer(timeout_ns=50 * MS)
    sync.add_image(10, "img10", now_ns=0)
    sync.add_detections(10, "det10", now_ns=0)  # released
    sync.add_image(20, "img20", now_ns=1)
    sync.add_image(30, "img30", now_ns=1)
    assert sync.pending_images == 2
    assert sync.rewind_if_before(5)
    assert sync.pending_images == 0
    assert sync.take_dropped_images() == 2
    assert sync.take_dropped_images() == 0  # reported once
    sync.add_image(6, "img6", now_ns=2)
    sync.reset()
    assert sync.take_dropped_images() == 1 and sync.dropped_images == 3
