"""Where one ``Tracker.step`` spends its time, operator by operator (torch.profiler).

    python -m seg2track_ros.bench.profile --model small --image-size 1024 --objects 20 \
        --device cuda

N objects are prompted on frame 0 of the benchmark's synthetic KITTI-sized frames (the
speed benchmark's setup, random weights, steady state); after the warm-up, the measured
frames run under torch.profiler. Printed: the per-phase medians of those frames and the
operators with the most device time (CPU time on a CPU), self time, so that the rows
add up to the total. Use it to say what dominates a frame; the timed figures belong to
``seg2track bench``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch


def profile_steps(
    objects: int,
    frames: int,
    warmup: int,
    model: str,
    image_size: int,
    device: str,
    compile_model: bool = False,
    row_limit: int = 25,
) -> str:
    """The report: phase medians and the profiler's operator table, as text."""
    from torch.profiler import ProfilerActivity, profile

    from seg2track_ros.bench.engine import build_ours, grid_boxes, time_ours, write_frames

    tracker, segmenter = build_ours(model, image_size, device, compile_model)
    cuda = segmenter.device.type == "cuda"
    with tempfile.TemporaryDirectory(prefix="seg2track_profile_") as work:
        images = write_frames(Path(work), warmup + frames)
    steps = time_ours(tracker, images, grid_boxes(objects))
    for _ in range(warmup):
        next(steps)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    wall, phases, held = [], {}, []
    with profile(activities=activities) as prof:
        for ms, timing, count in steps:
            wall.append(ms)
            held.append(count)
            for phase, value in timing.items():
                phases.setdefault(phase, []).append(value)
    if min(held) != objects:
        raise RuntimeError(f"held {min(held)}..{max(held)} tracks, not {objects}")
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    averages = prof.key_averages()
    ranges = [
        f"  {event.key}: {_total_us(event, cuda) / frames / 1000:.1f} ms per frame"
        f" ({event.count // frames} calls)"
        for event in averages
        if event.key.startswith("seg2track::")
    ]
    lines = [
        f"SAM 2.1 {model}, image_size {image_size}, {objects} objects, {segmenter.device},"
        f" compile {'on' if compile_model else 'off'}; {frames} profiled frames after"
        f" {warmup} warm-up",
        f"step (wall, median): {np.median(wall):.1f} ms",
        "phases (median ms): "
        + " / ".join(f"{name} {np.median(values):.1f}" for name, values in phases.items()),
        f"SAM 2 parts ({'device' if cuda else 'CPU'} time inside the named ranges):",
        *ranges,
        f"operators by {sort} (all {frames} frames):",
        averages.table(sort_by=sort, row_limit=row_limit),
    ]
    return "\n".join(lines)


def _total_us(event, cuda: bool) -> float:
    """An event's total time in microseconds: device time (its kernels) on CUDA."""
    if not cuda:
        return event.cpu_time_total
    return event.device_time_total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seg2track_ros.bench.profile", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", default="small", choices=["tiny", "small", "base_plus", "large"])
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--frames", type=int, default=10, help="profiled frames")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--compile", action="store_true", help="torch.compile, as bench does")
    parser.add_argument("--rows", type=int, default=25, help="operator rows shown")
    args = parser.parse_args(argv)
    if args.objects < 1 or args.frames < 1 or args.warmup < 0:
        parser.error("--objects and --frames must be at least 1, --warmup at least 0")
    torch.set_grad_enabled(False)
    print(
        profile_steps(
            args.objects,
            args.frames,
            args.warmup,
            args.model,
            args.image_size,
            args.device,
            args.compile,
            args.rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
