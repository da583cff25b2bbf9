"""Fault injection, a test hook: a segmenter wrapper that makes Tracker.step fail on
purpose, to check that a failed step costs exactly its own frame.

Nothing uses it unless asked: tracker_node builds it only with ``inject_fault_every``
> 0 (default 0), and tests build it directly. The wrapped segmenter does all the real
work; the wrapper only raises ``InjectedFault`` on every ``every``-th frame, in the
middle of the step: right after the segmenter was prompted (so the segmenter already
holds objects the tracker never recorded, the worst half-done state), or, on a frame
with no prompt, at ``finish_frame`` before the frame is written to memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seg2track_ros.engine.segmenter import Segmenter, SegmentOutput


class InjectedFault(RuntimeError):
    """The failure FaultInjectingSegmenter raises on purpose."""


class FaultInjectingSegmenter(Segmenter):
    def __init__(self, segmenter: Segmenter, every: int) -> None:
        if int(every) < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.inner = segmenter
        self.every = int(every)
        self.device = segmenter.device
        self.prompts_every_match = segmenter.prompts_every_match
        self.frames = 0  # start_frame calls
        self.faults = 0  # InjectedFaults raised
        self._armed = False  # this frame still has to fail

    def _fail(self, where: str) -> None:
        self._armed = False
        self.faults += 1
        raise InjectedFault(f"injected fault {self.faults} in {where} on frame {self.frames}")

    def start_frame(self, image: np.ndarray) -> None:
        self.inner.start_frame(image)
        self.frames += 1
        self._armed = self.frames % self.every == 0

    def propagate(self) -> SegmentOutput:
        return self.inner.propagate()

    def prompt(
        self,
        object_ids: Sequence[int],
        boxes: np.ndarray,
        masks: np.ndarray | None = None,
    ) -> SegmentOutput:
        output = self.inner.prompt(object_ids, boxes, masks)
        if self._armed and len(object_ids):
            self._fail("prompt")
        return output

    def finish_frame(self, neutralise: Sequence[int] = ()) -> None:
        if self._armed:
            self._fail("finish_frame")
        self.inner.finish_frame(neutralise)

    def remove(self, object_ids: Sequence[int]) -> None:
        self.inner.remove(object_ids)

    def reset(self) -> None:
        self._armed = False
        self.inner.reset()

    def memory_bytes(self) -> int:
        return self.inner.memory_bytes()

    def new_stream(self) -> FaultInjectingSegmenter | None:
        inner = self.inner.new_stream()
        return None if inner is None else FaultInjectingSegmenter(inner, self.every)
