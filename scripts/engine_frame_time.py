"""Per-frame time of Tracker + SAM 2 streaming segmenter (random weights) on this machine.

    python scripts/engine_frame_time.py --image-size 256 --objects 1,5,20 --frames 14

Frames are KITTI-sized (375x1242) noise with N non-overlapping detections repeated every
frame. Random weights give low scores, so quality thresholds are relaxed to keep tracks
alive and un-re-prompted: this measures steady-state speed only, never tracking quality.
The first 2 frames (warm-up, prompting) are excluded. `seg2track bench` will supersede it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from seg2track_ros.engine.config import SegmenterConfig, TrackerConfig
from seg2track_ros.engine.sam2_model import build_segmenter
from seg2track_ros.engine.tracker import Tracker
from seg2track_ros.engine.types import Detections

HEIGHT, WIDTH = 375, 1242


def grid_boxes(count: int) -> np.ndarray:
    cols = int(np.ceil(np.sqrt(count * WIDTH / HEIGHT)))
    rows = int(np.ceil(count / cols))
    w, h = WIDTH / cols, HEIGHT / rows
    cells = [(c, r) for r in range(rows) for c in range(cols)][:count]
    return np.array([[c * w + 2, r * h + 2, (c + 1) * w - 2, (r + 1) * h - 2] for c, r in cells])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--objects", default="1,5,20")
    parser.add_argument("--frames", type=int, default=14)
    args = parser.parse_args()
    torch.manual_seed(0)
    segmenter = build_segmenter(
        SegmenterConfig(
            model=args.model, checkpoint="random", device=args.device, image_size=args.image_size
        )
    )
    image = np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    config = TrackerConfig(
        removal_quality=0.0, lost_logit=-1e9, reliable_logit=-1e8, reinforcement_quality=0.0
    )
    for count in (int(n) for n in args.objects.split(",")):
        tracker = Tracker(config, segmenter)
        tracker.reset()
        detections = Detections(grid_boxes(count), np.full(count, 0.9), ("car",) * count)
        totals, phases = [], {}
        for frame in range(args.frames):
            started = time.perf_counter()
            result = tracker.step(image, detections)
            if frame >= 2:
                totals.append((time.perf_counter() - started) * 1000)
                for phase, ms in result.timing_ms.items():
                    phases.setdefault(phase, []).append(ms)
        breakdown = " ".join(f"{k} {np.median(v):.0f}" for k, v in phases.items())
        print(
            f"{args.model} image_size {args.image_size} objects {count}"
            f" (tracked {len(result.tracks)}): median {np.median(totals):.0f} ms,"
            f" p95 {np.percentile(totals, 95):.0f} ms | {breakdown}",
            flush=True,
        )


if __name__ == "__main__":
    main()
