"""`seg2track stress`: run the reliability suites against the installed tracker_node and
print one table (and write it as JSON and Markdown with --out). Exit status 1 when a
target is missed."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

SUITES = ("soak", "sam2-soak", "fuzz", "lifecycle", "fault")
# sizes: full (issue 10's) and --short (what `make test` runs)
SIZES = {
    "full": {
        "frames": 5000,
        "sam2_frames": 500,
        "fuzz_messages": 2000,
        "cycles": 100,
        "fault_frames": 1000,
        "sample_every": 100,
    },
    "short": {
        "frames": 200,
        "sam2_frames": 20,
        "fuzz_messages": 200,
        "cycles": 10,
        "fault_frames": 200,
        "sample_every": 20,
    },
}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "stress",
        help="reliability suite: soak, fuzz, lifecycle cycles, engine faults through tracker_node",
        description=(
            "Drive the installed tracker_node over DDS: a soak with many track births (RSS"
            " sampled), malformed messages mixed with good frames, lifecycle cycles, and"
            " injected engine faults. Prints a table of figures against issue 10's targets;"
            " exit status 1 when one is missed. Full sizes take about an hour on 2 CPU"
            " cores; --short runs in a minute or two."
        ),
    )
    parser.add_argument(
        "--suites", nargs="+", choices=SUITES, default=list(SUITES), help="which suites to run"
    )
    parser.add_argument(
        "--short", action="store_true", help="small sizes (200 frames, 200 fuzz messages, ...)"
    )
    full = SIZES["full"]
    parser.add_argument("--frames", type=int, help=f"soak frames (default {full['frames']})")
    parser.add_argument(
        "--sam2-frames", type=int, help=f"SAM 2 soak frames (default {full['sam2_frames']})"
    )
    parser.add_argument(
        "--fuzz-messages",
        type=int,
        help=f"malformed messages at least (default {full['fuzz_messages']})",
    )
    parser.add_argument("--cycles", type=int, help=f"lifecycle cycles (default {full['cycles']})")
    parser.add_argument(
        "--fault-frames",
        type=int,
        help=f"frames of the fault suite (default {full['fault_frames']})",
    )
    parser.add_argument("--fault-every", type=int, default=50, help="inject a fault every N frames")
    parser.add_argument(
        "--sample-every",
        type=int,
        help=f"frames between RSS samples (default {full['sample_every']})",
    )
    parser.add_argument(
        "--device", default="cpu", help="device for the SAM 2 soak: cpu, cuda or auto"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=60.0,
        help="time limit of each suite; a suite that runs out reports a stall",
    )
    parser.add_argument("--out", type=Path, help="folder for stress.json and stress.md")
    parser.set_defaults(handler=run)
    return parser


def _sizes(args: argparse.Namespace) -> dict[str, int]:
    from seg2track_ros.stress.driver import StressError

    sizes = dict(SIZES["short" if args.short else "full"])
    for key in sizes:
        given = getattr(args, key, None)
        if given is not None:
            if given < 1:
                raise StressError(f"--{key.replace('_', '-')} must be >= 1, got {given}")
            sizes[key] = given
    if args.fault_every < 1:
        raise StressError(f"--fault-every must be >= 1, got {args.fault_every}")
    return sizes


def _command(args: argparse.Namespace) -> str:
    """The command line that repeats this run (every size spelled out)."""
    parts = ["seg2track", "stress", "--suites", *args.suites]
    for key, value in _sizes(args).items():
        parts += [f"--{key.replace('_', '-')}", str(value)]
    parts += ["--fault-every", str(args.fault_every), "--device", args.device]
    parts += ["--seed", str(args.seed), "--max-minutes", f"{args.max_minutes:g}"]
    return shlex.join(parts)


def run_suites(args: argparse.Namespace) -> list:
    from seg2track_ros.stress import suites

    sizes = _sizes(args)
    max_seconds = args.max_minutes * 60
    results = []
    for suite in args.suites:
        print(f"[stress] {suite} ...", file=sys.stderr, flush=True)
        if suite == "soak":
            result = suites.run_soak(
                "detection-masks",
                sizes["frames"],
                sample_every=sizes["sample_every"],
                max_seconds=max_seconds,
                assert_slope=sizes["frames"] >= 1000,
                seed=args.seed,
            )
        elif suite == "sam2-soak":
            result = suites.run_soak(
                "sam2",
                sizes["sam2_frames"],
                sample_every=min(sizes["sample_every"], max(sizes["sam2_frames"] // 5, 1)),
                device=args.device,
                max_seconds=max_seconds,
                assert_slope=sizes["sam2_frames"] >= 500,
                seed=args.seed,
            )
        elif suite == "fuzz":
            result = suites.run_fuzz(
                sizes["fuzz_messages"],
                large_frames=not args.short,
                max_seconds=max_seconds,
                seed=args.seed,
            )
        elif suite == "lifecycle":
            result = suites.run_lifecycle(sizes["cycles"], max_seconds=max_seconds, seed=args.seed)
        else:
            result = suites.run_fault(
                sizes["fault_frames"],
                every=args.fault_every,
                max_seconds=max_seconds,
                seed=args.seed,
            )
        print(f"[stress] {suite}: {'PASS' if result.passed else 'FAIL'}", file=sys.stderr)
        results.append(result)
    return results


def table(results) -> str:
    lines = [
        "| suite | figure | value | target | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for result in results:
        for row in result.rows():
            met = {True: "yes", False: "**NO**", None: ""}[row.passed]
            lines.append(f"| {result.suite} | {row.figure} | {row.value} | {row.target} | {met} |")
        lines.append(f"| {result.suite} | duration (s) | {result.duration_s:.0f} | | |")
    return "\n".join(lines)


def machine() -> str:
    cores = os.cpu_count()
    return f"{platform.node()}: {platform.machine()}, {cores} CPU cores, {platform.system()}"


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    command = _command(args)
    results = run_suites(args)
    text = table(results)
    print(text)
    passed = all(r.passed for r in results)
    print(
        f"\n{'all targets met' if passed else 'TARGETS MISSED'}"
        f" ({time.monotonic() - started:.0f} s)"
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        header = f"`{command}` on {machine()}, {stamp}"
        (args.out / "stress.md").write_text(f"{header}\n\n{text}\n")
        report = {
            "command": command,
            "machine": machine(),
            "date": stamp,
            "passed": passed,
            "suites": [r.as_dict() for r in results],
        }
        (args.out / "stress.json").write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out / 'stress.md'} and {args.out / 'stress.json'}")
    return 0 if passed else 1
