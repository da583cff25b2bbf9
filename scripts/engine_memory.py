"""Memory of the engine over a long run where tracks are born and die all the time.

Runs seg2track_ros.engine.tracker.Tracker in this process over synthetic frames whose
detections keep appearing and disappearing (about one new object per frame), and every
``--every`` frames prints the process RSS, the number of entries in every container the
tracker and its segmenter hold, and Python's own object count; at the end the RSS slope
per 1,000 frames over the second half (a least-squares line), and the Python object
types whose count grew most over that half.

    source env.sh
    python scripts/engine_memory.py --frames 2000                 # SAM 2 tiny, random weights
    python scripts/engine_memory.py --frames 2000 --tracemalloc   # + Python heap (slower)

The figures are for this process only (no ROS): what grows here grows in tracker_node.
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seg2track_ros.engine.config import SegmenterConfig, TrackerConfig
from seg2track_ros.engine.types import Detections


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Scene:
    """Rectangles on a textured background; each lives a few frames, then vanishes.
    About ``births`` new objects a frame, each detected while it lives."""

    def __init__(self, height: int, width: int, births: float, seed: int) -> None:
        self.height, self.width, self.births = height, width, births
        self.rng = np.random.default_rng(seed)
        self.objects: list[dict] = []
        yy, xx = np.mgrid[0:height, 0:width]
        self.background = np.stack(
            [(xx * 255 // width), (yy * 255 // height), ((xx + yy) * 127 // (width + height))],
            axis=-1,
        ).astype(np.uint8)

    def next(self) -> tuple[np.ndarray, Detections]:
        rng = self.rng
        for _ in range(rng.poisson(self.births)):
            w, h = rng.integers(12, 40), rng.integers(12, 40)
            self.objects.append(
                {
                    "x": float(rng.integers(0, self.width - w)),
                    "y": float(rng.integers(0, self.height - h)),
                    "w": int(w),
                    "h": int(h),
                    "vx": float(rng.normal(0, 1.5)),
                    "life": int(rng.integers(1, 12)),
                    "colour": rng.integers(0, 256, 3).astype(np.uint8),
                }
            )
        image = self.background.copy()
        boxes = []
        for obj in self.objects:
            obj["x"] = float(np.clip(obj["x"] + obj["vx"], 0, self.width - obj["w"]))
            x0, y0 = int(obj["x"]), int(obj["y"])
            image[y0 : y0 + obj["h"], x0 : x0 + obj["w"]] = obj["colour"]
            boxes.append((x0, y0, x0 + obj["w"], y0 + obj["h"]))
            obj["life"] -= 1
        self.objects = [o for o in self.objects if o["life"] > 0]
        detections = Detections(
            np.array(boxes, np.float32).reshape(-1, 4),
            np.full(len(boxes), 0.9, np.float32),
            tuple("car" for _ in boxes),
        )
        return image, detections


def container_sizes(tracker) -> dict[str, int]:
    """Entries of every container the tracker and its segmenter hold (per-track state
    and caches), by attribute name."""
    sizes: dict[str, int] = {}
    for owner_name, owner in (("tracker", tracker), ("segmenter", tracker._segmenter)):
        for name, value in vars(owner).items():
            if isinstance(value, (dict, list, set, collections.deque, collections.OrderedDict)):
                sizes[f"{owner_name}.{name}"] = len(value)
    segmenter = tracker._segmenter
    objects = getattr(segmenter, "_objects", {})
    sizes["segmenter.memory_entries"] = sum(
        len(m.conditioning) + len(m.recent) for m in objects.values()
    )
    if hasattr(segmenter, "memory_bytes"):
        sizes["segmenter.memory_bytes"] = int(segmenter.memory_bytes())
    return sizes


def type_counts() -> collections.Counter:
    gc.collect()
    return collections.Counter(type(o).__name__ for o in gc.get_objects())


def slope_per_1000(frames: list[int], values: list[float]) -> float:
    if len(frames) < 2:
        return float("nan")
    return float(np.polyfit(np.array(frames, float), np.array(values, float), 1)[0] * 1000)


def main() -> None:
    args = parse_args()
    if args.worker_thread:
        import threading

        worker = threading.Thread(target=run, args=(args,), name="engine_worker")
        worker.start()
        worker.join()
    else:
        run(args)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--births", type=float, default=1.0, help="new objects per frame")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--tracemalloc", action="store_true", help="also the Python heap")
    parser.add_argument(
        "--worker-thread",
        action="store_true",
        help="track in a second thread, as tracker_node's worker does (glibc gives each"
        " thread its own malloc arena)",
    )
    return parser.parse_args()


def run(args: argparse.Namespace) -> None:
    import torch

    from seg2track_ros.engine.sam2_model import build_segmenter
    from seg2track_ros.engine.tracker import Tracker

    torch.set_num_threads(args.threads)
    segmenter = build_segmenter(
        SegmenterConfig(
            model=args.model, checkpoint="random", device="cpu", image_size=args.image_size
        )
    )
    # Random weights: tracks die by the lost-frame rule (every frame counts as lost), so
    # every track lives max_lost_frames frames unless re-detected. Births are what the
    # detections ask for.
    config = TrackerConfig(lost_logit=1e9, reliable_logit=1e9 + 1, max_lost_frames=5)
    tracker = Tracker(config, segmenter)
    scene = Scene(args.height, args.width, args.births, args.seed)
    if args.tracemalloc:
        tracemalloc.start()

    rows, frames_at, rss_at = [], [], []
    counts_half = None
    started = time.monotonic()
    header_printed = False
    for frame in range(1, args.frames + 1):
        image, detections = scene.next()
        tracker.step(image, detections)
        if frame % args.every == 0:
            gc.collect()
            sizes = container_sizes(tracker)
            row = {
                "frame": frame,
                "births": tracker._next_id - 1,
                "rss_mib": round(rss_mib(), 1),
                "s_per_frame": round((time.monotonic() - started) / frame, 2),
                "py_objects": len(gc.get_objects()),
                **sizes,
            }
            if args.tracemalloc:
                row["py_heap_mib"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 2)
            if not header_printed:
                print(" ".join(row), flush=True)
                header_printed = True
            print(" ".join(str(v) for v in row.values()), flush=True)
            rows.append(row)
            frames_at.append(frame)
            rss_at.append(row["rss_mib"])
            if counts_half is None and frame >= args.frames // 2:
                counts_half = type_counts()
    half = [i for i, f in enumerate(frames_at) if f >= args.frames // 2]
    print(
        f"\n{args.frames} frames, {tracker._next_id - 1} track births,"
        f" {time.monotonic() - started:.0f} s; RSS slope over the second half:"
        f" {slope_per_1000([frames_at[i] for i in half], [rss_at[i] for i in half]):+.2f}"
        " MiB per 1,000 frames"
    )
    if args.tracemalloc and half:
        heap = [rows[i]["py_heap_mib"] for i in half]
        print(
            "Python heap slope over the second half:"
            f" {slope_per_1000([frames_at[i] for i in half], heap):+.3f} MiB per 1,000 frames"
        )
    if counts_half is not None:
        grown = type_counts()
        grown.subtract(counts_half)
        top = [(name, n) for name, n in grown.most_common(8) if n > 0]
        print("Python object types that grew over the second half:", top or "none")


if __name__ == "__main__":
    main()
