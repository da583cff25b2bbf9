"""The reliability suite at short sizes (issue 10's Targets, what can be asserted
honestly at that size): each suite drives the real tracker_node executable over DDS.

- soak: every frame answered, many track births, no gross RSS growth (a slope of
  1 MiB per 1,000 frames cannot be told from noise over 200 frames: the full run,
  `seg2track stress`, checks that; README "Reliability");
- fuzz: zero stalls, every good frame after a burst answered, every diagnostics counter
  exactly what the malformed messages imply, every kind of malformed input sent;
- lifecycle: every transition succeeds, one subscription per input and one publisher
  per output in every cycle, none after cleanup, RSS growth < 5 MiB, idle CPU < 5 %;
- fault: exactly the faulted frames lost, the next frame tracked, each fault counted.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from seg2track_ros.stress import suites
from seg2track_ros.stress.fuzz import Expectation, FuzzPlan, Item
from seg2track_ros.stress.scenes import Scene, stamp_of

# A per-frame leak of the smallest soak image (120 x 160 x 3 bytes = 56 KiB) shows up as
# 56 MiB per 1,000 frames; noise over 200 frames stays well below this bound.
SHORT_SOAK_SLOPE_BOUND = 25.0

EVERY_REASON = {
    "rejected_data_size_mismatch",
    "rejected_empty_image",
    "rejected_step_too_small",
    "rejected_too_many_pixels",
    "rejected_unsupported_encoding",
    "rejected_non_finite",
    "rejected_non_positive_size",
    "rejected_outside_image",
    "rejected_missing_class_id",
    "rejected_over_max_detections",
    "rejected_unpaired_detections",
    "rejected_stamp_backwards",
    "rejected_image_size_changed",
    "rejected_unpaired_images",
    "images_without_detections",
    "frames_dropped",
}


def _failed_rows(result) -> list:
    return [row for row in result.rows() if row.passed is False]


def test_rss_slope_uses_the_second_half():
    flat_then_rising = [(f, 1000) for f in range(0, 500, 100)] + [
        (f, 1000 + (f - 500) * 2) for f in range(500, 1001, 100)
    ]
    # second half: frames 500..1000, +2 KiB per frame = 1000 * 2 / 1024 MiB per 1,000 frames
    assert suites.rss_slope(flat_then_rising) == pytest.approx(2000 / 1024)
    assert suites.rss_slope([(0, 1), (100, 2)]) is None  # one sample in the second half


def test_rss_slope_is_not_swung_by_one_spike_near_the_end():
    # Flat at 500 MiB but for one sample 8 MiB up, second to last: a least-squares line
    # through the second half rises by several MiB per 1,000 frames, Theil-Sen stays flat.
    flat = [(f, 500 * 1024) for f in range(0, 2000, 100)]
    flat[-2] = (flat[-2][0], flat[-2][1] + 8 * 1024)
    frames, kib = zip(*flat[len(flat) // 2 :], strict=True)
    least_squares = np.polyfit(frames, np.array(kib) / 1024, 1)[0] * 1000
    assert least_squares > 2.0
    assert suites.rss_slope(flat) == pytest.approx(0.0)


def test_bucket_medians_take_the_level_of_each_bucket():
    # one reading per frame, a 6 MiB transient in two frames of the second bucket
    readings = [(f, 100 * 1024) for f in range(30)]
    readings[12] = (12, 106 * 1024)
    readings[13] = (13, 106 * 1024)
    assert suites.bucket_medians(readings, 10) == [(0, 102400), (10, 102400), (20, 102400)]


def test_fuzz_expectations_follow_the_nodes_rules():
    scene = Scene(seed=1)
    plan = FuzzPlan(scene, seed=1)
    expected = Expectation()
    expected.add(plan.good_frame(0))
    backwards = plan.kinds["image_stamp_backwards"](0, stamp_of(0) + 1)
    size_change = plan.kinds["image_size_change"](0, stamp_of(0) + 2)
    never_paired = plan.kinds["image_never_paired"](0, stamp_of(0) + 3)
    for item in (backwards, size_change, never_paired, plan.good_frame(1)):
        expected.add(item)
    assert backwards.stamp < stamp_of(0) and backwards.wait_for_receipt
    assert expected.rejected["stamp_backwards"] == 1
    assert expected.rejected["image_size_changed"] == 2  # there and back
    assert expected.images_without_detections == 1  # the never-paired image
    assert len(expected.tracked_stamps) == 5
    rejected = Item("x", rejected={"empty_image": 1})
    expected.add(rejected)
    assert len(expected.tracked_stamps) == 5


def test_soak_short():
    result = suites.run_soak("detection-masks", 200, sample_every=20, assert_slope=False)
    assert not _failed_rows(result), result.rows()
    assert result.outputs == result.frames_sent == 200
    assert result.track_births >= 10
    assert len(result.rss_samples) == 10  # medians of 20 frames each
    assert result.rss_slope_mib_per_1000 < SHORT_SOAK_SLOPE_BOUND, result.rss_samples


def test_sam2_soak_short():
    result = suites.run_soak("sam2", 20, sample_every=5, assert_slope=False)
    assert not _failed_rows(result), result.rows()
    assert result.outputs == result.frames_sent == 20
    assert result.track_births >= 4


def test_fuzz_short():
    result = suites.run_fuzz(200)
    assert not _failed_rows(result), result.rows()
    assert result.malformed >= 200
    assert result.good_frames_without_output == 0 and result.good_frames > 20
    assert set(result.kinds) == set(FuzzPlan(Scene()).kinds) | {"good"}
    counted = {k for k, v in result.expected_counters.items() if v > 0}
    assert counted >= EVERY_REASON, EVERY_REASON - counted
    assert result.observed_counters == result.expected_counters


def test_lifecycle_short():
    result = suites.run_lifecycle(10)
    assert not _failed_rows(result), result.rows()
    assert result.cycles == 10 and result.transitions == 40
    assert result.outputs == result.frames_sent == 30
    assert all(set(c.values()) == {1} for c in result.graph_counts)
    assert all(set(c.values()) == {0} for c in result.unconfigured_counts)


def test_fault_short():
    result = suites.run_fault(110, every=50)
    assert not _failed_rows(result), result.rows()
    assert result.lost_frames == result.faulted_frames == [49, 99]
    assert result.next_frame_outputs == result.faults_followed == 2
    assert result.engine_errors_counted == 2


def test_command_prints_and_writes_the_table(tmp_path, capsys):
    from seg2track_ros.cli import main

    out = tmp_path / "stress"
    argv = ["stress", "--short", "--suites", "fault", "--fault-frames", "45"]
    assert main([*argv, "--fault-every", "20", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| engine fault | frames lost / faults injected | 2 / 2" in printed
    report = json.loads((out / "stress.json").read_text())
    assert report["passed"] is True and report["suites"][0]["lost_frames"] == [19, 39]
    assert "CPU cores" in report["machine"]
    assert (out / "stress.md").read_text().count("| engine fault |") >= 5
    assert "--fault-frames 45 " in report["command"]
    assert "--fault-every 20 " in report["command"]
    assert main(["stress", "--frames", "0"]) == 1  # refused before any node starts
    assert capsys.readouterr().err.strip() == "seg2track: error: --frames must be >= 1, got 0"
