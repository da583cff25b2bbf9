"""Malformed inputs for the fuzz suite, each with what tracker_node must make of it.

A burst is a few items sent between two good frames. Every item knows, from the node's
documented rules (README "Bad input"), what it must cause: which `rejected_<reason>`
counters rise and by how much, whether its image is tracked (then an output with its
stamp must appear) and whether it is tracked without detections. The expectations are
written per kind here, by hand, not computed by the code under test.

Stamps: good frame n has stamp_of(n); items of the burst after it get stamps between
stamp_of(n) and stamp_of(n + 1), in sending order, so frames are tracked in the order
they are sent. A backwards stamp goes first in its burst (nothing is waiting to be
paired then) and is lower than every stamp before it, unless an image that must be
waiting for its detections at the rewind goes just before it. Their detections, and
everything after them, go out only once the node has received the image (its
`frames_in` says so), and what follows a rewinding image waits for its output:
messages on two topics can reach the node in either order, and detections that arrive
before the rewinding image are taken for the stream before the rewind (dropped at the
rewind and counted as unpaired, as a real looping bag's would be), which would make the
expected counts a matter of timing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from seg2track_ros.stress.messages import (
    RawDetection,
    box_detections,
    detections_msg,
    image_msg,
    raw_image_msg,
)
from seg2track_ros.stress.scenes import Scene, stamp_of

MAX_DETECTIONS = 300  # the node's max_detections in the fuzz run (its default)
HUGE_DETECTIONS = 10_000
UNSUPPORTED_ENCODINGS = ("yuv422", "32FC1", "16UC1", "bayer_rggb8", "mono16", "RGB8", "", "jpeg")
# (height, width) of mid-stream size changes; the 1080p one only in long runs
SIZE_CHANGES = ((48, 64), (96, 128), (240, 320))
LARGE_SIZE = (1080, 1920)
# Kinds that rewind the stream (stamps going backwards): sent first in their burst.
REWINDING = ("image_dropped_at_rewind", "image_stamp_backwards")


@dataclass
class Item:
    """One step of a burst: messages to publish and what they must cause."""

    kind: str
    image: object | None = None
    detections: object | None = None
    malformed: int = 0  # malformed messages among the two
    rejected: Counter = field(default_factory=Counter)  # rejected_<reason> increments
    tracked_size: tuple[int, int] | None = None  # the image is tracked at this size
    without_detections: bool = False  # ... and with no detections
    stamp: int = 0
    wait_for_receipt: bool = False  # send detections (and the rest) once the node has the image
    dropped: int = 0  # frames the node must drop (frames_dropped)


@dataclass
class Expectation:
    """What the node must report after every item sent so far."""

    rejected: Counter = field(default_factory=Counter)
    tracked_stamps: list[int] = field(default_factory=list)
    images_without_detections: int = 0
    images_sent: int = 0
    malformed: int = 0
    last_size: tuple[int, int] | None = None
    last_stamp: int | None = None
    frames_dropped: int = 0
    by_kind: Counter = field(default_factory=Counter)

    def add(self, item: Item) -> None:
        self.by_kind[item.kind] += 1
        self.malformed += item.malformed
        self.frames_dropped += item.dropped
        self.rejected.update(item.rejected)
        if item.image is not None:
            self.images_sent += 1
        if item.tracked_size is None:
            return
        # The node's worker, frame by frame in stamp order (README: stamps going
        # backwards or a change of image size reset the tracks, counted).
        if self.last_stamp is not None and item.stamp < self.last_stamp:
            self.rejected["stamp_backwards"] += 1
        if self.last_size is not None and item.tracked_size != self.last_size:
            self.rejected["image_size_changed"] += 1
        self.last_stamp, self.last_size = item.stamp, item.tracked_size
        self.tracked_stamps.append(item.stamp)
        self.images_without_detections += item.without_detections


class FuzzPlan:
    """Draws bursts of malformed items (seeded) around good frames of `scene`."""

    def __init__(self, scene: Scene, seed: int = 0, large_frames: bool = False) -> None:
        self.scene = scene
        self.rng = np.random.default_rng(seed)
        self.large_frames = large_frames
        self.size = (scene.height, scene.width)
        self._backwards = 0
        self.kinds = {
            "image_step_too_small": self._image_step_too_small,
            "image_data_short": self._image_data_short,
            "image_data_long": self._image_data_long,
            "image_step_padding_mismatch": self._image_step_padding_mismatch,
            "image_zero_width": self._image_zero_width,
            "image_zero_height": self._image_zero_height,
            "image_huge_size": self._image_huge_size,
            "image_unsupported_encoding": self._image_unsupported_encoding,
            "detection_nan_box": self._detection_nan_box,
            "detection_inf_box": self._detection_inf_box,
            "detection_score_beyond_float32": self._detection_score_beyond_float32,
            "detection_nan_score": self._detection_nan_score,
            "detection_negative_size": self._detection_negative_size,
            "detection_zero_size": self._detection_zero_size,
            "detection_tiny_size": self._detection_tiny_size,
            "detection_at_right_edge": self._detection_at_right_edge,
            "detection_outside_image": self._detection_outside_image,
            "detection_empty_class_id": self._detection_empty_class_id,
            "detection_no_hypothesis": self._detection_no_hypothesis,
            "detections_10k": self._detections_10k,
            "detections_never_pair_past": self._detections_never_pair_past,
            "detections_never_pair_future": self._detections_never_pair_future,
            "image_never_paired": self._image_never_paired,
            "image_stamp_backwards": self._image_stamp_backwards,
            "image_dropped_at_rewind": self._image_dropped_at_rewind,
            "image_size_change": self._image_size_change,
            "image_other_encoding": self._image_other_encoding,
        }
        self.rare = {"detections_10k", "image_huge_size"}
        self._unused = [str(n) for n in self.rng.permutation(list(self.kinds))]

    # ------------------------------------------------------------------ bursts
    def good_frame(self, frame: int) -> Item:
        """The good frame that ends burst `frame - 1`: it must be tracked."""
        stamp = stamp_of(frame)
        return self._tracked(
            "good",
            frame,
            stamp,
            image_msg(self.scene.image(frame), stamp),
            detections_msg(stamp, box_detections(self.scene.boxes(frame))),
            malformed=0,
        )

    def burst(self, frame: int, size: int) -> list[Item]:
        """`size` items to send after good frame `frame` (before frame + 1)."""
        names = list(self.kinds)
        weights = np.array([0.15 if n in self.rare else 1.0 for n in names])
        picks = list(self.rng.choice(names, size=size, p=weights / weights.sum()))
        # Every kind comes once before chance takes over, so even a short run covers
        # every field and reason.
        for k in range(size):
            if self._unused:
                picks[k] = self._unused.pop(0)
        rewinding = [p for p in picks if p in REWINDING]  # first: see the module docstring
        picks = rewinding + [p for p in picks if p not in REWINDING]
        step = (stamp_of(1) - stamp_of(0)) // (2 * size + 2)
        items: list[Item] = []
        for name in picks:
            made = self.kinds[name](frame, stamp_of(frame) + (len(items) + 1) * step)
            items += made if isinstance(made, list) else [made]
        return items

    # ------------------------------------------------------------------ helpers
    def _tracked(self, kind, frame, stamp, image, detections, malformed=1, rejected=None) -> Item:
        height, width = int(image.height), int(image.width)
        return Item(
            kind,
            image,
            detections,
            malformed=malformed,
            rejected=Counter(rejected or {}),
            tracked_size=(height, width),
            without_detections=detections is None,
            stamp=stamp,
        )

    def _maybe_detections(self, frame: int, stamp: int) -> tuple[object | None, int, Counter]:
        """Half the time a rejected image still gets its detector's message, which can
        then never pair (counted as unpaired)."""
        if self.rng.random() < 0.5:
            return None, 0, Counter()
        msg = detections_msg(stamp, box_detections(self.scene.boxes(frame)))
        return msg, 1, Counter({"unpaired_detections": 1})

    def _rejected_image(self, kind, reason, frame, stamp, **fields) -> Item:
        detections, extra, rejected = self._maybe_detections(frame, stamp)
        rejected[reason] += 1
        return Item(
            kind,
            raw_image_msg(stamp, **fields),
            detections,
            malformed=1 + extra,
            rejected=rejected,
            stamp=stamp,
        )

    def _good_detections(self, frame: int) -> list[RawDetection]:
        boxes = self.scene.boxes(frame)
        keep = int(self.rng.integers(0, len(boxes) + 1))
        return box_detections(boxes[:keep])

    def _bad_detections(self, kind, frame, stamp, reason, make) -> Item:
        """A good image whose detections mix good ones with 1-3 bad ones (made by
        `make(k)`): only the bad ones are dropped and counted, the frame is tracked."""
        bad = [make(k) for k in range(int(self.rng.integers(1, 4)))]
        mixed = self._good_detections(frame) + bad
        order = self.rng.permutation(len(mixed))
        detections = detections_msg(stamp, [mixed[i] for i in order])
        image = image_msg(self.scene.image(frame), stamp)
        return self._tracked(kind, frame, stamp, image, detections, rejected={reason: len(bad)})

    def _cx(self) -> float:
        return float(self.rng.uniform(10, self.size[1] - 10))

    def _cy(self) -> float:
        return float(self.rng.uniform(10, self.size[0] - 10))

    # ------------------------------------------------------------------ images
    def _image_step_too_small(self, frame, stamp):
        height, width = self.size
        step = int(self.rng.integers(0, width * 3))
        return self._rejected_image(
            "image_step_too_small", "step_too_small", frame, stamp,
            height=height, width=width, encoding="rgb8", step=step, data=bytes(step * height),
        )  # fmt: skip

    def _image_data_short(self, frame, stamp):
        height, width = self.size
        size = int(self.rng.integers(0, width * 3 * height))
        return self._rejected_image(
            "image_data_short", "data_size_mismatch", frame, stamp,
            height=height, width=width, encoding="rgb8", step=width * 3, data=bytes(size),
        )  # fmt: skip

    def _image_data_long(self, frame, stamp):
        height, width = self.size
        size = width * 3 * height + int(self.rng.integers(1, 5000))
        return self._rejected_image(
            "image_data_long", "data_size_mismatch", frame, stamp,
            height=height, width=width, encoding="rgb8", step=width * 3, data=bytes(size),
        )  # fmt: skip

    def _image_step_padding_mismatch(self, frame, stamp):
        """A padded step with the data of an unpadded image."""
        height, width = self.size
        step = width * 3 + int(self.rng.integers(1, 64))
        return self._rejected_image(
            "image_step_padding_mismatch", "data_size_mismatch", frame, stamp,
            height=height, width=width, encoding="bgr8", step=step, data=bytes(width * 3 * height),
        )  # fmt: skip

    def _image_zero_width(self, frame, stamp):
        return self._rejected_image(
            "image_zero_width", "empty_image", frame, stamp,
            height=self.size[0], width=0, encoding="rgb8", step=0, data=b"",
        )  # fmt: skip

    def _image_zero_height(self, frame, stamp):
        width = self.size[1]
        return self._rejected_image(
            "image_zero_height", "empty_image", frame, stamp,
            height=0, width=width, encoding="rgb8", step=width * 3, data=b"",
        )  # fmt: skip

    def _image_huge_size(self, frame, stamp):
        """Claims billions of pixels (the data is small): refused before any copy."""
        height = int(self.rng.integers(5_000, 2**31))
        width = int(self.rng.integers(5_000, 2**31))
        return self._rejected_image(
            "image_huge_size", "too_many_pixels", frame, stamp,
            height=height, width=width, encoding="rgb8", step=(width * 3) % 2**32, data=bytes(64),
        )  # fmt: skip

    def _image_unsupported_encoding(self, frame, stamp):
        height, width = self.size
        encoding = str(self.rng.choice(UNSUPPORTED_ENCODINGS))
        return self._rejected_image(
            "image_unsupported_encoding", "unsupported_encoding", frame, stamp,
            height=height, width=width, encoding=encoding, step=width * 3,
            data=bytes(width * 3 * height),
        )  # fmt: skip

    def _image_other_encoding(self, frame, stamp):
        """Not malformed: a supported encoding other than rgb8, or a padded step, with
        consistent data; it must be tracked like any frame."""
        rgb = self.scene.image(frame)
        height, width = rgb.shape[:2]
        encoding = str(self.rng.choice(["bgr8", "mono8", "rgba8", "bgra8", "rgb8-padded"]))
        if encoding == "bgr8":
            pixels = rgb[..., ::-1]
        elif encoding == "mono8":
            pixels = rgb[..., :1]
        elif encoding in ("rgba8", "bgra8"):
            pixels = np.dstack([rgb, np.full((height, width), 255, np.uint8)])
        else:
            pixels = rgb
        rows = np.ascontiguousarray(pixels).reshape(height, -1)
        padding = 5 if encoding == "rgb8-padded" else 0
        data = np.zeros((height, rows.shape[1] + padding), np.uint8)
        data[:, : rows.shape[1]] = rows
        image = raw_image_msg(
            stamp, height, width, encoding.removesuffix("-padded"), data.shape[1], data.tobytes()
        )
        detections = detections_msg(stamp, self._good_detections(frame))
        return self._tracked("image_other_encoding", frame, stamp, image, detections, malformed=0)

    # ------------------------------------------------------------------ detections
    def _detection_nan_box(self, frame, stamp):
        def make(k):
            values = [self._cx(), self._cy(), 10.0, 10.0]
            values[int(self.rng.integers(0, 4))] = float("nan")
            return RawDetection(*values)

        return self._bad_detections("detection_nan_box", frame, stamp, "non_finite", make)

    def _detection_inf_box(self, frame, stamp):
        def make(k):
            values = [self._cx(), self._cy(), 10.0, 10.0]
            values[int(self.rng.integers(0, 4))] = float(self.rng.choice([np.inf, -np.inf]))
            return RawDetection(*values)

        return self._bad_detections("detection_inf_box", frame, stamp, "non_finite", make)

    def _detection_score_beyond_float32(self, frame, stamp):
        def make(k):
            score = float(self.rng.choice([1e39, -1e39, 1e300, np.inf]))
            return RawDetection(self._cx(), self._cy(), 10.0, 10.0, score=score)

        return self._bad_detections(
            "detection_score_beyond_float32", frame, stamp, "non_finite", make
        )

    def _detection_nan_score(self, frame, stamp):
        def make(k):
            return RawDetection(self._cx(), self._cy(), 10.0, 10.0, score=float("nan"))

        return self._bad_detections("detection_nan_score", frame, stamp, "non_finite", make)

    def _detection_negative_size(self, frame, stamp):
        def make(k):
            size = [10.0, 10.0]
            size[int(self.rng.integers(0, 2))] = -float(self.rng.uniform(0.1, 50))
            return RawDetection(self._cx(), self._cy(), *size)

        return self._bad_detections(
            "detection_negative_size", frame, stamp, "non_positive_size", make
        )

    def _detection_zero_size(self, frame, stamp):
        def make(k):
            return RawDetection(self._cx(), self._cy(), 0.0, float(self.rng.choice([0.0, 10.0])))

        return self._bad_detections("detection_zero_size", frame, stamp, "non_positive_size", make)

    def _detection_tiny_size(self, frame, stamp):
        """A size of 1e-7: positive in float64, nothing in float32."""

        def make(k):
            # Centred on a float32 value >= 8, where float32's spacing exceeds 1e-7
            # many times: both corners round to the centre.
            return RawDetection(float(np.float32(self._cx())), self._cy(), 1e-7, 10.0)

        return self._bad_detections("detection_tiny_size", frame, stamp, "non_positive_size", make)

    def _detection_at_right_edge(self, frame, stamp):
        """A box starting 1e-6 px inside the right edge, clipped to it."""
        width = self.size[1]

        def make(k):
            return RawDetection(width - 1e-6 + 5.0, self._cy(), 10.0, 10.0)

        return self._bad_detections(
            "detection_at_right_edge", frame, stamp, "non_positive_size", make
        )

    def _detection_outside_image(self, frame, stamp):
        height, width = self.size

        def make(k):
            side = int(self.rng.integers(0, 4))
            cx = [-50.0, width + 50.0, self._cx(), self._cx()][side]
            cy = [self._cy(), self._cy(), -50.0, height + 50.0][side]
            return RawDetection(cx, cy, 20.0, 20.0)

        return self._bad_detections("detection_outside_image", frame, stamp, "outside_image", make)

    def _detection_empty_class_id(self, frame, stamp):
        def make(k):
            class_id = str(self.rng.choice(["", " ", "\t"]))
            return RawDetection(self._cx(), self._cy(), 10.0, 10.0, class_id=class_id)

        return self._bad_detections(
            "detection_empty_class_id", frame, stamp, "missing_class_id", make
        )

    def _detection_no_hypothesis(self, frame, stamp):
        def make(k):
            return RawDetection(self._cx(), self._cy(), 10.0, 10.0, class_id=None)

        return self._bad_detections(
            "detection_no_hypothesis", frame, stamp, "missing_class_id", make
        )

    def _detections_10k(self, frame, stamp):
        """10,000 valid detections: the best max_detections are kept, the rest counted."""
        height, width = self.size
        w = self.rng.uniform(4, 12, HUGE_DETECTIONS)
        h = self.rng.uniform(4, 12, HUGE_DETECTIONS)
        cx = self.rng.uniform(8, width - 8, HUGE_DETECTIONS)
        cy = self.rng.uniform(8, height - 8, HUGE_DETECTIONS)
        scores = self.rng.uniform(0.0, 1.0, HUGE_DETECTIONS)
        raw = [
            RawDetection(float(a), float(b), float(c), float(d), score=float(s))
            for a, b, c, d, s in zip(cx, cy, w, h, scores, strict=True)
        ]
        image = image_msg(self.scene.image(frame), stamp)
        return self._tracked(
            "detections_10k",
            frame,
            stamp,
            image,
            detections_msg(stamp, raw),
            rejected={"over_max_detections": HUGE_DETECTIONS - MAX_DETECTIONS},
        )

    # ------------------------------------------------------------------ stamps, sizes
    def _detections_never_pair_past(self, frame, stamp):
        """Detections for an image long gone (older than the last tracked frame)."""
        past = stamp_of(frame) - int(self.rng.integers(1, 10**9))
        msg = detections_msg(past, self._good_detections(frame))
        return Item(
            "detections_never_pair_past",
            None,
            msg,
            malformed=1,
            rejected=Counter({"unpaired_detections": 1}),
            stamp=stamp,
        )

    def _detections_never_pair_future(self, frame, stamp):
        """Detections for an image that never comes (dropped once a later image is
        tracked)."""
        msg = detections_msg(stamp, self._good_detections(frame))
        return Item(
            "detections_never_pair_future",
            None,
            msg,
            malformed=1,
            rejected=Counter({"unpaired_detections": 1}),
            stamp=stamp,
        )

    def _image_never_paired(self, frame, stamp):
        """An image whose detections never come: tracked without them."""
        image = image_msg(self.scene.image(frame), stamp)
        return self._tracked("image_never_paired", frame, stamp, image, None)

    def _image_stamp_backwards(self, frame, stamp):
        """An image stamped before everything sent so far (a looping bag): tracks reset,
        counted (see the module docstring for when its detections are sent)."""
        self._backwards += 1
        backwards = stamp_of(0) - self._backwards * (stamp_of(1) - stamp_of(0))
        image = image_msg(self.scene.image(frame), backwards)
        detections = detections_msg(backwards, self._good_detections(frame))
        item = self._tracked("image_stamp_backwards", frame, backwards, image, detections)
        item.wait_for_receipt = True
        return item

    def _image_dropped_at_rewind(self, frame, stamp):
        """An image still waiting for its detections when a backwards stamp rewinds
        the stream: it is dropped, never tracked, and must be counted
        (rejected_unpaired_images, frames_dropped). Then the rewinding image."""
        waiting = Item(
            "image_dropped_at_rewind",
            image_msg(self.scene.image(frame), stamp),
            None,
            malformed=1,
            rejected=Counter({"unpaired_images": 1}),
            stamp=stamp,
            wait_for_receipt=True,
            dropped=1,
        )
        return [waiting, self._image_stamp_backwards(frame, stamp + 1)]

    def _image_size_change(self, frame, stamp):
        """A frame of another size mid-stream (tracks reset, counted), with detections
        scaled to it."""
        sizes = list(SIZE_CHANGES) + ([LARGE_SIZE] if self.large_frames else [])
        height, width = sizes[int(self.rng.integers(0, len(sizes)))]
        scene = Scene(height, width, self.scene.objects, self.scene.lifetime, self.scene.seed)
        image = image_msg(scene.image(frame), stamp)
        detections = detections_msg(stamp, box_detections(scene.boxes(frame)))
        return self._tracked("image_size_change", frame, stamp, image, detections)
