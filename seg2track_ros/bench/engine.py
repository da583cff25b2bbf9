"""Engine benchmarks, ours and SAM 2's own video predictor side by side in one process.

Both get the same frames (decoded from the same JPEG files), the same model (SAM 2.1,
random weights with the same seed: speed and memory do not depend on the weights) and
the same objects (boxes on frame 0). The baseline is sam2's `SAM2VideoPredictor`, the
official multi-object path: it loads the whole video, runs objects one after another
and keeps every frame's state. Ours is `Tracker.step` with the streaming segmenter, so
it also pays for track management and the host copy of the label image. Both get the
objects' boxes on frame 0 only.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from seg2track_ros.engine.config import SegmenterConfig, TrackerConfig
from seg2track_ros.engine.types import Detections

# Random weights give meaningless scores and masks. So that exactly N tracks live through
# the whole run (steady state), nothing may remove or re-prompt them: no weak frames
# (quality and logit thresholds off), no re-prompts, and a frozen existence probability
# (detection probability 0: the Bernoulli update leaves it unchanged; survival 1). This
# measures speed and memory with N objects, never tracking quality. The values are
# inside tracker_node's parameter ranges, so the ROS benchmark uses the same settings.
STEADY_STATE = TrackerConfig(
    removal_quality=0.0,
    lost_logit=-1000.0,
    reliable_logit=-999.0,
    reinforcement_quality=0.0,
    detection_probability=0.0,
    survival_probability=1.0,
)
FRAME_SIZE = (375, 1242)  # KITTI


@dataclass
class SpeedResult:
    objects: int
    frames: int
    ours_ms: list[float]
    baseline_ms: list[float]
    phases_ms: dict[str, list[float]] = field(default_factory=dict)
    tracked: list[int] = field(default_factory=list)  # tracks ours held per measured frame
    baseline: str = "SAM2VideoPredictor"

    @staticmethod
    def stat(values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class MemoryResult:
    length: int  # frames tracked
    ours_bytes: int  # tensors the engine holds (GPU: peak allocated)
    ours_rss: int
    baseline_bytes: int
    baseline_rss: int


def grid_boxes(count: int, height: int = FRAME_SIZE[0], width: int = FRAME_SIZE[1]) -> np.ndarray:
    cols = int(np.ceil(np.sqrt(count * width / height)))
    rows = int(np.ceil(count / cols))
    w, h = width / cols, height / rows
    cells = [(c, r) for r in range(rows) for c in range(cols)][:count]
    return np.array(
        [[c * w + 2, r * h + 2, (c + 1) * w - 2, (r + 1) * h - 2] for c, r in cells], np.float32
    )


def write_frames(folder: Path, count: int, seed: int = 0) -> list[np.ndarray]:
    """`count` KITTI-sized frames as JPEG (what the predictor reads) and their decoded
    pixels (what we get), so both see identical images."""
    import cv2

    from seg2track_ros.datasets.synthetic import _actors, render_frame

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    actors = _actors(rng, count)
    frames = []
    for index in range(count):
        rgb, _ = render_frame(actors, index, *FRAME_SIZE, rng)
        path = folder / f"{index:05d}.jpg"
        cv2.imwrite(str(path), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        frames.append(np.ascontiguousarray(cv2.imread(str(path))[..., ::-1]))
    return frames


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_ours(model: str, image_size: int, device: str, compile_model: bool = False):
    from seg2track_ros.engine.sam2_model import build_segmenter
    from seg2track_ros.engine.tracker import Tracker

    segmenter = build_segmenter(
        SegmenterConfig(
            model=model,
            checkpoint="random",
            device=device,
            image_size=image_size,
            compile=compile_model,
        )
    )
    return Tracker(STEADY_STATE, segmenter), segmenter


def baseline_name(vos: bool) -> str:
    return "SAM2VideoPredictorVOS" if vos else "SAM2VideoPredictor"


def build_baseline(model: str, image_size: int, device: torch.device, vos: bool = False):
    """sam2's video predictor; ``vos``: its compiled VOS-optimised variant
    (``vos_optimized=True``, torch.compile of its image encoder and heads)."""
    from sam2.build_sam import build_sam2_video_predictor

    from seg2track_ros.engine.sam2_model import RANDOM_WEIGHTS_SEED, SAM2_CONFIGS

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        predictor = build_sam2_video_predictor(
            SAM2_CONFIGS[model],
            ckpt_path=None,
            device=str(device),
            hydra_overrides_extra=[f"++model.image_size={image_size}"],
            vos_optimized=vos,
        )
    predictor.fill_hole_area = 0  # needs sam2's CUDA extension; ours does not fill holes
    return predictor


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def time_ours(
    tracker, frames: list[np.ndarray], boxes: np.ndarray
) -> Iterator[tuple[float, dict, int]]:
    device = tracker._segmenter.device
    # Like the baseline: the objects' boxes on frame 0, then no detections (SAM 2 alone
    # carries the tracks; the track manager still runs every frame).
    first = Detections(boxes, np.full(len(boxes), 0.9, np.float32), ("car",) * len(boxes))
    tracker.reset()
    for index, image in enumerate(frames):
        detections = first if index == 0 else Detections.empty()
        _sync(device)
        started = time.perf_counter()
        result = tracker.step(image, detections)
        _sync(device)
        yield (time.perf_counter() - started) * 1000, result.timing_ms, len(result.tracks)


def time_baseline(predictor, video: Path, boxes: np.ndarray) -> Iterator[float]:
    device = predictor.device
    with torch.inference_mode(), _autocast(device):
        state = predictor.init_state(video_path=str(video))
        for index, box in enumerate(boxes):
            predictor.add_new_points_or_box(state, frame_idx=0, obj_id=index + 1, box=box)
        frames = predictor.propagate_in_video(state)
        while True:
            _sync(device)
            started = time.perf_counter()
            try:
                next(frames)
            except StopIteration:
                break
            _sync(device)
            yield (time.perf_counter() - started) * 1000
        predictor.reset_state(state)
        del state


def measure_speed(
    objects: list[int],
    frames: int,
    warmup: int,
    work: Path,
    model: str,
    image_size: int,
    device: str,
    compile_model: bool = False,
    progress=print,
) -> list[SpeedResult]:
    """Per-frame time vs number of objects, ours and the baseline, warm-up excluded."""
    from seg2track_ros.engine.sam2_model import resolve_device

    total = frames + warmup
    video = work / "speed_frames"
    images = write_frames(video, total)
    tracker, _segmenter = build_ours(model, image_size, device, compile_model)
    resolved = resolve_device(device)
    # Compiled runs on a GPU race sam2's own compiled predictor.
    vos = compile_model and resolved.type == "cuda"
    predictor = build_baseline(model, image_size, resolved, vos=vos)
    results = []
    for count in objects:
        boxes = grid_boxes(count)
        ours, phases, tracked = [], {}, []
        for index, (ms, timing, held) in enumerate(time_ours(tracker, images, boxes)):
            if index >= warmup:
                ours.append(ms)
                tracked.append(held)
                for phase, value in timing.items():
                    phases.setdefault(phase, []).append(value)
        baseline = [
            ms for i, ms in enumerate(time_baseline(predictor, video, boxes)) if i >= warmup
        ]
        if min(tracked) != count:
            raise RuntimeError(f"ours held {min(tracked)}..{max(tracked)} tracks, not {count}")
        results.append(
            SpeedResult(count, frames, ours, baseline, phases, tracked, baseline_name(vos))
        )
        progress(
            f"  {count:3d} objects: ours {np.median(ours):8.1f} ms,"
            f" {baseline_name(vos)} {np.median(baseline):8.1f} ms (median per frame)"
        )
    return results


def rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _tensor_bytes(value, seen: set[int]) -> int:
    """Bytes of every distinct tensor reachable in a nest of dicts/lists/tuples."""
    if isinstance(value, torch.Tensor):
        key = value.untyped_storage().data_ptr()
        if key in seen:
            return 0
        seen.add(key)
        return value.untyped_storage().nbytes()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v, seen) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_tensor_bytes(v, seen) for v in value)
    return 0


def measure_memory(
    lengths: list[int],
    objects: int,
    work: Path,
    model: str,
    image_size: int,
    device: str,
    progress=print,
) -> list[MemoryResult]:
    """Memory held after tracking L frames, for each L: ours (the segmenter's stored
    tensors; peak device memory on a GPU) and the baseline (every tensor in the
    predictor's inference state: frames, features, per-frame outputs)."""
    from seg2track_ros.engine.sam2_model import resolve_device

    resolved = resolve_device(device)
    longest = max(lengths)
    video = work / "memory_frames"
    images = write_frames(video, longest)
    boxes = grid_boxes(objects)
    results = []
    tracker, segmenter = build_ours(model, image_size, device)
    predictor = build_baseline(model, image_size, resolved)
    for length in sorted(lengths):
        gc.collect()
        if resolved.type == "cuda":
            torch.cuda.reset_peak_memory_stats(resolved)
        held = [count for _ms, _timing, count in time_ours(tracker, images[:length], boxes)]
        if held[-1] != objects:
            raise RuntimeError(f"ours held {held[-1]} tracks after {length} frames, not {objects}")
        ours = (
            torch.cuda.max_memory_allocated(resolved)
            if resolved.type == "cuda"
            else segmenter.memory_bytes()
        )
        ours_rss = rss_bytes()
        subset = work / f"memory_frames_{length}"
        subset.mkdir(exist_ok=True)
        for index in range(length):
            target = subset / f"{index:05d}.jpg"
            if not target.exists():
                os.symlink(video / f"{index:05d}.jpg", target)
        gc.collect()
        if resolved.type == "cuda":
            torch.cuda.reset_peak_memory_stats(resolved)
        with torch.inference_mode(), _autocast(resolved):
            state = predictor.init_state(video_path=str(subset))
            for index, box in enumerate(boxes):
                predictor.add_new_points_or_box(state, frame_idx=0, obj_id=index + 1, box=box)
            for _ in predictor.propagate_in_video(state):
                pass
            baseline = (
                torch.cuda.max_memory_allocated(resolved)
                if resolved.type == "cuda"
                else _tensor_bytes(state, set())
            )
            baseline_rss = rss_bytes()
            del state
        results.append(MemoryResult(length, ours, ours_rss, baseline, baseline_rss))
        progress(
            f"  {length:5d} frames: ours {ours / 2**20:9.2f} MiB,"
            f" SAM2VideoPredictor {baseline / 2**20:9.2f} MiB"
        )
    return results
