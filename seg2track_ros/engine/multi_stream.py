"""Several streams (cameras), one segmenter model: ``MultiStreamTracker``.

Each stream has its own Tracker (tracks, existence, frame index) and its own segmenter
state (objects and memory banks); the streams' SAM 2 segmenters share one model
(``Sam2StreamSegmenter.new_stream``), loaded once. A tick, ``step({name: (image,
detections)})``, tracks one frame of every stream given, and runs the segmenter's
three per-frame phases once for all of them together:

- one image-encoder call over every stream's image (``sam2_stream.start_frames``; SAM 2
  resizes each image to image_size x image_size, so cameras of different sizes batch);
- memory attention and the mask decoder over the objects of all streams together
  (``propagate_streams``);
- the memory encoder over the objects of all streams together (``finish_frames``).

Between the phases each stream's own track manager runs as in ``Tracker.step`` (it is the
same code: ``Tracker.begin_step`` is the step as a generator of its segmenter calls). The
prompt call (new and re-prompted tracks) stays per stream: it comes from each stream's
association and is small next to the three batched phases.

Segmenters that share no model (the detection-masks segmenter, a fault-injecting
wrapper, a plugin's) are served stream by stream: the results are the same, only not
batched.

Track ids are unique across the streams: they share one counter (``TrackIdCounter``),
so ids are handed out in the order births happen (within a tick, in the order of the
streams given to the constructor). A stream's ids are therefore not the ids a tracker
of that stream alone would give, but they keep its order (every comparison of ids
within a stream, such as the occlusion rule's "younger track", decides the same).

Failures stay within their stream: unusable input (InvalidInputError) leaves the
stream unchanged; a failure part-way resets only that stream (TrackerStepError, as
``Tracker.step``). When a batched call itself fails (it changes no stream before it has
computed everything), its streams are served one by one, so the failure lands on the
stream that causes it and the others are tracked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .association import CostFunction
from .config import TrackerConfig
from .segmenter import Segmenter
from .tracker import (
    FinishFrame,
    Propagate,
    SegmenterRequest,
    StartFrame,
    StepPhases,
    Tracker,
    TrackIdCounter,
)
from .types import Detections, InvalidInputError, StepResult


@dataclass
class MultiStepResult:
    """One tick: the result of every stream tracked, and the error of every stream
    that failed (InvalidInputError: nothing changed; TrackerStepError: that stream was
    reset)."""

    results: dict[str, StepResult] = field(default_factory=dict)
    errors: dict[str, Exception] = field(default_factory=dict)


class MultiStreamTracker:
    """Several named streams, each with its own Tracker, over segmenters that may share
    one model (see the module docstring).

    ``segmenters`` maps each stream's name to its segmenter (at least one stream; the
    order is the streams' order). ``shared(names, config, segmenter)`` builds the
    streams from one segmenter and its ``new_stream`` copies.
    """

    def __init__(
        self,
        config: TrackerConfig,
        segmenters: Mapping[str, Segmenter],
        *,
        cost: str | CostFunction = "seg2track_pp",
    ) -> None:
        if not segmenters:
            raise ValueError("a MultiStreamTracker needs at least one stream")
        self.ids = TrackIdCounter()
        self._segmenters = dict(segmenters)
        self._trackers = {
            name: Tracker(config, segmenter, cost=cost, ids=self.ids)
            for name, segmenter in self._segmenters.items()
        }

    @classmethod
    def shared(
        cls,
        names: Sequence[str],
        config: TrackerConfig,
        segmenter: Segmenter,
        *,
        build: Callable[[], Segmenter] | None = None,
        cost: str | CostFunction = "seg2track_pp",
    ) -> MultiStreamTracker:
        """Streams ``names``; the first uses ``segmenter``, the others its
        ``new_stream()`` (sharing its model), or ``build()`` where it has none."""
        names = list(names)
        if len(set(names)) != len(names):
            raise ValueError(f"stream names must be unique, got {names}")
        segmenters: dict[str, Segmenter] = {}
        for k, name in enumerate(names):
            other = segmenter if k == 0 else segmenter.new_stream()
            if other is None:
                if build is None:
                    raise ValueError(
                        f"{type(segmenter).__name__} cannot make another stream; pass build"
                    )
                other = build()
            segmenters[name] = other
        return cls(config, segmenters, cost=cost)

    # ---------------------------------------------------------------------------------
    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(self._trackers)

    def tracker(self, name: str) -> Tracker:
        return self._trackers[self._known(name)]

    def segmenter(self, name: str) -> Segmenter:
        return self._segmenters[self._known(name)]

    def reset(self, name: str | None = None) -> None:
        """Forget the tracks of stream ``name`` (every stream when None); track ids keep
        increasing."""
        for stream in self.streams if name is None else (self._known(name),):
            self._trackers[stream].reset()

    def memory_bytes(self) -> int:
        return sum(int(s.memory_bytes()) for s in self._segmenters.values())

    # ---------------------------------------------------------------------------------
    def step(self, frames: Mapping[str, tuple[np.ndarray, Detections]]) -> MultiStepResult:
        """Track one frame of each stream in ``frames`` (name -> (RGB image, detections));
        streams not in it are not advanced. See the module docstring for the batching and
        for failures."""
        for name in frames:
            self._known(name)
        outcome = MultiStepResult()
        running: dict[str, StepPhases] = {}
        for name in self.streams:
            if name not in frames:
                continue
            image, detections = frames[name]
            try:
                running[name] = self._trackers[name].begin_step(image, detections)
            except InvalidInputError as error:
                outcome.errors[name] = error
        answers: dict[str, object] = dict.fromkeys(running)
        while running:
            requests: dict[str, SegmenterRequest] = {}
            for name, phases in list(running.items()):
                try:
                    requests[name] = phases.send(answers[name])
                except StopIteration as done:
                    outcome.results[name] = done.value
                    del running[name]
                except Exception as error:
                    self._fail(name, error, outcome, running)
            answers = self._serve(requests, outcome, running)
        return outcome

    def _fail(
        self,
        name: str,
        error: Exception,
        outcome: MultiStepResult,
        running: dict[str, StepPhases],
    ) -> None:
        phases = running.pop(name, None)
        if phases is not None:
            phases.close()
        failure = self._trackers[name].fail_step(error)
        failure.__cause__ = error
        outcome.errors[name] = failure

    def _serve(
        self,
        requests: Mapping[str, SegmenterRequest],
        outcome: MultiStepResult,
        running: dict[str, StepPhases],
    ) -> dict[str, object]:
        """Answer each stream's request: one batched call per group of streams of one
        request kind that share a model, the others one by one."""
        answers: dict[str, object] = {}
        for group in self._groups(requests):
            if len(group) > 1:
                try:
                    answers.update(self._serve_batched(group, requests))
                    continue
                except Exception:
                    pass  # served stream by stream below: the failure lands on its stream
            for name in group:
                try:
                    answers[name] = requests[name].serve(self._segmenters[name])
                except Exception as error:
                    self._fail(name, error, outcome, running)
        return answers

    def _groups(self, requests: Mapping[str, SegmenterRequest]) -> Iterable[list[str]]:
        groups: list[list[str]] = []
        for name, request in requests.items():
            segmenter = self._segmenters[name]
            for group in groups:
                head = group[0]
                if type(requests[head]) is type(request) and self._segmenters[
                    head
                ].shares_model_with(segmenter):
                    group.append(name)
                    break
            else:
                groups.append([name])
        return groups

    def _serve_batched(
        self, group: list[str], requests: Mapping[str, SegmenterRequest]
    ) -> dict[str, object]:
        from . import sam2_stream

        segmenters = [self._segmenters[name] for name in group]
        kind = requests[group[0]]
        if isinstance(kind, StartFrame):
            sam2_stream.start_frames(segmenters, [requests[n].image for n in group])
            return dict.fromkeys(group)
        if isinstance(kind, Propagate):
            return dict(zip(group, sam2_stream.propagate_streams(segmenters), strict=True))
        if isinstance(kind, FinishFrame):
            sam2_stream.finish_frames(segmenters, [requests[n].neutralise for n in group])
            return dict.fromkeys(group)
        raise TypeError(f"unknown segmenter request {kind!r}")

    def _known(self, name: str) -> str:
        if name not in self._trackers:
            raise InvalidInputError(f"unknown stream {name!r}; streams: {list(self._trackers)}")
        return name
