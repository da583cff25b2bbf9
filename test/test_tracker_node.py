"""tracker_node as users run it: its installed executable in a subprocess, real SAM 2
(random weights, tiny, 64 px), real Fast DDS."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from lifecycle_msgs.msg import Transition
from std_srvs.srv import Trigger

from seg2track_ros.ros.conversions import rle_msg_to_mask

from node_harness import (
    RANDOM_WEIGHT_PARAMS,
    TRANSITIONS,
    NodeUnderTest,
    detections_msg,
    image_msg,
    scene,
)


@pytest.fixture(scope="module")
def lockstep(request):
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    node = NodeUnderTest(
        context,
        {
            **RANDOM_WEIGHT_PARAMS,
            "mode": "lockstep",
            "max_detections": 3,
            "max_image_pixels": 20000,
            "publish_overlay": True,
        },
        name="lockstep_tracker",
    )
    node.wait_active()
    yield node
    node.close()
    context.try_shutdown()


def test_every_frame_yields_consistent_outputs(lockstep):
    start = len(lockstep.received["tracks"])
    for frame in range(20):
        tracks = lockstep.send_and_wait(frame)
        assert tracks.header.frame_id == "camera"
    assert len(lockstep.received["tracks"]) - start == 20
    assert lockstep.spin_until(lambda: len(lockstep.received["instance_labels"]) >= 20)
    assert lockstep.spin_until(lambda: len(lockstep.received["overlay"]) >= 20)
    # outputs of one frame agree with each other
    tracks = lockstep.received["tracks"][-1]
    detections = next(
        d
        for d in reversed(lockstep.received["tracked_detections"])
        if d.header.stamp == tracks.header.stamp
    )
    labels_msg = next(
        m
        for m in reversed(lockstep.received["instance_labels"])
        if m.header.stamp == tracks.header.stamp
    )
    assert labels_msg.encoding == "mono16"
    labels = np.frombuffer(bytes(labels_msg.data), "<u2").reshape(labels_msg.height, -1)
    non_empty = []
    for obj in tracks.objects:
        mask = rle_msg_to_mask(obj.mask).astype(bool)
        assert (labels[mask] == obj.track_id).all()
        if mask.any():
            non_empty.append(str(obj.track_id))
    assert [d.id for d in detections.detections] == non_empty
    assert (labels > 0).sum() == sum(rle_msg_to_mask(o.mask).sum() for o in tracks.objects)
    assert tracks.objects, "no tracks at all: the test would be vacuous"
    assert non_empty, "all masks empty: the label comparison would be vacuous"


def test_reset_clears_tracks_and_ids_keep_increasing(lockstep):
    before = lockstep.send_and_wait(0, stamp_s=5000)
    assert before.objects
    highest = max(o.track_id for o in before.objects)
    response = lockstep.call(lockstep.reset, Trigger.Request())
    assert response.success, response.message
    after = lockstep.send_and_wait(1, stamp_s=5001)
    assert after.objects
    assert min(o.track_id for o in after.objects) > highest


def _bad_then_good(node, send_bad, reason, stamp):
    send_bad(stamp)
    good = node.send_and_wait(3, stamp_s=stamp + 1)
    assert good.header.stamp.sec == stamp + 1
    assert node.spin_until(lambda: int(node.diagnostics.get(f"rejected_{reason}", 0)) > 0, 10), (
        f"no rejected_{reason} in {node.diagnostics}"
    )


def _image_with(stamp, **changes):
    msg = image_msg(scene(0), stamp)
    for key, value in changes.items():
        setattr(msg, key, value)
    return msg


BAD_IMAGES = {
    "data_size_mismatch_short": (dict(data=bytes(72 * 288 - 1)), "data_size_mismatch"),
    "data_size_mismatch_long": (dict(data=bytes(72 * 288 + 3)), "data_size_mismatch"),
    "step_too_small": (dict(step=100), "step_too_small"),
    "zero_width": (dict(width=0, step=0, data=b""), "empty_image"),
    "unsupported_encoding": (dict(encoding="32FC1"), "unsupported_encoding"),
    "too_many_pixels": (
        dict(height=300, width=100, step=300, data=bytes(300 * 300)),
        "too_many_pixels",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_images_are_counted_and_the_next_frame_is_processed(lockstep, case):
    changes, reason = BAD_IMAGES[case]
    stamp = 10_000 + 10 * sorted(BAD_IMAGES).index(case)
    _bad_then_good(
        lockstep, lambda s: lockstep.images.publish(_image_with(s, **changes)), reason, stamp
    )


BAD_DETECTIONS = {
    "non_finite": (dict(boxes=[(math.nan, 10, 30, 40), (10, 10, 30, 40)]), "non_finite"),
    "non_positive_size": (dict(boxes=[(30, 10, 30, 40)]), "non_positive_size"),
    "outside_image": (dict(boxes=[(500, 10, 530, 40)]), "outside_image"),
    "missing_class_id": (dict(boxes=[(10, 10, 30, 40)], classes=[None]), "missing_class_id"),
    "over_max_detections": (
        dict(boxes=[(5 * i, 5, 5 * i + 10, 30) for i in range(6)]),
        "over_max_detections",
    ),
    # Fine in float64, broken in the engine's float32: these lost the whole frame.
    "score_1e39": (
        dict(boxes=[(10, 10, 30, 40), (40, 10, 60, 40)], scores=[0.9, 1e39]),
        "non_finite",
    ),
    "size_1e-7": (
        dict(boxes=[(10, 10, 30, 40), (50, 20, 50 + 1e-7, 20 + 1e-7)]),
        "non_positive_size",
    ),
    "starts_1e-6_inside_right_edge": (
        dict(boxes=[(10, 10, 30, 40), (96 - 1e-6, 10, 110, 40)]),
        "non_positive_size",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DETECTIONS))
def test_bad_detections_are_counted_and_the_frame_still_tracked(lockstep, case):
    kwargs, reason = BAD_DETECTIONS[case]
    stamp = 20_000 + 10 * sorted(BAD_DETECTIONS).index(case)
    lockstep.diagnostics = {}
    assert lockstep.spin_until(lambda: "frames_in" in lockstep.diagnostics, 10)
    before = int(lockstep.diagnostics.get(f"rejected_{reason}", 0))
    tracked = lockstep.send_and_wait(2, stamp_s=stamp, **kwargs)
    assert tracked.header.stamp.sec == stamp  # the frame itself is still tracked
    assert lockstep.spin_until(
        lambda: int(lockstep.diagnostics.get(f"rejected_{reason}", 0)) > before, 10
    ), lockstep.diagnostics
    assert "rejected_processing_error" not in lockstep.diagnostics
    assert lockstep.send_and_wait(3, stamp_s=stamp + 1).header.stamp.sec == stamp + 1


def test_partly_outside_box_is_clipped_and_used(lockstep):
    lockstep.call(lockstep.reset, Trigger.Request())
    out = lockstep.send_and_wait(0, stamp_s=30_000, boxes=[(-20, -10, 30, 40)])
    assert len(out.objects) == 1


def test_stamps_going_backwards_reset_the_tracks(lockstep):
    lockstep.send_and_wait(0, stamp_s=40_000)
    before = lockstep.send_and_wait(1, stamp_s=40_001)
    out = lockstep.send_and_wait(2, stamp_s=39_000)  # backwards
    assert min(o.track_id for o in out.objects) > max(o.track_id for o in before.objects)
    assert lockstep.spin_until(lambda: "rejected_stamp_backwards" in lockstep.diagnostics, 10)


def test_image_size_change_resets_the_tracks(lockstep):
    before = lockstep.send_and_wait(0, stamp_s=50_000)
    count = len(lockstep.received["tracks"])
    image = image_msg(np.zeros((40, 60, 3), np.uint8) + 90, 50_001)
    lockstep.images.publish(image)
    lockstep.detections.publish(detections_msg(image.header, [(5, 5, 30, 30)]))
    assert lockstep.spin_until(lambda: len(lockstep.received["tracks"]) > count)
    out = lockstep.received["tracks"][-1]
    assert min(o.track_id for o in out.objects) > max(o.track_id for o in before.objects)
    assert lockstep.spin_until(lambda: "rejected_image_size_changed" in lockstep.diagnostics, 10)


def _fresh_diagnostics(node) -> dict[str, str]:
    node.diagnostics = {}
    assert node.spin_until(lambda: "frames_in" in node.diagnostics, 10)
    return node.diagnostics


def test_image_without_detections_is_tracked_after_the_timeout(lockstep):
    lockstep.send_and_wait(0, stamp_s=60_000)
    key = "images_without_detections_timeout"
    before = int(_fresh_diagnostics(lockstep).get(key, 0))
    count = len(lockstep.received["tracks"])
    lockstep.images.publish(image_msg(scene(1), 60_001))  # detector skipped this frame
    assert lockstep.spin_until(lambda: len(lockstep.received["tracks"]) > count, 10)
    assert lockstep.received["tracks"][-1].header.stamp.sec == 60_001
    assert lockstep.spin_until(lambda: int(lockstep.diagnostics.get(key, 0)) == before + 1, 10), (
        lockstep.diagnostics
    )
    assert "image tracked without detections" in lockstep.output()


def test_detections_that_never_pair_are_counted(lockstep):
    key = "rejected_unpaired_detections"
    before = int(_fresh_diagnostics(lockstep).get(key, 0))
    for stamp in (65_000, 65_001, 65_002):  # a detector output whose images never came
        header = image_msg(scene(0), stamp).header
        lockstep.detections.publish(detections_msg(header, [(10, 10, 30, 40)]))
    lockstep.spin_until(lambda: False, 0.3)
    lockstep.send_and_wait(0, stamp_s=65_010)  # tracking it drops the three older ones
    assert lockstep.spin_until(lambda: int(lockstep.diagnostics.get(key, 0)) == before + 3, 10), (
        lockstep.diagnostics
    )
    assert "never paired with an image" in lockstep.output()


def test_lifecycle_deactivate_releases_and_activate_resumes(lockstep):
    lockstep.send_and_wait(0, stamp_s=70_000)
    assert lockstep.transition(Transition.TRANSITION_DEACTIVATE)
    assert lockstep.state() == "inactive"
    response = lockstep.call(lockstep.reset, Trigger.Request())
    assert not response.success and "no model" in response.message  # model released
    count = len(lockstep.received["tracks"])
    lockstep.send(1, stamp_s=70_001)
    lockstep.spin_until(lambda: False, 1.5)
    assert len(lockstep.received["tracks"]) == count  # no output while inactive
    assert lockstep.transition(Transition.TRANSITION_ACTIVATE)
    assert lockstep.state() == "active"
    lockstep.wait_active()
    assert lockstep.send_and_wait(2, stamp_s=70_002).header.stamp.sec == 70_002


def test_invalid_parameter_fails_configure_and_node_survives(ros_context):
    node = NodeUnderTest(
        ros_context,
        {**RANDOM_WEIGHT_PARAMS, "tracker.removal_quality": 3.0},
        name="misconfigured_tracker",
    )
    try:
        assert node.spin_until(lambda: "tracker.removal_quality" in node.output(), 60), (
            node.output()
        )
        assert node.state() == "unconfigured"
        assert node.process.poll() is None  # alive, can be configured again
        missing = NodeUnderTest(
            ros_context,
            {**RANDOM_WEIGHT_PARAMS, "checkpoint": "/nonexistent/sam2.pt"},
            name="no_checkpoint_tracker",
        )
        try:
            assert missing.spin_until(
                lambda: "seg2track download-checkpoints" in missing.output(), 60
            ), missing.output()
            assert missing.state() == "unconfigured"
        finally:
            missing.close()
    finally:
        node.close()


def test_realtime_flood_drops_frames_and_memory_stays_bounded(ros_context):
    node = NodeUnderTest(ros_context, {**RANDOM_WEIGHT_PARAMS, "mode": "realtime"}, "flood")
    try:
        node.wait_active()
        node.send_and_wait(0, stamp_s=1)
        rss = []
        stamp = 100
        for _round in range(2):
            for frame in range(45):  # 1.5 s at 30 Hz
                node.send(frame % 20, stamp_s=stamp)
                stamp += 1
                node.spin_until(lambda: False, 1 / 30)
            node.spin_until(lambda: False, 2.0)
            rss.append(node.rss_kb())
        assert node.spin_until(lambda: int(node.diagnostics.get("frames_dropped", 0)) > 0, 10)
        processed = int(node.diagnostics["frames_processed"])
        assert processed < int(node.diagnostics["frames_in"])
        assert rss[1] - rss[0] < 50_000, f"RSS grew {rss[1] - rss[0]} kB in a flood round"
    finally:
        node.close()


def test_lockstep_processes_every_frame_of_a_burst(lockstep):
    count = len(lockstep.received["tracks"])
    for frame in range(15):
        lockstep.send(frame, stamp_s=80_000 + frame)
        time.sleep(1 / 30)
    assert lockstep.spin_until(lambda: len(lockstep.received["tracks"]) >= count + 15, 120), (
        [m.header.stamp.sec for m in lockstep.received["tracks"][count:]],
        lockstep.diagnostics,
        lockstep.output()[-3000:],
    )
    stamps = [m.header.stamp.sec for m in lockstep.received["tracks"][count:]]
    assert stamps == list(range(80_000, 80_015)), stamps


def test_lifecycle_cycles_keep_inputs_single_and_the_idle_node_quiet(ros_context):
    """configure/activate/deactivate/cleanup cycles with frames while active, as a
    lifecycle manager drives the executable: one subscription per input and one publisher
    per output on the graph after every cycle, and no busy executor afterwards."""
    node = NodeUnderTest(ros_context, {**RANDOM_WEIGHT_PARAMS, "mode": "lockstep"}, "cycled")
    expected = {
        "image": 1,
        "detections": 1,
        "tracks": 1,
        "tracked_detections": 1,
        "instance_labels": 1,
        "diagnostics": 1,
    }
    try:
        node.wait_active()
        stamp = 1
        for cycle in range(3):
            assert node.send_and_wait(0, stamp_s=stamp).header.stamp.sec == stamp
            stamp += 1
            for name in ("deactivate", "cleanup", "configure", "activate"):
                assert node.transition(TRANSITIONS[name]), f"{name} failed in cycle {cycle}"
            assert node.spin_until(lambda: node.graph_counts() == expected, 10), (
                f"cycle {cycle}: {node.graph_counts()}"
            )
        node.send_and_wait(1, stamp_s=stamp)
        # A lone detections message (the case that used to leave the executor spinning).
        node.detections.publish(detections_msg(image_msg(scene(0), stamp + 1).header, []))
        node.spin_until(lambda: False, 1.0)
        before, started = node.cpu_seconds(), time.monotonic()
        node.spin_until(lambda: False, 3.0)
        share = (node.cpu_seconds() - before) / (time.monotonic() - started)
        assert share < 0.05, f"idle tracker_node used {share:.1%} of a core"
        assert node.graph_counts() == expected
    finally:
        node.close()


def test_an_engine_fault_loses_exactly_its_own_frame(ros_context):
    """inject_fault_every (the engine's test hook) makes Tracker.step fail every 4th
    frame; each fault costs that frame and nothing after it (the stream used to wedge)."""
    node = NodeUnderTest(
        ros_context,
        {**RANDOM_WEIGHT_PARAMS, "mode": "lockstep", "inject_fault_every": 4},
        "faulty",
    )
    try:
        node.wait_active()
        for frame in range(1, 13):
            node.send(frame % 20, stamp_s=frame)
            node.spin_until(lambda: False, 0.02)
        assert node.spin_until(lambda: len(node.received["tracks"]) >= 9, 120), node.output()
        assert node.spin_until(
            lambda: int(node.diagnostics.get("rejected_engine_error", 0)) == 3, 10
        ), node.diagnostics
        node.spin_until(lambda: False, 1.0)  # nothing else arrives late
        stamps = [m.header.stamp.sec for m in node.received["tracks"]]
        assert stamps == [1, 2, 3, 5, 6, 7, 9, 10, 11], stamps
        assert "injected fault" in node.output()
        # and tracking goes on with new tracks after the automatic reset
        assert node.send_and_wait(3, stamp_s=13).objects
    finally:
        node.close()
