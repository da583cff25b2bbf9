"""The four stress suites. Each starts its own tracker_node (the installed executable),
drives it over DDS with bounded loops (a frame count and a deadline), and returns a
result whose `rows()` are the table lines: a figure, its value, the target (issue 10's
Targets) and whether it was met (None where a figure has no target).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from seg2track_ros.stress.driver import NodeDriver
from seg2track_ros.stress.messages import box_detections, detections_msg, image_msg
from seg2track_ros.stress.scenes import Scene, stamp_of

KIB_PER_MIB = 1024
# Every node here: lockstep (each frame tracked, so outputs can be counted against
# inputs), reliable inputs with room for a burst, diagnostics often, and a long
# sync_timeout: on a loaded machine a large detections message (10k detections) can
# take longer than the default 0.2 s to arrive, and its image would then be tracked
# without it. Images that never get detections do not wait for it: the next frame's
# detections release them at once ("overtaken").
COMMON_PARAMS = {
    "input_reliability": "reliable",
    "input_depth": 100,
    "diagnostics_period": 0.2,
    "sync_timeout": 5.0,
}
SAM2_PARAMS = {"segmenter": "sam2", "model": "tiny", "checkpoint": "random", "image_size": 128}
RSS_SLOPE_TARGET = 1.0  # MiB per 1,000 frames after warm-up
LIFECYCLE_RSS_TARGET = 5.0  # MiB over the cycles
IDLE_CPU_TARGET = 0.05  # of one core


@dataclass
class Row:
    figure: str
    value: str
    target: str = ""
    passed: bool | None = None


@dataclass
class SuiteResult:
    suite: str
    duration_s: float = 0.0
    node_alive: bool = True
    node_exit_code: int | None = None
    broken_log_lines: int = 0  # tracebacks / crashes in the node's output
    timed_out: str | None = None  # what was being waited for when time ran out
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[Row]:
        rows = [
            Row("node alive to the end, no traceback", self._alive_text(), "yes", self._healthy()),
        ]
        if self.timed_out:
            rows.append(Row("stall", self.timed_out, "none", False))
        return rows

    def _alive_text(self) -> str:
        alive = "yes" if self.node_alive else "no (exited)"
        return f"{alive}, {self.broken_log_lines} tracebacks"

    def _healthy(self) -> bool:
        return self.node_alive and self.broken_log_lines == 0

    @property
    def passed(self) -> bool:
        return all(row.passed is not False for row in self.rows())

    def as_dict(self) -> dict:
        import dataclasses

        out = dataclasses.asdict(self)
        out["passed"] = self.passed
        out["rows"] = [dataclasses.asdict(r) for r in self.rows()]
        return out


def _finish(result: SuiteResult, driver: NodeDriver, started: float) -> None:
    result.node_alive = driver.alive()
    result.broken_log_lines = driver.broken_log_lines()
    driver.close()
    result.node_exit_code = driver.exit_code
    result.duration_s = round(time.monotonic() - started, 1)


def rss_slope(samples: list[tuple[int, int]]) -> float | None:
    """Slope of RSS over the second half of `samples` ((frame, KiB) pairs; the first
    half is warm-up), in MiB per 1,000 frames: the Theil-Sen estimate (the median of
    the slopes between every two samples, scipy.stats.theilslopes), which one spike or
    one glibc heap step near either end cannot swing the way it swings a least-squares
    line. None with fewer than two samples in the second half."""
    from scipy.stats import theilslopes

    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        return None
    frames = np.array([f for f, _ in half], dtype=np.float64)
    mib = np.array([k for _, k in half], dtype=np.float64) / KIB_PER_MIB
    if np.ptp(frames) == 0:
        return None
    return float(theilslopes(mib, frames).slope * 1000)


def bucket_medians(readings: list[tuple[int, int]], every: int) -> list[tuple[int, int]]:
    """(first frame of the bucket, median KiB) for each `every` frames of `readings`
    ((frame, KiB), one per frame sent). One reading of RSS catches whatever the frames
    in flight hold at that moment (a few MiB up or down); the median over a bucket is
    the level the process sits at."""
    buckets: dict[int, list[int]] = {}
    for frame, kib in readings:
        buckets.setdefault(frame // every * every, []).append(kib)
    return [(start, int(np.median(values))) for start, values in sorted(buckets.items())]


# ------------------------------------------------------------------------- soak
@dataclass
class SoakResult(SuiteResult):
    segmenter: str = ""
    frames_requested: int = 0
    frames_sent: int = 0
    outputs: int = 0
    track_births: int = 0
    time_cap_s: float | None = None  # set when the run stopped at its time cap, not a stall
    # (first frame of a bucket of `sample_every` frames, median KiB of one reading per frame)
    rss_samples: list[tuple[int, int]] = field(default_factory=list)
    rss_slope_mib_per_1000: float | None = None
    assert_slope: bool = True  # False for runs too short for an honest slope

    def rows(self) -> list[Row]:
        rows = super().rows()
        if self.time_cap_s is not None:
            rows.append(
                Row(
                    "frames run (stopped at the time cap, node still answering)",
                    f"{self.frames_sent} of {self.frames_requested} in {self.time_cap_s:g} s",
                    str(self.frames_requested),
                    False,
                )
            )
        rows.append(
            Row(
                "outputs / frames sent",
                f"{self.outputs} / {self.frames_sent}",
                "all",
                self.outputs == self.frames_sent and self.frames_sent > 0,
            )
        )
        rows.append(Row("track births", str(self.track_births)))
        if self.rss_samples:
            first, last = self.rss_samples[0][1], self.rss_samples[-1][1]
            rows.append(
                Row(
                    f"RSS median of the first -> last {self._sample_every()} frames (MiB)",
                    f"{first / KIB_PER_MIB:.1f} -> {last / KIB_PER_MIB:.1f}",
                )
            )
        slope = self.rss_slope_mib_per_1000
        rows.append(
            Row(
                "RSS slope, second half, Theil-Sen (MiB / 1,000 frames)",
                "n/a" if slope is None else f"{slope:+.2f}",
                f"< {RSS_SLOPE_TARGET:g}" if self.assert_slope else "(run too short)",
                (slope is not None and slope < RSS_SLOPE_TARGET) if self.assert_slope else None,
            )
        )
        return rows

    def _sample_every(self) -> int:
        if len(self.rss_samples) < 2:
            return 0
        return self.rss_samples[1][0] - self.rss_samples[0][0]


# How long the in-flight frames get to come back when the soak reaches its time cap:
# if they do, the run was cut by the cap (reported as such); if not, the node stalled.
TIME_CAP_GRACE_S = 60.0


def run_soak(
    segmenter: str,
    frames: int,
    *,
    sample_every: int = 100,
    window: int = 4,
    size: tuple[int, int] = (120, 160),
    objects: int = 4,
    lifetime: int = 40,
    device: str = "cpu",
    max_seconds: float = 3600.0,
    assert_slope: bool = True,
    seed: int = 0,
) -> SoakResult:
    """`frames` frames with objects born and ending all the time; up to `window` frames
    in flight; RSS read after every frame sent and summarised as the median of each
    `sample_every` frames (`bucket_medians`)."""
    started = time.monotonic()
    deadline = started + max_seconds
    name = f"soak ({segmenter})"
    params = {**COMMON_PARAMS, "segmenter": segmenter, "device": device}
    if segmenter == "sam2":
        params.update(SAM2_PARAMS)
    result = SoakResult(
        name, segmenter=segmenter, frames_requested=frames, assert_slope=assert_slope
    )
    scene = Scene(*size, objects=objects, lifetime=lifetime, seed=seed)
    driver = NodeDriver(f"soak_{segmenter}", params)
    readings: list[tuple[int, int]] = []
    try:
        driver.wait_ready(min(300.0, max_seconds))
        sent: list[int] = []

        def in_flight() -> int:
            return sum(s not in driver.outputs for s in sent[-window:])

        for frame in range(frames):
            if not driver.spin_until(
                lambda: in_flight() < window, max(0.0, deadline - time.monotonic())
            ):
                if driver.wait_outputs(sent, TIME_CAP_GRACE_S):
                    result.time_cap_s = round(max_seconds, 1)
                else:
                    result.timed_out = f"frame {frame - window} (window of {window})"
                break
            stamp = stamp_of(frame)
            driver.publish(
                image_msg(scene.image(frame), stamp),
                detections_msg(stamp, box_detections(scene.boxes(frame))),
            )
            sent.append(stamp)
            readings.append((frame, driver.rss_kib()))
        finished = result.timed_out is None and result.time_cap_s is None
        last_wait = max(TIME_CAP_GRACE_S, deadline - time.monotonic())
        if finished and not driver.wait_outputs(sent, last_wait):
            result.timed_out = "the last outputs"
        result.frames_sent = len(sent)
        result.outputs = sum(1 for s in sent if s in driver.outputs)
        result.track_births = len(driver.track_ids)
        result.rss_samples = bucket_medians(readings, sample_every)
        result.rss_slope_mib_per_1000 = rss_slope(result.rss_samples)
    finally:
        _finish(result, driver, started)
    return result


# ------------------------------------------------------------------------- fuzz
@dataclass
class FuzzResult(SuiteResult):
    malformed: int = 0
    bursts: int = 0
    good_frames: int = 0
    good_frames_without_output: int = 0
    outputs_expected: int = 0
    outputs_received: int = 0
    images_sent: int = 0
    frames_in: int = 0
    expected_counters: dict[str, int] = field(default_factory=dict)
    observed_counters: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)

    def rows(self) -> list[Row]:
        rows = super().rows()
        rows.append(Row("malformed messages / bursts", f"{self.malformed} / {self.bursts}"))
        rows.append(
            Row(
                "good frame after each burst: output",
                f"{self.good_frames - self.good_frames_without_output} / {self.good_frames}",
                "all (zero stalls)",
                self.good_frames > 0 and self.good_frames_without_output == 0,
            )
        )
        rows.append(
            Row(
                "outputs / frames that must be tracked",
                f"{self.outputs_received} / {self.outputs_expected}",
                "equal",
                self.outputs_received == self.outputs_expected,
            )
        )
        rows.append(
            Row(
                "images received by the node / sent",
                f"{self.frames_in} / {self.images_sent}",
                "equal",
                self.frames_in == self.images_sent,
            )
        )
        wrong = self.counter_mismatches()
        rows.append(
            Row(
                f"diagnostics counters equal to the expected ({len(self.expected_counters)})",
                "all" if not wrong else "; ".join(wrong),
                "all",
                not wrong,
            )
        )
        return rows

    def counter_mismatches(self) -> list[str]:
        keys = set(self.expected_counters) | set(self.observed_counters)
        return [
            f"{k}: {self.observed_counters.get(k, 0)} (expected {self.expected_counters.get(k, 0)})"
            for k in sorted(keys)
            if self.observed_counters.get(k, 0) != self.expected_counters.get(k, 0)
        ]


def _watched_counters(diagnostics: dict[str, str]) -> dict[str, int]:
    """What the fuzz checks: every rejection, pairing loss, callback error and drop."""
    out = {}
    for key, value in diagnostics.items():
        if key.startswith(("rejected_", "callback_errors_")):
            out[key] = int(float(value))
    out["images_without_detections"] = sum(
        int(float(v)) for k, v in diagnostics.items() if k.startswith("images_without_detections_")
    )
    out["frames_dropped"] = int(float(diagnostics.get("frames_dropped", 0)))
    return out


def run_fuzz(
    messages: int,
    *,
    burst_max: int = 6,
    size: tuple[int, int] = (120, 160),
    large_frames: bool = False,
    max_seconds: float = 1800.0,
    good_frame_timeout: float = 60.0,
    seed: int = 0,
) -> FuzzResult:
    """At least `messages` malformed messages in bursts of 1..`burst_max` items, each
    burst followed by a good frame that must produce output; at the end every
    diagnostics counter must equal what the items imply (fuzz.Expectation)."""
    from seg2track_ros.stress.fuzz import Expectation, FuzzPlan

    started = time.monotonic()
    deadline = started + max_seconds
    result = FuzzResult("fuzz")
    scene = Scene(*size, seed=seed)
    plan = FuzzPlan(scene, seed=seed, large_frames=large_frames)
    expected = Expectation()
    # An image waiting for detections that never come is released as soon as a later
    # frame's detections arrive; the long timeout keeps one that must still be waiting
    # at a rewind (image_dropped_at_rewind) waiting however slow the machine.
    params = {**COMMON_PARAMS, "segmenter": "detection-masks", "sync_timeout": 30.0}
    driver = NodeDriver("fuzz", params)
    try:
        driver.wait_ready(min(300.0, max_seconds))
        frame = 0
        while True:
            good = plan.good_frame(frame)
            expected.add(good)
            driver.publish(good.image, good.detections)
            result.good_frames += 1
            timeout = min(good_frame_timeout, max(0.0, deadline - time.monotonic()))
            if not driver.wait_outputs([good.stamp], timeout):
                result.good_frames_without_output += 1
                result.timed_out = f"output of good frame {frame} (after burst {frame - 1})"
                break
            if expected.malformed >= messages or time.monotonic() > deadline:
                break
            size_now = int(plan.rng.integers(1, burst_max + 1))
            for item in plan.burst(frame, size_now):
                expected.add(item)
                if not item.wait_for_receipt:
                    driver.publish(item.image, item.detections)
                    continue
                driver.publish(item.image)
                timeout = min(good_frame_timeout, max(0.0, deadline - time.monotonic()))
                if not driver.spin_until(
                    lambda: driver.counter("frames_in") >= expected.images_sent, timeout
                ):
                    result.timed_out = f"frames_in to count the image of burst {frame}"
                    break
                driver.publish(detections=item.detections)
                # A rewinding frame is tracked before anything else goes out, so a second
                # rewind in the burst finds it released (see fuzz.py).
                if item.tracked_size is not None and not driver.wait_outputs([item.stamp], timeout):
                    result.timed_out = f"output of the rewinding image in burst {frame}"
                    break
            if result.timed_out:
                break
            result.bursts += 1
            frame += 1
        # Counters settle once the last frames are tracked and a diagnostics message
        # newer than that has come.
        driver.wait_outputs(expected.tracked_stamps, max(5.0, deadline - time.monotonic()))
        want = dict(expected.rejected)
        result.expected_counters = {f"rejected_{k}": v for k, v in sorted(want.items())}
        result.expected_counters["images_without_detections"] = expected.images_without_detections
        result.expected_counters["frames_dropped"] = expected.frames_dropped

        def settled() -> bool:
            return _watched_counters(driver.diagnostics) == result.expected_counters

        driver.spin_until(settled, 10.0)
        driver.wait_diagnostics(5.0)
        result.observed_counters = _watched_counters(driver.diagnostics)
        result.frames_in = driver.counter("frames_in")
        result.malformed = expected.malformed
        result.images_sent = expected.images_sent
        result.outputs_expected = len(expected.tracked_stamps)
        result.outputs_received = sum(1 for s in expected.tracked_stamps if s in driver.outputs)
        result.kinds = dict(sorted(expected.by_kind.items()))
    finally:
        _finish(result, driver, started)
    return result


# ------------------------------------------------------------------------- lifecycle
@dataclass
class LifecycleResult(SuiteResult):
    cycles: int = 0
    transitions: int = 0
    transitions_failed: list[str] = field(default_factory=list)
    frames_sent: int = 0
    outputs: int = 0
    graph_counts: list[dict[str, int]] = field(default_factory=list)  # while active, per cycle
    unconfigured_counts: list[dict[str, int]] = field(default_factory=list)  # after cleanup
    rss_kib: list[int] = field(default_factory=list)  # after each cycle
    idle_cpu: float | None = None  # fraction of one core, idle after the cycles
    lost_responses: int = 0

    def rows(self) -> list[Row]:
        rows = super().rows()
        rows.append(
            Row(
                "transitions succeeded",
                f"{self.transitions - len(self.transitions_failed)} / {self.transitions}"
                + (
                    f" ({self.lost_responses} answers lost, state checked)"
                    if self.lost_responses
                    else ""
                ),
                "all",
                self.transitions > 0 and not self.transitions_failed,
            )
        )
        rows.append(
            Row(
                "outputs / frames sent while active",
                f"{self.outputs} / {self.frames_sent}",
                "all",
                self.outputs == self.frames_sent and self.frames_sent > 0,
            )
        )
        active = {tuple(sorted(c.items())) for c in self.graph_counts}
        rows.append(
            Row(
                "subscriptions and publishers while active (every cycle)",
                "; ".join(_counts_text(dict(c)) for c in sorted(active)) or "n/a",
                "1 each, constant",
                len(active) == 1 and all(v == 1 for v in dict(next(iter(active))).values()),
            )
        )
        cleaned = {tuple(sorted(c.items())) for c in self.unconfigured_counts}
        rows.append(
            Row(
                "after cleanup",
                "; ".join(_counts_text(dict(c)) for c in sorted(cleaned)) or "n/a",
                "0 each",
                len(cleaned) == 1 and all(v == 0 for v in dict(next(iter(cleaned))).values()),
            )
        )
        growth = self.rss_growth_mib()
        rows.append(
            Row(
                "RSS growth from cycle 1 to the last (MiB)",
                "n/a" if growth is None else f"{growth:+.1f}",
                f"< {LIFECYCLE_RSS_TARGET:g}",
                growth is not None and growth < LIFECYCLE_RSS_TARGET,
            )
        )
        rows.append(
            Row(
                "idle CPU after the cycles (% of a core)",
                "n/a" if self.idle_cpu is None else f"{100 * self.idle_cpu:.1f}",
                f"< {100 * IDLE_CPU_TARGET:g}",
                self.idle_cpu is not None and self.idle_cpu < IDLE_CPU_TARGET,
            )
        )
        return rows

    def rss_growth_mib(self) -> float | None:
        if len(self.rss_kib) < 2:
            return None
        return (self.rss_kib[-1] - self.rss_kib[0]) / KIB_PER_MIB


def _counts_text(counts: dict[str, int]) -> str:
    values = sorted(set(counts.values()))
    if len(values) == 1:
        return f"{len(counts)} entities x {values[0]}"
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def run_lifecycle(
    cycles: int,
    *,
    frames_per_cycle: int = 3,
    size: tuple[int, int] = (120, 160),
    idle_seconds: float = 3.0,
    max_seconds: float = 1800.0,
    graph_timeout: float = 10.0,
    seed: int = 0,
) -> LifecycleResult:
    """`cycles` x (deactivate, cleanup, configure, activate, frames): the node starts
    active (autostart), so every cycle walks the whole lifecycle once."""
    started = time.monotonic()
    deadline = started + max_seconds
    result = LifecycleResult("lifecycle")
    scene = Scene(*size, seed=seed)
    driver = NodeDriver("lifecycle", {**COMMON_PARAMS, "segmenter": "detection-masks"})
    frame = 0
    active_counts = None
    try:
        driver.wait_ready(min(300.0, max_seconds))
        for cycle in range(cycles):
            if time.monotonic() > deadline:
                result.timed_out = f"cycle {cycle} not started before the deadline"
                break
            for name in ("deactivate", "cleanup", "configure", "activate"):
                result.transitions += 1
                if not driver.transition(name):
                    result.transitions_failed.append(f"cycle {cycle}: {name}")
                if name == "cleanup":
                    zero = driver.spin_until(
                        lambda: not any(driver.graph_counts().values()), graph_timeout
                    )
                    result.unconfigured_counts.append(driver.graph_counts())
                    if not zero:
                        result.notes.append(f"cycle {cycle}: entities left after cleanup")
            if result.transitions_failed:
                break
            stamps = []
            for _ in range(frames_per_cycle):
                stamp = stamp_of(frame)
                driver.publish(
                    image_msg(scene.image(frame), stamp),
                    detections_msg(stamp, box_detections(scene.boxes(frame))),
                )
                stamps.append(stamp)
                frame += 1
            result.frames_sent += len(stamps)
            if not driver.wait_outputs(stamps, min(60.0, max(0.0, deadline - time.monotonic()))):
                result.timed_out = f"outputs in cycle {cycle}"
            result.outputs += sum(1 for s in stamps if s in driver.outputs)
            # The graph reports the counts once discovery has caught up; wait for the
            # first cycle's counts (each entity exactly once), then record what it shows.
            if active_counts is None:
                driver.spin_until(
                    lambda: all(v == 1 for v in driver.graph_counts().values()), graph_timeout
                )
                active_counts = driver.graph_counts()
            else:
                driver.spin_until(
                    lambda expected=active_counts: driver.graph_counts() == expected, graph_timeout
                )
            result.graph_counts.append(driver.graph_counts())
            result.rss_kib.append(driver.rss_kib())
            result.cycles += 1
            if result.timed_out:
                break
        if result.cycles and not result.timed_out:
            cpu0, wall0 = driver.cpu_seconds(), time.monotonic()
            driver.spin_for(idle_seconds)
            result.idle_cpu = (driver.cpu_seconds() - cpu0) / (time.monotonic() - wall0)
        result.lost_responses = driver.lost_responses
    finally:
        _finish(result, driver, started)
    return result


# ------------------------------------------------------------------------- fault
@dataclass
class FaultResult(SuiteResult):
    every: int = 0
    frames_sent: int = 0
    faults_expected: int = 0
    outputs: int = 0
    lost_frames: list[int] = field(default_factory=list)  # frame indices without output
    faulted_frames: list[int] = field(default_factory=list)  # where faults were injected
    next_frame_outputs: int = 0  # frames right after a fault with output and tracks
    faults_followed: int = 0  # faults with a frame after them (the last frame may fault)
    engine_errors_counted: int = 0
    other_rejections: dict[str, int] = field(default_factory=dict)

    def rows(self) -> list[Row]:
        rows = super().rows()
        rows.append(
            Row(
                "frames lost / faults injected",
                f"{len(self.lost_frames)} / {self.faults_expected}"
                f" (every {self.every} of {self.frames_sent} frames)",
                "exactly one per fault",
                self.faults_expected > 0 and self.lost_frames == self.faulted_frames,
            )
        )
        rows.append(
            Row(
                "frame after each fault: output with tracks",
                f"{self.next_frame_outputs} / {self.faults_followed}",
                "all",
                self.next_frame_outputs == self.faults_followed,
            )
        )
        rows.append(
            Row(
                "rejected_engine_error in diagnostics",
                str(self.engine_errors_counted),
                str(self.faults_expected),
                self.engine_errors_counted == self.faults_expected,
            )
        )
        rows.append(
            Row(
                "other rejections or callback errors",
                ", ".join(f"{k} {v}" for k, v in self.other_rejections.items()) or "none",
                "none",
                not self.other_rejections,
            )
        )
        return rows


def run_fault(
    frames: int,
    *,
    every: int = 50,
    window: int = 4,
    size: tuple[int, int] = (120, 160),
    max_seconds: float = 1800.0,
    seed: int = 0,
) -> FaultResult:
    """`frames` frames with an exception injected in Tracker.step every `every`-th
    (the node's inject_fault_every); exactly those frames may lack an output."""
    started = time.monotonic()
    deadline = started + max_seconds
    result = FaultResult("engine fault", every=every)
    scene = Scene(*size, seed=seed)
    params = {**COMMON_PARAMS, "segmenter": "detection-masks", "inject_fault_every": every}
    driver = NodeDriver("fault", params)
    try:
        driver.wait_ready(min(300.0, max_seconds))
        stamps: list[int] = []

        def in_flight() -> int:
            """Frames sent and not answered, not counting those that must fault (a
            faulted frame never answers)."""
            return sum(
                1
                for i in range(max(0, len(stamps) - 2 * window - 2), len(stamps))
                if (i + 1) % every and stamps[i] not in driver.outputs
            )

        for frame in range(frames):
            if not driver.spin_until(
                lambda: in_flight() < window, max(0.0, deadline - time.monotonic())
            ):
                result.timed_out = f"outputs before frame {frame}"
                break
            stamp = stamp_of(frame)
            driver.publish(
                image_msg(scene.image(frame), stamp),
                detections_msg(stamp, box_detections(scene.boxes(frame))),
            )
            stamps.append(stamp)
        # Every frame that must answer has; then the counters settle.
        must = [s for i, s in enumerate(stamps) if (i + 1) % every]
        if not driver.wait_outputs(must, max(5.0, deadline - time.monotonic())):
            result.timed_out = result.timed_out or "the last outputs"
        driver.spin_for(1.0)  # a faulted last frame has no output to wait for
        driver.spin_until(
            lambda: driver.counter("rejected_engine_error") >= len(stamps) // every, 10.0
        )
        driver.wait_diagnostics(5.0)
        result.frames_sent = len(stamps)
        result.faults_expected = len(stamps) // every
        result.faulted_frames = [i for i in range(len(stamps)) if (i + 1) % every == 0]
        result.lost_frames = [i for i, s in enumerate(stamps) if s not in driver.outputs]
        result.outputs = len(stamps) - len(result.lost_frames)
        result.next_frame_outputs = sum(
            1
            for i in result.faulted_frames
            if i + 1 < len(stamps) and driver.outputs.get(stamps[i + 1], (0, 0, 0))[1] > 0
        )
        result.faults_followed = sum(1 for i in result.faulted_frames if i + 1 < len(stamps))
        result.engine_errors_counted = driver.counter("rejected_engine_error")
        result.other_rejections = {
            k: v
            for k, v in _watched_counters(driver.diagnostics).items()
            if k != "rejected_engine_error" and v
        }
    finally:
        _finish(result, driver, started)
    return result
