"""The engine keeps nothing per track once the track is gone (issue 10, defect 4).

Many tracks are born and die (SAM 2 tiny, random weights: every frame counts as lost, so
each track lives ``max_lost_frames`` frames, and new detections keep starting tracks).
Entries are counted, not RSS, so the check is deterministic: the tracker's and the
segmenter's per-track containers hold exactly the live tracks, each object's memory stays
within its window, and the process holds no more track records, object memories,
memory entries or tensors after hundreds of births than after the first few dozen.
"""

from __future__ import annotations

import collections
import gc
import warnings

import numpy as np
import torch

from seg2track_ros.engine import sam2_stream
from seg2track_ros.engine import tracker as tracker_module
from seg2track_ros.engine.config import TrackerConfig
from seg2track_ros.engine.sam2_model import build_sam2_model
from seg2track_ros.engine.sam2_stream import Sam2StreamSegmenter
from seg2track_ros.engine.tracker import Tracker
from seg2track_ros.engine.types import Detections

SIZE = 96  # image side, pixels
FRAMES = 40
NEW_PER_FRAME = 3


def _frame(rng: np.random.Generator) -> tuple[np.ndarray, Detections]:
    """A frame with NEW_PER_FRAME rectangles where nothing was before."""
    image = (rng.integers(0, 30, (SIZE, SIZE, 3))).astype(np.uint8)
    boxes = []
    for _ in range(NEW_PER_FRAME):
        w, h = rng.integers(10, 24, 2)
        x, y = rng.integers(0, SIZE - w), rng.integers(0, SIZE - h)
        image[y : y + h, x : x + w] = rng.integers(80, 256, 3)
        boxes.append((x, y, x + w, y + h))
    detections = Detections(
        np.array(boxes, np.float32), np.full(len(boxes), 0.9), ("car",) * len(boxes)
    )
    return image, detections


def _live(kind: type) -> int:
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sum(isinstance(o, kind) for o in gc.get_objects())


def _census() -> collections.Counter:
    return collections.Counter(
        {
            "track_records": _live(tracker_module._TrackRecord),
            "object_memories": _live(sam2_stream._ObjectMemory),
            "memory_entries": _live(sam2_stream._MemoryEntry),
            "tensors": _live(torch.Tensor),
        }
    )


def test_per_track_state_is_released_after_many_births_and_deaths():
    torch.manual_seed(0)
    model = build_sam2_model("tiny", 64, torch.device("cpu"))
    segmenter = Sam2StreamSegmenter(model, max_conditioning_frames=2, max_object_pointers=4)
    config = TrackerConfig(lost_logit=1e9, reliable_logit=1e9 + 1, max_lost_frames=2)
    tracker = Tracker(config, segmenter)
    rng = np.random.default_rng(0)
    censuses = {}
    for frame in range(FRAMES):
        tracker.step(*_frame(rng))
        live = set(tracker._tracks)
        # Per-track containers hold the live tracks only; per-frame ones are emptied.
        assert set(segmenter._objects) == live, frame
        assert segmenter._outputs == {} and segmenter._conditioned == {}, frame
        for object_id in live:
            layout = segmenter.memory_layout(object_id)
            assert layout["conditioning_frames"] <= segmenter.max_conditioning_frames
            assert layout["recent_frames"] <= segmenter._recent_frames
            assert layout["memory_features"] <= segmenter.num_maskmem - 1
        if frame in (FRAMES // 4, FRAMES - 1):
            census = _census()
            census["live_tracks"] = len(live)
            census["entries_held"] = sum(
                len(m.conditioning) + len(m.recent) for m in segmenter._objects.values()
            )
            censuses[frame] = census
    births = tracker._next_id - 1
    assert births >= FRAMES, f"only {births} tracks were born"
    early, late = censuses[FRAMES // 4], censuses[FRAMES - 1]
    for census in (early, late):
        # No track record, object memory or memory entry outlives its track.
        assert census["track_records"] == census["live_tracks"], census
        assert census["object_memories"] == census["live_tracks"], census
        assert census["memory_entries"] == census["entries_held"], census
    # Tensors: what the live tracks' memories hold (a features and a pointer tensor per
    # entry) explains any difference; hundreds of births in between leave nothing behind.
    held = 2 * (late["entries_held"] - early["entries_held"])
    assert late["tensors"] - early["tensors"] <= max(held, 0) + 8, (early, late)
