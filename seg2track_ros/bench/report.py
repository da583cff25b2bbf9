"""BENCHMARKS.md sections and PNG plots from benchmark results.

Each run writes one section, delimited by markers and keyed by device kind and mode,
so CPU and GPU runs (and quick and full runs) live side by side in one file and a rerun
replaces only its own section.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg2track_ros.bench.cameras import (
    CAMERAS_GATHER_WINDOW_S,
    NODE_PER_CAMERA,
    ONE_NODE,
    CamerasResult,
)
from seg2track_ros.bench.engine import MemoryResult, SpeedResult
from seg2track_ros.bench.host import HostResult, host_table
from seg2track_ros.bench.latency import LatencyResult
from seg2track_ros.engine.config import CPU_OBJECTS_PER_CALL
from seg2track_ros.engine.tracker import PHASES


@dataclass
class RunInfo:
    command: str
    mode: str
    model: str
    image_size: int
    device: str  # resolved, e.g. "cpu" or "cuda:0"
    compiled: bool
    # A run of the host-overhead or the several-cameras section alone ("host",
    # "cameras") gets its own section (key ...-host, ...-cameras), so it never replaces
    # a full run's speed, memory and latency tables.
    only: str | None = None
    # the Fast DDS profile of the run's processes (bench command --dds-profile)
    dds_profile: str | None = None

    @property
    def host_only(self) -> bool:
        return self.only == "host"

    @property
    def key(self) -> str:
        kind = "gpu" if self.device.startswith("cuda") else "cpu"
        if self.host_only:
            return f"{kind}-{self.mode}-{self.model}-host"
        suffix = "-compiled" if self.compiled else ""
        if self.only == "cameras":
            suffix += "-cameras"
        return f"{kind}-{self.mode}-{self.model}-{self.image_size}{suffix}"


def machine_description(device: str) -> str:
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            names = [
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            ]
        if names:
            cpu = names[0]
    except OSError:
        pass
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError):
        pass
    text = f"{cpu}, {os.cpu_count()} cores{memory}; Python {platform.python_version()}"
    text += f", torch {torch.__version__}"
    if device.startswith("cuda"):
        text += f", GPU {torch.cuda.get_device_name(torch.device(device))}"
    return text


def _ms(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.1f}" if values else "n/a"


def speed_table(results: list[SpeedResult]) -> str:
    phases = [p for p in PHASES if any(p in r.phases_ms for r in results)]
    lines = [
        f"| objects | ours median | ours p95 | {results[0].baseline} median | p95 |"
        " speed-up (median) |"
        " ours: " + " / ".join(phases) + " (median ms) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        ratio = np.median(r.baseline_ms) / np.median(r.ours_ms)
        breakdown = " / ".join(_ms(r.phases_ms.get(p, []), 50) for p in phases)
        lines.append(
            f"| {r.objects} | {_ms(r.ours_ms, 50)} | {_ms(r.ours_ms, 95)} |"
            f" {_ms(r.baseline_ms, 50)} | {_ms(r.baseline_ms, 95)} | {ratio:.2f}x | {breakdown} |"
        )
    return "\n".join(lines)


def growth_per_1000(results: list[MemoryResult], attribute: str) -> tuple[float, float]:
    """(bytes per 1000 frames from a least-squares line, that as % of the first value)."""
    lengths = np.array([r.length for r in results], float)
    values = np.array([getattr(r, attribute) for r in results], float)
    if len(results) < 2:
        return float("nan"), float("nan")
    slope = np.polyfit(lengths, values, 1)[0]
    return slope * 1000, 100 * slope * 1000 / values[0]


def memory_table(results: list[MemoryResult], on_gpu: bool) -> str:
    what = "peak device memory" if on_gpu else "stored tensors"
    lines = [
        f"| frames | ours: {what} (MiB) | SAM2VideoPredictor: {what} (MiB) | process RSS (MiB) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.length} | {r.ours_bytes / 2**20:.2f} | {r.baseline_bytes / 2**20:.2f} |"
            f" {r.baseline_rss / 2**20:.0f} |"
        )
    ours, ours_pct = growth_per_1000(results, "ours_bytes")
    base, base_pct = growth_per_1000(results, "baseline_bytes")
    lines.append("")
    lines.append(
        f"Growth per 1000 frames (least-squares slope over the lengths above): ours"
        f" {ours / 2**20:.3f} MiB ({ours_pct:.2f} % of its value at {results[0].length} frames);"
        f" SAM2VideoPredictor {base / 2**20:.1f} MiB ({base_pct:.0f} %)."
    )
    return "\n".join(lines)


def latency_table(results: list[LatencyResult]) -> str:
    lines = [
        "| mode | objects | sent | received | dropped | p50 ms | p95 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        mode = f"realtime {r.rate_hz:g} Hz" if r.rate_hz else "lockstep"
        lines.append(
            f"| {mode} | {r.objects} | {r.sent} | {r.received} | {r.dropped} |"
            f" {_ms(r.latencies_ms, 50)} | {_ms(r.latencies_ms, 95)} | {_ms(r.latencies_ms, 99)} |"
        )
    return "\n".join(lines)


def _mib(values: list[int] | None) -> str:
    return "n/a" if values is None else f"{sum(values) / 2**20:.0f}"


def _device_memory(r: CamerasResult) -> str:
    if not r.device.startswith("cuda"):
        return "n/a (CPU)"
    parts = []
    if r.device_memory_bytes is not None:
        parts.append(f"{_mib(r.device_memory_bytes)} allocated")
    if r.gpu_process_bytes is not None:
        parts.append(f"{_mib(r.gpu_process_bytes)} nvidia-smi")
    return "; ".join(parts) or "n/a (not reported)"


def cameras_table(results: list[CamerasResult]) -> str:
    lines = [
        "| cameras | layout | nodes | frames tracked / sent per camera | frames/s (all cameras)"
        " | RSS after the run, sum (MiB) | peak RSS, sum (MiB) | device memory, sum (MiB)"
        " | p95 latency per camera (ms) | cameras per engine call |",
        "| ---: | --- | ---: | --- | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for r in results:
        counted = sorted(set(r.processed.values()))
        tracked = (
            f"{counted[0]} / {r.sent_per_camera}"
            if len(counted) == 1
            else " / ".join(f"{c} {n}" for c, n in r.processed.items()) + f" of {r.sent_per_camera}"
        )
        p95 = " / ".join(f"{r.p95_ms(c):.0f}" for c in r.latencies_ms)
        per_call = (
            "1"
            if r.layout != ONE_NODE
            else ("n/a" if r.cameras_per_tick is None else f"{r.cameras_per_tick:.2f}")
        )
        lines.append(
            f"| {r.cameras} | {r.layout} | {r.nodes} | {tracked} | {r.frames_per_s:.2f} |"
            f" {_mib(r.rss_bytes)} | {_mib(r.peak_rss_bytes)} | {_device_memory(r)} | {p95} |"
            f" {per_call} |"
        )
    return "\n".join(lines)


# "about 1/N": within this factor of 1/N (the per-camera state and queues are not
# shared, so one node for N cameras holds a little more than one camera's node).
MEMORY_TARGET_SLACK = 1.2


def throughput_target(cameras: int, on_gpu: bool) -> float | None:
    """Issue 13's throughput target for one node over N nodes: at least as fast on the
    CPU, 1.5x at 4 cameras on a GPU (none named for other counts on a GPU)."""
    if on_gpu:
        return 1.5 if cameras == 4 else None
    return 1.0


def cameras_targets(results: list[CamerasResult]) -> str:
    """One node over N nodes for each camera count measured with both layouts."""
    by_key = {(r.cameras, r.layout): r for r in results}
    counts = sorted(
        {n for n, layout in by_key if layout == ONE_NODE and (n, NODE_PER_CAMERA) in by_key}
    )
    if not counts:
        return "(no camera count was measured with both layouts)"
    lines = [
        "| cameras | memory: one node / N nodes | target (about 1/N) | met |"
        " frames/s: one node / N nodes | target | met |",
        "| ---: | --- | --- | --- | ---: | --- | --- |",
    ]

    def met(value: float, ok: bool) -> str:
        return "n/a" if np.isnan(value) else ("yes" if ok else "no")

    for n in counts:
        one, many = by_key[n, ONE_NODE], by_key[n, NODE_PER_CAMERA]
        on_gpu = one.device.startswith("cuda")
        limit = MEMORY_TARGET_SLACK / n
        memory = [("RSS", one.rss_bytes, many.rss_bytes)]
        if on_gpu:
            memory += [
                ("device allocated", one.device_memory_bytes, many.device_memory_bytes),
                ("device nvidia-smi", one.gpu_process_bytes, many.gpu_process_bytes),
            ]
        ratios = [(name, sum(a) / sum(b)) for name, a, b in memory if a and b and sum(b) > 0]
        memory_text = ", ".join(f"{name} {ratio:.2f}" for name, ratio in ratios)
        memory_met = "yes" if all(ratio <= limit for _name, ratio in ratios) else "no"
        speed = one.frames_per_s / many.frames_per_s
        target = throughput_target(n, on_gpu)
        lines.append(
            f"| {n} | {memory_text} | <= {limit:.2f} (1/{n} = {1 / n:.2f}) | {memory_met} |"
            f" {speed:.2f}x | {'none named' if target is None else f'>= {target:g}x'} |"
            f" {'-' if target is None else met(speed, speed >= target)} |"
        )
    return "\n".join(lines)


def _line_plot(path: Path, title: str, x: list, series: dict, xlabel: str, ylabel: str) -> None:
    """Ours vs the baseline as lines: series maps label -> (y values, matplotlib style)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, (values, style) in series.items():
        axes.plot(x, values, style, label=label)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)


def plot_speed(results: list[SpeedResult], path: Path, title: str) -> None:
    series = {
        "seg2track_ros": ([np.median(r.ours_ms) for r in results], "o-"),
        results[0].baseline: ([np.median(r.baseline_ms) for r in results], "s--"),
    }
    objects = [r.objects for r in results]
    _line_plot(path, title, objects, series, "objects", "median time per frame (ms)")


def plot_memory(results: list[MemoryResult], path: Path, title: str) -> None:
    series = {
        "seg2track_ros": ([r.ours_bytes / 2**20 for r in results], "o-"),
        "SAM2VideoPredictor": ([r.baseline_bytes / 2**20 for r in results], "s--"),
    }
    lengths = [r.length for r in results]
    _line_plot(path, title, lengths, series, "frames tracked (5 objects)", "memory held (MiB)")


def _dds(info: RunInfo) -> str:
    return f" (profile: {info.dds_profile})" if info.dds_profile else ""


def write_section(
    benchmarks_md: Path,
    info: RunInfo,
    speed: list[SpeedResult],
    memory: list[MemoryResult],
    latency: list[LatencyResult],
    plots_dir: Path,
    host: list[HostResult] | None = None,
    host_image_size: int = 64,
    cameras: list[CamerasResult] | None = None,
) -> str:
    """Replace (or add) this run's section in BENCHMARKS.md; returns the section."""
    plots_dir.mkdir(parents=True, exist_ok=True)
    on_gpu = info.device.startswith("cuda")
    dtype = "bf16 autocast" if on_gpu else "float32"
    size = host_image_size if info.host_only else info.image_size
    title = f"SAM 2.1 {info.model}, {size} px, {dtype}, {info.device}"
    frames = (
        "- Frames: 375x1242 and 1080x1920 random frames; N tracks held (see below)"
        if info.host_only
        else "- Frames: KITTI-sized (375x1242) random frames, the same on every camera; N"
        " objects per camera are boxes prompted on the first warm-up frame, then tracked by"
        " SAM 2 alone (every camera holds exactly N tracks throughout: checked)"
        if info.only == "cameras"
        else "- Frames: KITTI-sized (375x1242) synthetic frames; N objects are boxes prompted"
        " on frame 0 for both, then tracked by SAM 2 alone (ours holds exactly N tracks"
        " throughout: checked)"
    )
    per_call = (
        "all objects in one call" if on_gpu else f"at most {CPU_OBJECTS_PER_CALL} objects per call"
    )
    parts = [
        f"## {info.key}: {title}",
        "",
        f"- Machine: {machine_description(info.device)}",
        f"- Model: SAM 2.1 {info.model} (random weights: speed and memory do not depend on"
        f" them), image_size {size}, {dtype}"
        f"{', torch.compile' if info.compiled else ''}; ours runs {per_call}"
        " (objects_per_call auto)",
        frames,
        f"- Command: `{info.command}`",
        "",
    ]
    relative = os.path.relpath(plots_dir, benchmarks_md.parent)
    if speed:
        plot = plots_dir / f"speed_{info.key}.png"
        plot_speed(speed, plot, title)
        parts += [
            "### Per-frame time vs number of objects",
            "",
            f"Same process, same frames; median and p95 over {speed[0].frames} frames after"
            " warm-up. Ours is a full `Tracker.step` (also track management and the host"
            " copy of the frame's label image); the baseline is"
            f" `{speed[0].baseline}.propagate_in_video`.",
            "",
            speed_table(speed),
            "",
            f"![speed]({relative}/{plot.name})",
            "",
        ]
    if memory:
        plot = plots_dir / f"memory_{info.key}.png"
        plot_memory(memory, plot, title)
        parts += [
            "### Memory vs sequence length (5 objects)",
            "",
            memory_table(memory, on_gpu),
            "",
            f"![memory]({relative}/{plot.name})",
            "",
        ]
    if host:
        parts += [
            "### Host overhead (SAM 2 compute made negligible)",
            "",
            f"SAM 2.1 {info.model} at image_size {host_image_size}, real frame sizes, N tracks"
            " held, the same N boxes as detections on every frame (association and the"
            " new-track test run; births capped at N). Median ms per frame over"
            f" {len(host[0].step_ms)} frames after warm-up. 'Outside SAM 2' is everything"
            " but encode, propagate, prompt and memory: the mask work for association and"
            " output (on a GPU it runs on the device; here on the same CPU), the host"
            " logic, and the node's output path (TrackedObjectArray with RLE,"
            " Detection2DArray, mono16 label image). 'Host only' leaves the device-side"
            " mask work out: the time a GPU cannot hide. Each tree ran in its own"
            " subprocess, one after the other, in this run.",
            "",
            host_table(host),
            "",
        ]
    if latency:
        parts += [
            "### End-to-end latency through ROS 2 (image published -> `tracks` received)",
            "",
            "tracker_node as a subprocess, Fast DDS on loopback"
            f"{_dds(info)}, KITTI-sized rgb8 images.",
            "",
            latency_table(latency),
            "",
        ]
    if cameras:
        first = cameras[0]
        parts += [
            "### Several cameras: one node for N cameras vs one node per camera",
            "",
            f"{first.objects} objects per camera; {first.frames} measured frames per camera"
            f" after {first.warmup} warm-up; {first.frame_size[1]}x{first.frame_size[0]}"
            " random rgb8 frames, the same on every camera. The installed tracker_node"
            " (lockstep mode,"
            f" `cameras` parameter) as a subprocess, Fast DDS on loopback{_dds(info)}. One"
            " node: one"
            " process, one model, `cameras: [cam0, ...]`. One node per camera: N processes"
            " with the same parameters, `cameras: [camI]` each, run side by side (each with"
            " torch's default thread count). The driver publishes one frame on every"
            " camera, then waits until every camera's `tracks` answered (lockstep), so"
            " both layouts track every frame. The driver publishes the cameras' frames one"
            " after another; the one node waits up to `camera_gather_window`"
            f" ({CAMERAS_GATHER_WINDOW_S:g} s, as in config/kitti_stereo.yaml for replay) for"
            " every camera's frame and tracks them in one batched engine call ('cameras per"
            " engine call': its /diagnostics `cameras_per_tick`, the mean over its last 100"
            " ticks). frames/s:"
            " all cameras' measured frames over"
            " the wall time of the measured ticks. 'Frames tracked': the node's own"
            " `frames_processed` in /diagnostics, warm-up included. RSS: VmRSS of each node"
            " process after the measured frames and its peak (VmHWM), summed over the"
            " nodes. Device memory: the nodes' `device_memory_mb` in /diagnostics (torch's"
            " allocated memory, highest value seen) and nvidia-smi's per-process memory"
            " (CUDA context included) where it lists the processes. Latency: an image's"
            " publish to its `tracks` message, p95 per camera (cam0 / cam1 / ...).",
            "",
            cameras_table(cameras),
            "",
            f"Targets (issue 13), one node over N nodes: memory about 1/N (met here when"
            f" at most {MEMORY_TARGET_SLACK:g}/N: the per-camera state is not shared),"
            " throughput at least that of N nodes on the CPU and 1.5x at 4 cameras on a"
            " GPU.",
            "",
            cameras_targets(cameras),
            "",
        ]
    section = "\n".join(parts).rstrip() + "\n"
    start, end = f"<!-- bench:{info.key} -->", f"<!-- /bench:{info.key} -->"
    block = f"{start}\n{section}{end}\n"
    text = benchmarks_md.read_text() if benchmarks_md.exists() else _HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text + "\n" + block
    benchmarks_md.write_text(text)
    return section


_HEADER = """# Benchmarks

Written by `seg2track bench`; each section states the machine, device, model, image
size, dtype and the exact command. Claims are ratios measured side by side in one run
(ours vs SAM 2's own `SAM2VideoPredictor`), or absolute numbers from a named GPU.
"""
