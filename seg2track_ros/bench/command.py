"""`seg2track bench`: the three measurements, written to BENCHMARKS.md and PNG plots."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from seg2track_ros.argtypes import positive_int

MODES = {
    # objects, frames (after warm-up), warm-up, memory lengths, latency objects/frames
    "quick": {
        "objects": [1, 2],
        "frames": 3,
        "warmup": 1,
        "lengths": [20, 30],
        "latency_objects": [2],
        "latency_frames": 5,
        "host_objects": [1, 5],
        "host_frames": 2,
        "host_sizes": [(375, 1242)],
        "camera_counts": [1, 2],
        "camera_objects": 2,
        "camera_frames": 3,
    },
    "full": {
        "objects": [1, 2, 5, 10, 20, 40],
        "frames": 30,
        "warmup": 3,
        "lengths": [50, 100, 200, 500, 1000, 2000],
        "latency_objects": [5, 20],
        "latency_frames": 60,
        "host_objects": [1, 5, 10, 20, 50],
        "host_frames": 10,
        "host_sizes": [(375, 1242), (1080, 1920)],
        "camera_counts": [1, 2, 4],
        "camera_objects": 10,
        "camera_frames": 30,
    },
}


SECTIONS = ("speed", "memory", "latency", "host", "cameras")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="speed vs objects, memory vs length, ROS latency; ours vs SAM2VideoPredictor",
        description=(
            "Measure our engine against sam2's SAM2VideoPredictor in one run (same frames,"
            " model, objects) and end-to-end latency through tracker_node, and write the"
            " results as a section of BENCHMARKS.md with PNG plots. quick: a smoke run;"
            " full: 1-40 objects, 30 frames, 50-2000 frames of memory (hours on a CPU:"
            " shorten with --lengths)."
        ),
    )
    parser.add_argument("--mode", choices=sorted(MODES), default="quick")
    parser.add_argument(
        "--models", nargs="+", default=["tiny"], choices=["tiny", "small", "base_plus", "large"]
    )
    parser.add_argument("--image-size", type=int, default=256, help="SAM 2 input size")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--compile",
        choices=["off", "on", "both"],
        default="off",
        help="torch.compile the image encoder and the per-object heads (bucketed batches)",
    )
    parser.add_argument(
        "--objects", type=positive_int, nargs="+", help="override the object counts"
    )
    parser.add_argument(
        "--lengths", type=positive_int, nargs="+", help="override the memory lengths"
    )
    parser.add_argument(
        "--frames", type=positive_int, help="override the measured frames per count"
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=list(SECTIONS), help="sections not to run"
    )
    parser.add_argument(
        "--before",
        metavar="REF",
        help="host overhead: also measure this git commit (a worktree) in the same run",
    )
    parser.add_argument(
        "--host-image-size",
        type=int,
        default=64,
        help="SAM 2 input size for the host-overhead section (small: SAM 2 compute negligible)",
    )
    parser.add_argument(
        "--camera-counts",
        type=positive_int,
        nargs="+",
        help="several cameras: the camera counts (quick: 1 2, full: 1 2 4)",
    )
    parser.add_argument(
        "--camera-objects",
        type=positive_int,
        help="several cameras: objects per camera (quick: 2, full: 10)",
    )
    parser.add_argument(
        "--camera-frames",
        type=positive_int,
        help="several cameras: measured frames per camera (quick: 3, full: 30)",
    )
    parser.add_argument(
        "--dds-profile",
        default=LARGE_MESSAGES_PROFILE,
        help="Fast DDS XML profile for every process of the run (nodes and driver):"
        f" {LARGE_MESSAGES_PROFILE} (default: config/{LARGE_MESSAGES_PROFILE}, shared-memory"
        " segments for whole images), 'default' (Fast DDS's own), or a file; an"
        " FASTRTPS_DEFAULT_PROFILES_FILE already set wins",
    )
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--plots", type=Path, default=Path("benchmarks"))
    parser.set_defaults(handler=run)
    return parser


LARGE_MESSAGES_PROFILE = "fastdds_large_messages.xml"
DDS_PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")


# The shipped profile maps this much /dev/shm per process (32 MiB segments): with less
# free than for about 8 processes, the run keeps Fast DDS's defaults.
SHM_NEEDED_BYTES = 8 * 32 * 2**20


def use_dds_profile(choice: str, shm: Path = Path("/dev/shm")) -> str:
    """Export the Fast DDS profile for this process and the nodes it starts (before any
    DDS participant exists: Fast DDS reads it once); returns what the run used, for the
    report. The shipped profile falls back to Fast DDS's defaults, with a warning, where
    it is not installed or /dev/shm is too small for it; a file named on the command
    line must exist."""
    for variable in DDS_PROFILE_VARIABLES:
        if os.environ.get(variable):
            return f"{os.environ[variable]} (from {variable})"
    if choice == "default":
        return "Fast DDS's defaults"
    path = Path(choice)
    if choice == LARGE_MESSAGES_PROFILE and not path.is_file():
        path = shipped_config(LARGE_MESSAGES_PROFILE)
        if not path.is_file():
            print(f"warning: {LARGE_MESSAGES_PROFILE} not found: Fast DDS's defaults")
            return "Fast DDS's defaults (the shipped profile was not found)"
        free = shutil.disk_usage(shm).free if shm.is_dir() else 0
        if free < SHM_NEEDED_BYTES:
            print(
                f"warning: {shm} has {free / 2**20:.0f} MiB free, {LARGE_MESSAGES_PROFILE}"
                f" wants {SHM_NEEDED_BYTES / 2**20:.0f}: Fast DDS's defaults"
            )
            return f"Fast DDS's defaults ({shm} too small for {LARGE_MESSAGES_PROFILE})"
    if not path.is_file():
        raise SystemExit(f"seg2track bench: --dds-profile {choice}: no such file")
    for variable in DDS_PROFILE_VARIABLES:
        os.environ[variable] = str(path.resolve())
    return f"`config/{path.name}`" if path.name == LARGE_MESSAGES_PROFILE else str(path)


def shipped_config(name: str) -> Path:
    """A file of the package's config folder: the installed share, else the source tree."""
    from seg2track_ros.params import _shipped_config_dir

    for folder in (_shipped_config_dir(), Path(__file__).resolve().parents[2] / "config"):
        if folder is not None and (folder / name).is_file():
            return folder / name
    return Path(name)


def run(args: argparse.Namespace) -> int:
    from seg2track_ros.bench.cameras import measure_cameras_comparison
    from seg2track_ros.bench.engine import measure_memory, measure_speed
    from seg2track_ros.bench.host import measure_host_overhead
    from seg2track_ros.bench.latency import measure_latency
    from seg2track_ros.bench.report import RunInfo, write_section
    from seg2track_ros.engine.sam2_model import resolve_device

    settings = MODES[args.mode]
    objects = args.objects or settings["objects"]
    lengths = args.lengths or settings["lengths"]
    frames = args.frames or settings["frames"]
    device = str(resolve_device(args.device))
    command = "seg2track " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    dds_profile = use_dds_profile(args.dds_profile)
    with tempfile.TemporaryDirectory(prefix="seg2track_bench_") as work:
        for model in args.models:
            for compiled in compiles:
                # Without speed, memory and latency, host overhead and several cameras
                # each get a section of their own (key ...-host, ...-cameras), so such a
                # run never replaces a full run's section.
                standalone = {"speed", "memory", "latency"} <= set(args.skip)
                info = RunInfo(
                    command, args.mode, model, args.image_size, device, compiled, None, dds_profile
                )
                if "speed" not in args.skip:
                    print(f"[{info.key}] speed vs objects {objects}")
                speed = (
                    []
                    if "speed" in args.skip
                    else measure_speed(
                        objects,
                        frames,
                        settings["warmup"],
                        Path(work),
                        model,
                        args.image_size,
                        device,
                        compiled,
                    )
                )
                memory, latency, host, cameras = [], [], [], []
                if not compiled and "host" not in args.skip:
                    print(f"[{info.key}] host overhead at image_size {args.host_image_size}")
                    host = measure_host_overhead(
                        settings["host_objects"],
                        settings["host_frames"],
                        settings["warmup"],
                        model,
                        args.host_image_size,
                        device,
                        before=args.before,
                        frame_sizes=settings["host_sizes"],
                    )
                if not compiled:  # memory and latency do not depend on compilation
                    if "memory" not in args.skip:
                        print(f"[{info.key}] memory vs length {lengths}")
                        memory = measure_memory(
                            lengths, 5, Path(work), model, args.image_size, device
                        )
                    if "latency" not in args.skip:
                        for count in settings["latency_objects"]:
                            for mode in ("realtime", "lockstep"):
                                print(f"[{info.key}] latency: {mode}, {count} objects")
                                latency.append(
                                    measure_latency(
                                        mode,
                                        count,
                                        settings["latency_frames"],
                                        10.0,
                                        model,
                                        args.image_size,
                                        device,
                                    )
                                )
                if not compiled and "cameras" not in args.skip:
                    counts = args.camera_counts or settings["camera_counts"]
                    objects_per_camera = args.camera_objects or settings["camera_objects"]
                    key = replace(info, only="cameras").key if standalone else info.key
                    print(
                        f"[{key}] several cameras {counts}: one node vs one node per"
                        f" camera, {objects_per_camera} objects each"
                    )
                    cameras = measure_cameras_comparison(
                        counts,
                        objects_per_camera,
                        args.camera_frames or settings["camera_frames"],
                        settings["warmup"],
                        model,
                        args.image_size,
                        device,
                    )
                if not standalone:
                    sections = [(info, host, cameras)]
                else:
                    sections = []
                    if host:
                        sections.append((replace(info, only="host"), host, []))
                    if cameras:
                        sections.append((replace(info, only="cameras"), [], cameras))
                for section_info, section_host, section_cameras in sections:
                    section = write_section(
                        args.out,
                        section_info,
                        speed,
                        memory,
                        latency,
                        args.plots,
                        section_host,
                        args.host_image_size,
                        section_cameras,
                    )
                    print(section)
    print(f"wrote {args.out} and plots in {args.plots}/")
    return 0
