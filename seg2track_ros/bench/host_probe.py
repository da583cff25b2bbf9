"""Host-overhead probe: per-frame time of ``Tracker.step`` and the node's output path at a
model input so small that SAM 2's own compute is negligible.

Run as a script (``python host_probe.py '<json settings>'``), it prints one JSON line of
results. It uses only the engine's stable API (``build_segmenter``, ``Tracker.step``,
``Detections``) and the node's output conversions, so the same probe times an older
checkout of the package: ``seg2track bench --mode host --before REF`` runs it once
against a git worktree of REF and once against this tree, in the same run.
"""

from __future__ import annotations

import json
import sys
import time


def _output_path():
    """The node's output path: a function (StepResult, header) -> its messages, timed in
    parts. Newer trees have ``step_to_msgs``; older ones built the messages per track."""
    from seg2track_ros.ros import conversions

    if hasattr(conversions, "step_to_msgs"):
        return conversions.step_to_msgs

    def legacy(result, header):
        height, width = result.tracks[0].mask.shape if result.tracks else (0, 0)
        tracks = conversions.tracks_to_msg(result.tracks, header)
        detections = conversions.tracks_to_detections_msg(result.tracks, header)
        labels = conversions.instance_labels(result.tracks, height, width)
        return tracks, detections, conversions.labels_to_image_msg(labels, header)

    return legacy


def probe(settings: dict) -> dict:
    import numpy as np
    import torch
    from std_msgs.msg import Header

    # grid_boxes has had this signature since the benchmarks were written.
    from seg2track_ros.bench.engine import grid_boxes
    from seg2track_ros.engine.config import SegmenterConfig, TrackerConfig
    from seg2track_ros.engine.sam2_model import build_segmenter
    from seg2track_ros.engine.tracker import Tracker
    from seg2track_ros.engine.types import Detections

    torch.set_num_threads(int(settings.get("threads", torch.get_num_threads())))
    segmenter = build_segmenter(
        SegmenterConfig(
            model=settings["model"],
            checkpoint="random",
            device=settings["device"],
            image_size=settings["image_size"],
        )
    )
    outputs = _output_path()
    header = Header(frame_id="camera")
    rng = np.random.default_rng(0)
    results = []
    for height, width in settings["frame_sizes"]:
        images = [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(2)]
        for count in settings["objects"]:
            # Exactly `count` tracks throughout: nothing removes or re-prompts them and
            # max_tracks stops further births, while the detections (the same boxes on
            # every frame) still go through association and the new-track test.
            config = TrackerConfig(max_tracks=count, **settings["steady_state"])
            segmenter.reset()
            tracker = Tracker(config, segmenter)
            boxes = grid_boxes(count, height, width)
            detections = Detections(boxes, np.full(count, 0.9, np.float32), ("car",) * count)
            step_ms, output_ms, phases, held = [], [], {}, []
            for index in range(settings["warmup"] + settings["frames"]):
                started = time.perf_counter()
                result = tracker.step(images[index % 2], detections)
                stepped = time.perf_counter()
                outputs(result, header)
                done = time.perf_counter()
                if index < settings["warmup"]:
                    continue
                step_ms.append((stepped - started) * 1000)
                output_ms.append((done - stepped) * 1000)
                held.append(len(result.tracks))
                for phase, value in result.timing_ms.items():
                    phases.setdefault(phase, []).append(value)
            results.append(
                {
                    "frame_size": [height, width],
                    "objects": count,
                    "held": [min(held), max(held)],
                    "step_ms": step_ms,
                    "output_ms": output_ms,
                    "phases_ms": phases,
                }
            )
    return {"torch_threads": torch.get_num_threads(), "results": results}


if __name__ == "__main__":
    print("HOST_PROBE " + json.dumps(probe(json.loads(sys.argv[1]))), flush=True)
