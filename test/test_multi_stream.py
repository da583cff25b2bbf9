"""MultiStreamTracker: several streams (cameras) over one SAM 2 model.

A stream's results in a multi-stream run equal a single-stream Tracker fed only that
stream, with the same seeded random weights: track ids up to the shared counter's
renaming (an order-preserving bijection), states and scores, and masks up to float
noise. The batched calls change the order of floating-point sums (the image encoder
over a batch of images, memory attention and the heads over other streams' objects
too), so scores and logits may differ by float32 rounding; a pixel whose mask logit is
that close to 0 may flip. The test allows at most 0.05 % of a frame's pixels (2 of a
64x64 frame) to differ and requires scores within 1e-5. In the runs made while
writing it no pixel differed and scores differed by at most 1.2e-7.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg2track_ros.engine import sam2_stream
from seg2track_ros.engine.config import TrackerConfig
from seg2track_ros.engine.detection_masks import DetectionMaskSegmenter
from seg2track_ros.engine.faults import FaultInjectingSegmenter
from seg2track_ros.engine.multi_stream import MultiStreamTracker
from seg2track_ros.engine.sam2_model import build_sam2_model
from seg2track_ros.engine.sam2_stream import Sam2StreamSegmenter
from seg2track_ros.engine.tracker import Tracker, TrackerStepError
from seg2track_ros.engine.types import Detections, InvalidInputError, StepResult

FRAMES = 6
# Cameras of different sizes (height, width), each with its own moving objects.
SIZES = {"front": (72, 112), "left": (64, 64), "rear": (90, 70)}
MAX_PIXEL_FLIPS = 0.0005  # fraction of a frame's pixels (module docstring)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_sam2_model("tiny", 64, torch.device("cpu"))


def _sequence(name: str, frames: int = FRAMES) -> list[tuple[np.ndarray, Detections]]:
    """Rectangles moving over noise; a detection per rectangle (one missed on frame 3,
    one new from frame 2), seeded per camera."""
    height, width = SIZES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    count = 3
    starts = [(rng.integers(0, width // 2), rng.integers(0, height // 2)) for _ in range(count)]
    sizes = [(rng.integers(12, 24), rng.integers(12, 24)) for _ in range(count)]
    colours = rng.integers(90, 256, (count, 3))
    out = []
    for f in range(frames):
        image = rng.integers(0, 40, (height, width, 3)).astype(np.uint8)
        boxes, scores = [], []
        for k in range(count):
            if k == 2 and f < 2:
                continue  # a late object
            x = min(int(starts[k][0]) + 2 * f, width - int(sizes[k][0]) - 1)
            y = min(int(starts[k][1]) + f, height - int(sizes[k][1]) - 1)
            w, h = int(sizes[k][0]), int(sizes[k][1])
            image[y : y + h, x : x + w] = colours[k]
            if not (k == 0 and f == 3):
                boxes.append((x, y, x + w, y + h))
                scores.append(0.9 - 0.1 * k)
        detections = Detections(
            np.array(boxes, np.float32).reshape(-1, 4),
            np.array(scores, np.float32),
            ("car",) * len(boxes),
        )
        out.append((image, detections))
    return out


def _config() -> TrackerConfig:
    # Random weights: nearly every mask is weak or lost; allow long lives so tracks live
    # through the short sequence and their memory is exercised.
    return TrackerConfig(max_weak_frames=100, max_lost_frames=100, min_existence=0.0)


def _single(segmenter, name: str, frames=None) -> list[StepResult]:
    if frames is None and isinstance(segmenter, Sam2StreamSegmenter):
        key = (id(segmenter.model), name)
        if key not in _SINGLE_RUNS:
            _SINGLE_RUNS[key] = _single(segmenter, name, _sequence(name))
        return _SINGLE_RUNS[key]
    tracker = Tracker(_config(), segmenter)
    return [tracker.step(image, dets) for image, dets in (frames or _sequence(name))]


# Plain single-stream SAM 2 runs, computed once per model and camera.
_SINGLE_RUNS: dict[tuple[int, str], list[StepResult]] = {}


def _assert_same_stream(multi: list[StepResult], single: list[StepResult]) -> None:
    """Equal up to the shared counter's order-preserving renaming of ids and float noise."""
    renaming: dict[int, int] = {}
    for got, want in zip(multi, single, strict=True):
        assert got.frame_index == want.frame_index
        assert len(got.tracks) == len(want.tracks), got.frame_index
        for a, b in zip(got.tracks, want.tracks, strict=True):
            assert renaming.setdefault(a.track_id, b.track_id) == b.track_id
            assert (a.class_id, a.state, a.age, a.frames_since_detection) == (
                b.class_id,
                b.state,
                b.age,
                b.frames_since_detection,
            )
            assert a.mask_score == pytest.approx(b.mask_score, abs=1e-5)
            assert a.existence == pytest.approx(b.existence, abs=1e-5)
        assert got.labels.shape == want.labels.shape
        flips = float((got.labels != want.labels).mean())
        assert flips <= MAX_PIXEL_FLIPS, (got.frame_index, flips)
    # The renaming is one-to-one and keeps the order of ids.
    pairs = sorted(renaming.items())
    assert [b for _, b in pairs] == sorted(b for _, b in pairs)
    assert len(set(renaming.values())) == len(renaming)


def _run_multi(tracker: MultiStreamTracker, names, frames=FRAMES, skip=()):
    sequences = {name: _sequence(name, frames) for name in names}
    per_stream: dict[str, list[StepResult]] = {name: [] for name in names}
    for f in range(frames):
        tick = {n: sequences[n][f] for n in names if (n, f) not in skip}
        outcome = tracker.step(tick)
        assert not outcome.errors, outcome.errors
        for name, result in outcome.results.items():
            per_stream[name].append(result)
    return per_stream


def test_each_stream_equals_a_single_stream_tracker(model, monkeypatch):
    calls = {"encode": [], "propagate": [], "finish": []}
    for name, key in (
        ("start_frames", "encode"),
        ("propagate_streams", "propagate"),
        ("finish_frames", "finish"),
    ):
        original = getattr(sam2_stream, name)

        def recording(streams, *args, _original=original, _key=key):
            calls[_key].append(len(streams))
            return _original(streams, *args)

        monkeypatch.setattr(sam2_stream, name, recording)
    names = list(SIZES)
    multi = MultiStreamTracker.shared(names, _config(), Sam2StreamSegmenter(model))
    segmenters = [multi.segmenter(n) for n in names]
    assert all(s.model is model for s in segmenters)  # one model, loaded once
    assert len({id(s) for s in segmenters}) == 3
    per_stream = _run_multi(multi, names)
    # One batched call per phase and tick over all three streams.
    assert calls == {k: [3] * FRAMES for k in calls}
    monkeypatch.undo()
    all_ids = set()
    for name in names:
        single = _single(Sam2StreamSegmenter(model), name)
        assert sum(len(r.tracks) for r in single) > 0, name  # the comparison means something
        _assert_same_stream(per_stream[name], single)
        stream_ids = {t.track_id for r in per_stream[name] for t in r.tracks}
        assert not stream_ids & all_ids  # ids unique across streams
        all_ids |= stream_ids


def test_streams_may_skip_ticks(model):
    """A camera with no frame on a tick is not advanced; the others are batched."""
    names = ["front", "left"]
    multi = MultiStreamTracker.shared(names, _config(), Sam2StreamSegmenter(model))
    skip = {("left", 1), ("left", 2)}
    per_stream = _run_multi(multi, names, skip=skip)
    _assert_same_stream(per_stream["front"], _single(Sam2StreamSegmenter(model), "front"))
    left_frames = [fr for f, fr in enumerate(_sequence("left")) if ("left", f) not in skip]
    _assert_same_stream(
        per_stream["left"], _single(Sam2StreamSegmenter(model), "left", left_frames)
    )


def test_failure_in_one_stream_resets_only_that_stream(model):
    names = ["front", "left", "rear"]
    faulty = FaultInjectingSegmenter(Sam2StreamSegmenter(model), every=4)
    segmenters = {
        "front": Sam2StreamSegmenter(model),
        "left": faulty,
        "rear": Sam2StreamSegmenter(model),
    }
    multi = MultiStreamTracker(_config(), segmenters)
    sequences = {n: _sequence(n) for n in names}
    got = {n: [] for n in names}
    for f in range(FRAMES):
        outcome = multi.step({n: sequences[n][f] for n in names})
        if f == 3:  # the wrapper's 4th frame
            assert set(outcome.errors) == {"left"}
            assert isinstance(outcome.errors["left"], TrackerStepError)
            assert multi.tracker("left").num_tracks == 0
            assert faulty.inner.object_ids == []
        else:
            assert not outcome.errors
        for name, result in outcome.results.items():
            got[name].append(result)
    for name in ("front", "rear"):
        _assert_same_stream(got[name], _single(Sam2StreamSegmenter(model), name))
    # The failed stream goes on from a reset: new tracks on the next frame.
    assert len(got["left"]) == FRAMES - 1 and got["left"][3].tracks


def test_a_failing_batched_call_falls_back_to_each_stream(model, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory (pretend)")

    monkeypatch.setattr(sam2_stream, "propagate_streams", broken)
    names = ["front", "left"]
    multi = MultiStreamTracker.shared(names, _config(), Sam2StreamSegmenter(model))
    per_stream = _run_multi(multi, names)
    for name in names:
        _assert_same_stream(per_stream[name], _single(Sam2StreamSegmenter(model), name))


def test_reset_of_one_stream_only(model):
    names = ["front", "left"]
    multi = MultiStreamTracker.shared(names, _config(), Sam2StreamSegmenter(model))
    sequences = {n: _sequence(n) for n in names}
    got = {n: [] for n in names}
    for f in range(FRAMES):
        if f == 3:
            multi.reset("left")
            assert multi.tracker("left").num_tracks == 0
            assert multi.tracker("front").num_tracks > 0
        outcome = multi.step({n: sequences[n][f] for n in names})
        for name, result in outcome.results.items():
            got[name].append(result)
    _assert_same_stream(got["front"], _single(Sam2StreamSegmenter(model), "front"))
    # "left" after its reset: a single tracker reset at the same frame.
    tracker = Tracker(_config(), Sam2StreamSegmenter(model))
    want = []
    for f, (image, dets) in enumerate(sequences["left"]):
        if f == 3:
            tracker.reset()
        want.append(tracker.step(image, dets))
    _assert_same_stream(got["left"], want)
    multi.reset()
    assert all(multi.tracker(n).num_tracks == 0 for n in names)


def test_detection_masks_streams_equal_single_streams():
    names = ["front", "left"]
    multi = MultiStreamTracker.shared(names, _config(), DetectionMaskSegmenter())
    assert isinstance(multi.segmenter("left"), DetectionMaskSegmenter)
    assert multi.segmenter("left") is not multi.segmenter("front")
    per_stream = _run_multi(multi, names)
    for name in names:
        single = _single(DetectionMaskSegmenter(), name)
        assert sum(len(r.tracks) for r in single) > 0
        _assert_same_stream(per_stream[name], single)
        for got, want in zip(per_stream[name], single, strict=True):
            np.testing.assert_array_equal(got.labels, want.labels)  # no model: exact


def test_bad_input_on_one_stream_changes_nothing_there(model):
    names = ["front", "left"]
    multi = MultiStreamTracker.shared(names, _config(), Sam2StreamSegmenter(model))
    sequences = {n: _sequence(n) for n in names}
    got = {n: [] for n in names}
    for f in range(FRAMES):
        tick = {n: sequences[n][f] for n in names}
        if f == 2:
            tick["left"] = (np.zeros((10, 10), np.uint8), tick["left"][1])  # not RGB
        outcome = multi.step(tick)
        if f == 2:
            assert set(outcome.errors) == {"left"}
            assert isinstance(outcome.errors["left"], InvalidInputError)
        for name, result in outcome.results.items():
            got[name].append(result)
    _assert_same_stream(got["front"], _single(Sam2StreamSegmenter(model), "front"))
    left_frames = [fr for f, fr in enumerate(sequences["left"]) if f != 2]
    _assert_same_stream(got["left"], _single(Sam2StreamSegmenter(model), "left", left_frames))
    with pytest.raises(InvalidInputError, match="unknown stream"):
        multi.step({"nope": sequences["left"][0]})
