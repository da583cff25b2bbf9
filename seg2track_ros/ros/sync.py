"""Pairing images with their detections by header stamp (no rclpy: stamps are ints).

Detectors copy the image's stamp into their output, so the default pairing is exact.
``slop_ns`` > 0 pairs an image with the detections whose stamp is nearest within the
slop instead. Rules:

- an image waits at most ``timeout_ns`` (node clock) for its detections; then it is
  released with ``None`` and tracked without detections (SAM 2 still propagates);
- detectors process frames in order, so when detections pair with an image, earlier
  images still waiting are released with ``None`` at once, in order;
- pairs are released in image-stamp order;
- buffers are bounded: beyond ``max_pending`` waiting images the oldest is released
  without detections; beyond ``max_pending`` unmatched detections the oldest are
  dropped (counted in ``dropped_detections``), as are detections older than the last
  released image and those still waiting at a reset;
- images still waiting at a reset (stamps went backwards, processing stopped) are
  dropped, never released, and counted in ``dropped_images``.

Every image released without detections says why (``SyncedPair.unpaired``):
``timeout``, ``overtaken`` (detections of a later image arrived first) or
``queue_full``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass
class SyncedPair:
    stamp_ns: int
    image: Any
    detections: Any | None  # None: no detections arrived in time
    received_ns: int  # node-clock time the image arrived
    unpaired: str | None = None  # why detections is None: timeout, overtaken, queue_full


class StampSynchronizer:
    def __init__(self, slop_ns: int = 0, timeout_ns: int = 200_000_000, max_pending: int = 30):
        if slop_ns < 0 or timeout_ns < 0 or max_pending < 1:
            raise ValueError("slop and timeout must be >= 0 and max_pending >= 1")
        self.slop_ns = int(slop_ns)
        self.timeout_ns = int(timeout_ns)
        self.max_pending = int(max_pending)
        self._images: OrderedDict[int, tuple[Any, int]] = OrderedDict()  # stamp -> (image, t)
        self._detections: dict[int, Any] = {}
        self._last_released: int | None = None
        self.dropped_detections = 0  # detection messages that never paired, in total
        self._dropped_reported = 0
        self.dropped_images = 0  # images dropped at a reset, never released, in total
        self._dropped_images_reported = 0

    def take_dropped_detections(self) -> int:
        """Detection messages dropped unpaired since the last call."""
        new = self.dropped_detections - self._dropped_reported
        self._dropped_reported = self.dropped_detections
        return new

    def take_dropped_images(self) -> int:
        """Images dropped at a reset since the last call."""
        new = self.dropped_images - self._dropped_images_reported
        self._dropped_images_reported = self.dropped_images
        return new

    def reset(self) -> None:
        self.dropped_detections += len(self._detections)  # they will never pair now
        self.dropped_images += len(self._images)  # nor will these be released
        self._images.clear()
        self._detections.clear()
        self._last_released = None

    def rewind_if_before(self, stamp_ns: int) -> bool:
        """Forget everything when stamp_ns precedes the last released image (a bag
        looping, a clock reset); returns whether it did."""
        if self._last_released is not None and stamp_ns < self._last_released:
            self.reset()
            return True
        return False

    @property
    def pending_images(self) -> int:
        return len(self._images)

    def add_image(self, stamp_ns: int, image: Any, now_ns: int) -> list[SyncedPair]:
        released: list[SyncedPair] = []
        self._images[stamp_ns] = (image, now_ns)
        self._images = OrderedDict(sorted(self._images.items()))
        while len(self._images) > self.max_pending:
            released.append(self._release_oldest(None, "queue_full"))
        match = self._find_detections(stamp_ns)
        if match is not None:
            released += self._release_through(stamp_ns, self._detections.pop(match))
        return released + self.poll(now_ns)

    def add_detections(self, stamp_ns: int, detections: Any, now_ns: int) -> list[SyncedPair]:
        if self._last_released is not None and stamp_ns <= self._last_released:
            self.dropped_detections += 1  # its image is gone (released or never came)
            return self.poll(now_ns)
        image_stamp = self._find_image(stamp_ns)
        if image_stamp is not None:
            return self._release_through(image_stamp, detections) + self.poll(now_ns)
        self._detections[stamp_ns] = detections
        while len(self._detections) > self.max_pending:
            del self._detections[min(self._detections)]
            self.dropped_detections += 1
        return self.poll(now_ns)

    def poll(self, now_ns: int) -> list[SyncedPair]:
        """Release images that waited longer than the timeout (call periodically)."""
        released = []
        while self._images:
            _, (_, received) = next(iter(self._images.items()))
            if now_ns - received < self.timeout_ns:
                break
            released.append(self._release_oldest(None, "timeout"))
        return released

    # ------------------------------------------------------------------------------
    def _find_detections(self, image_stamp: int) -> int | None:
        return self._nearest(image_stamp, self._detections)

    def _find_image(self, detections_stamp: int) -> int | None:
        return self._nearest(detections_stamp, self._images)

    def _nearest(self, stamp: int, candidates) -> int | None:
        """The candidate stamp equal to `stamp`, or the nearest within the slop."""
        if stamp in candidates:
            return stamp
        if self.slop_ns == 0 or not candidates:
            return None
        nearest = min(candidates, key=lambda s: abs(s - stamp))
        return nearest if abs(nearest - stamp) <= self.slop_ns else None

    def _release_through(self, image_stamp: int, detections: Any) -> list[SyncedPair]:
        """Release every waiting image up to image_stamp: earlier ones without detections."""
        released = []
        while self._images and next(iter(self._images)) < image_stamp:
            released.append(self._release_oldest(None, "overtaken"))
        released.append(self._release_oldest(detections))
        return released

    def _release_oldest(self, detections: Any | None, unpaired: str | None = None) -> SyncedPair:
        stamp, (image, received) = self._images.popitem(last=False)
        self._last_released = stamp
        for old in [s for s in self._detections if s <= stamp]:
            del self._detections[old]
            self.dropped_detections += 1
        return SyncedPair(stamp, image, detections, received, unpaired)
