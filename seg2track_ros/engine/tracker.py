"""The Seg2Track track manager: ``Tracker.step(image, detections) -> StepResult``.

Per frame (the segmenter's call order is in segmenter.py):

1. encode the image and propagate every track (the segmenter);
2. drop detections below their class's detection threshold, clip boxes to the image;
3. batched geometry on the device (mask_ops), copied to the host once;
4. gated Hungarian association of tracks and detections (association.py); only equal
   class ids match unless ``match_across_classes``, and never a detection mostly
   outside the track's mask (see ``_associate``);
5. re-prompt pending tracks matched to a confident detection, start tracks for
   detections that lie mostly in the region no track covers (track masks, re-prompted
   tracks' boxes and tracks started earlier on this frame); all of them in one
   ``prompt`` call, output on this frame;
6. the state machine (``_advance``): weak- and lost-frame counters, Bernoulli existence,
   removal; SAM2MOT occlusion between overlapping tracks;
7. ``finish_frame(neutralise=occluded)``, then ``remove(removed)``;
8. output: one label image on the device (contested pixels go to the higher object-score
   logit, never to an OCCLUDED track: the occlusion rule's own quantity) and the tracks'
   boxes, copied to the host together; tracks' masks are views of it.

Decisions the method leaves open, made here:
- A track lost on a frame (object-score logit at most lost_logit, or not finite) is one
  the segmenter does not find: the mask it still holds is at best where the object was.
  So association is a two-stage cascade: the visible tracks are matched first, and a
  lost track may take only a detection that no visible track takes (its way back to its
  identity when the segmenter cannot re-find it, as the detection-masks segmenter never
  can). A lost mask covers no part of a detection's box in the new-track test, takes no
  part in occlusion and is output without pixels. Without the cascade, stale masks took
  other objects' detections (on KITTI MOTS with simulated detections most identity
  switches were a coasting track's detection taken by a neighbour's stale mask); without
  the stage at all, every track lost for a few frames restarted under a new id.
- Tracks removed on a frame are not output on it.
- A frame with no tracks and no kept detections still calls start_frame, propagate and
  finish_frame (the segmenter sees every frame, so its frame count and memory spacing stay
  true), and skips everything else.
- Occlusion is judged on the propagated masks' IoU (raw, before overlap resolution) and
  this frame's logits; a track re-prompted on this frame is never occluded (a confident
  detection just showed it), so a pair whose rule picks it marks no track. Occlusion does
  not by itself make a frame weak, but an occluded track's own scores still do, so a long
  occlusion removes it like any other loss.
- A new track's birth frame counts as matched to its own detection; existence is born at
  ``birth_existence`` and then gets the same predict + update as every frame.
- New tracks are limited by ``max_tracks`` counting the tracks held at the start of the
  frame (tracks removed on this frame still count).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch

from . import mask_ops
from .association import (
    CostFunction,
    PairGeometry,
    associate,
    association_gate,
    resolve_cost,
)
from .config import TrackerConfig
from .existence import ExistenceFilter
from .segmenter import Segmenter, SegmentOutput
from .types import Detections, InvalidInputError, StepResult, Track, TrackState

# Per-frame phases, in order. geometry and labels are the device-side mask work (mask
# geometry for association, the label image and boxes for the output), each ending in
# its one copy to the host; manage and output are host logic.
PHASES = ("encode", "propagate", "geometry", "manage", "prompt", "memory", "labels", "output")


class SegmenterContractError(RuntimeError):
    """The segmenter returned outputs that break the Segmenter interface."""


class TrackerStepError(RuntimeError):
    """Tracker.step failed after the tracker and its segmenter had begun to change.

    A half-done step would leave them disagreeing (e.g. the segmenter holding an object
    the tracker never recorded) and fail every later frame. So the tracker resets itself
    before raising: every track is dropped, track ids keep increasing, and the next frame
    is tracked normally. ``__cause__`` is the original exception.
    """


class TrackIdCounter:
    """Hands out track ids 1, 2, 3, ... A Tracker has its own; the streams of a
    MultiStreamTracker share one, so ids are unique across all its streams."""

    def __init__(self) -> None:
        self.next_id = 1

    def take(self) -> int:
        track_id = self.next_id
        self.next_id += 1
        return track_id


# --- the segmenter calls a step makes, as requests (Tracker.begin_step) ----------------
@dataclass(frozen=True)
class StartFrame:
    """Encode this frame's image: ``segmenter.start_frame(image)``; answer None."""

    image: np.ndarray

    def serve(self, segmenter: Segmenter) -> None:
        segmenter.start_frame(self.image)


@dataclass(frozen=True)
class Propagate:
    """Every object on this frame: answer ``segmenter.propagate()``."""

    def serve(self, segmenter: Segmenter) -> SegmentOutput:
        return segmenter.propagate()


@dataclass(frozen=True)
class FinishFrame:
    """Write this frame into the objects' memory: ``segmenter.finish_frame(neutralise)``;
    answer None."""

    neutralise: tuple[int, ...]

    def serve(self, segmenter: Segmenter) -> None:
        segmenter.finish_frame(neutralise=self.neutralise)


SegmenterRequest = StartFrame | Propagate | FinishFrame
StepPhases = Generator[SegmenterRequest, SegmentOutput | None, StepResult]


@dataclass
class _TrackRecord:
    """What the tracker keeps per track between frames."""

    track_id: int
    class_id: str
    detection_score: float  # last associated detection
    existence: float
    logit_history: deque[float]
    mask_score: float = 0.0
    logit: float = 0.0
    age: int = 0
    frames_since_detection: int = 0
    detected_frames: int = 0  # frames with an associated detection (birth included)
    weak_frames: int = 0  # consecutive weak (low predicted IoU) frames
    lost_frames: int = 0  # consecutive lost (low object-score logit) frames
    confirmed: bool = False


@dataclass
class _FrameDetections:
    """This frame's kept detections."""

    boxes: np.ndarray  # (N, 4) float32 clipped to the image
    pixel_boxes: np.ndarray  # (N, 4) int64 rounded to pixel edges, positive area
    scores: np.ndarray  # (N,)
    class_ids: list[str]
    masks: np.ndarray | None  # (N, H, W) bool


# The object-score logit SAM 2 itself gives an absent object; stands in for a non-finite
# one so that nothing downstream (existence, logit history, occlusion) sees a NaN.
ABSENT_LOGIT = -1024.0


@dataclass
class _Evidence:
    """One track's inputs to the state machine on this frame.

    Non-finite segmenter scores (NaN from a broken model or config) are replaced on
    construction by "no mask, absent" (score 0, ABSENT_LOGIT) and flagged ``corrupt``:
    such a frame is weak and lost, so the track is removed after max_weak_frames instead
    of staying CONFIRMED forever on scores that never compare below a threshold.
    """

    mask_score: float
    logit: float
    detection_score: float | None  # the associated detection's score, None when unmatched
    occluded: bool = False
    prompted: bool = False
    corrupt: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mask_score) and math.isfinite(self.logit)):
            self.mask_score, self.logit, self.corrupt = 0.0, ABSENT_LOGIT, True


class _PhaseTimer:
    """Time per phase without synchronising the device inside the step.

    On the host each lap charges the wall time since the previous lap to its phase. On
    CUDA that is only the time to queue the work, so each lap also records a CUDA event;
    after the step (whose last copy to the host waited for the stream anyway) the time
    between consecutive events is the device time of each phase, reported under the
    phase's name, with the host times as ``host_<phase>``. Elsewhere the host times are
    the phase times. ``total`` is the step's wall time.
    """

    def __init__(self, device: torch.device) -> None:
        self._cuda = device.type == "cuda"
        self._host = dict.fromkeys(PHASES, 0.0)
        self._events: list[tuple[str, torch.cuda.Event]] = []
        if self._cuda:
            self._events.append(("", self._record()))
        self._start = self._last = time.perf_counter()

    @staticmethod
    def _record() -> torch.cuda.Event:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def lap(self, phase: str) -> None:
        """Charge the time since the previous lap to ``phase``."""
        now = time.perf_counter()
        self._host[phase] += (now - self._last) * 1000.0
        self._last = now
        if self._cuda:
            self._events.append((phase, self._record()))

    def result(self) -> dict[str, float]:
        total = {"total": (self._last - self._start) * 1000.0}
        if not self._cuda:
            return {**self._host, **total}
        self._events[-1][1].synchronize()
        device = dict.fromkeys(PHASES, 0.0)
        for (_, before), (phase, after) in zip(self._events, self._events[1:], strict=False):
            device[phase] += before.elapsed_time(after)
        return {**device, **{f"host_{k}": v for k, v in self._host.items()}, **total}


class Tracker:
    """Seg2Track multi-object tracker over a Segmenter (SAM 2 or a test double).

    ``cost`` picks the association cost: a name in association.COSTS or a callable
    ``(PairGeometry, TrackerConfig) -> (K, N) costs``. ``ids`` hands out track ids; by
    default the tracker has its own counter (ids 1, 2, 3, ...); trackers that share one
    (``MultiStreamTracker``'s streams) never give two tracks the same id.
    """

    def __init__(
        self,
        config: TrackerConfig,
        segmenter: Segmenter,
        *,
        cost: str | CostFunction = "seg2track_pp",
        ids: TrackIdCounter | None = None,
    ) -> None:
        self._config = config.validate()
        self._segmenter = segmenter
        self._cost = resolve_cost(cost)
        self._existence = ExistenceFilter.from_config(config)
        self._tracks: dict[int, _TrackRecord] = {}
        self._ids = TrackIdCounter() if ids is None else ids
        self._frame_index = 0
        self._failing_frame = 0  # the frame a step began on, for its error message

    @property
    def num_tracks(self) -> int:
        return len(self._tracks)

    @property
    def segmenter(self) -> Segmenter:
        return self._segmenter

    @property
    def _next_id(self) -> int:
        """The id the next new track gets (from the counter, which may be shared)."""
        return self._ids.next_id

    def reset(self) -> None:
        """Forget all tracks (and the segmenter's objects); track ids keep increasing and
        the frame index restarts at 0."""
        self._tracks.clear()
        self._segmenter.reset()
        self._frame_index = 0

    # ---------------------------------------------------------------------------------
    def step(self, image_rgb: np.ndarray, detections: Detections) -> StepResult:
        """Track one frame: an (H, W, 3) uint8 RGB image and its detections.

        Raises InvalidInputError for unusable input (nothing changed), TrackerStepError
        when tracking failed part-way (the tracker reset itself: the next frame works).
        """
        phases = self.begin_step(image_rgb, detections)
        try:
            request = next(phases)
            while True:
                request = phases.send(request.serve(self._segmenter))
        except StopIteration as done:
            return done.value
        except Exception as error:
            raise self.fail_step(error) from error

    def begin_step(self, image_rgb: np.ndarray, detections: Detections) -> StepPhases:
        """The step as a generator of its segmenter calls, for a caller that serves them
        (``step`` itself, or ``MultiStreamTracker``, which batches the calls of several
        trackers sharing one model).

        Raises InvalidInputError for unusable input (nothing changed). The generator
        yields ``StartFrame``, ``Propagate`` and ``FinishFrame`` requests, to be answered
        by ``send(request.serve(segmenter))`` (or the equivalent batched result), and
        returns the StepResult; when it (or serving a request) raises, call
        ``fail_step`` with the error.
        """
        height, width = _check_image(image_rgb)
        if not isinstance(detections, Detections):
            raise InvalidInputError(f"detections must be Detections, got {type(detections)}")
        timer = _PhaseTimer(torch.device(getattr(self._segmenter, "device", "cpu")))
        # Before start_frame: bad input must not leave the segmenter inside a frame.
        dets = self._prepare_detections(detections, height, width)
        timer.lap("manage")
        self._failing_frame = self._frame_index
        return self._step(image_rgb, dets, timer)

    def fail_step(self, error: BaseException) -> TrackerStepError:
        """Reset after a step failed part-way; the TrackerStepError to raise."""
        # From start_frame on the step mutates the tracker and the segmenter: a failure
        # half-way must not poison the frames after it.
        frame_index = self._failing_frame
        self.reset()
        return TrackerStepError(
            f"tracking frame {frame_index} failed ({error!r}); all tracks were reset"
        )

    def _step(
        self, image_rgb: np.ndarray, dets: _FrameDetections, timer: _PhaseTimer
    ) -> StepPhases:
        height, width = image_rgb.shape[:2]
        config = self._config
        frame_index = self._frame_index
        self._frame_index += 1

        yield StartFrame(image_rgb)
        timer.lap("encode")
        propagated = yield Propagate()
        timer.lap("propagate")
        records = self._check_propagated(propagated, height, width)

        if not records and not len(dets.scores):
            timer.lap("manage")
            yield FinishFrame(())
            timer.lap("memory")
            labels = np.zeros((height, width), dtype=np.uint16)
            return StepResult(frame_index, [], timer.result(), labels)

        # A track lost on this frame (logit <= lost_logit: the segmenter does not find
        # it) covers nothing in the new-track test and takes no part in occlusion; it
        # may only take a detection no visible track takes (see the module docstring).
        geometry = mask_ops.association_geometry(
            propagated.masks,
            propagated.mask_scores,
            propagated.object_score_logits,
            dets.boxes,
            dets.pixel_boxes,
            lost_logit=config.lost_logit,
        )
        timer.lap("geometry")
        matched = self._associate(records, dets, geometry)
        reprompt = self._reinforcement(records, dets, geometry, matched)
        new_cols = self._select_new_tracks(
            len(records), dets, geometry, set(matched.values()), [matched[r] for r in reprompt]
        )
        new_records = [self._new_record(dets, col) for col in new_cols]
        timer.lap("manage")

        prompt_ids = [records[row].track_id for row in reprompt] + [r.track_id for r in new_records]
        prompt_cols = [matched[row] for row in reprompt] + new_cols
        prompted, prompt_scores, prompt_logits = self._prompt(prompt_ids, dets, prompt_cols)
        timer.lap("prompt")

        evidence = self._gather_evidence(
            records, new_records, geometry, dets, matched, reprompt, prompt_scores, prompt_logits
        )
        everyone = records + new_records
        for record, ev in zip(everyone, evidence, strict=True):
            record.logit_history.append(ev.logit)
        for row in self._occluded_rows(records, evidence, geometry.mask_iou):
            evidence[row].occluded = True
        states = [
            _advance(record, ev, self._existence, config, newborn=i >= len(records))
            for i, (record, ev) in enumerate(zip(everyone, evidence, strict=True))
        ]
        removed = [r.track_id for r, s in zip(everyone, states, strict=True) if s is None]
        occluded = [r.track_id for r, ev in zip(everyone, evidence, strict=True) if ev.occluded]
        for record in new_records:
            self._tracks[record.track_id] = record
        timer.lap("manage")

        yield FinishFrame(tuple(occluded))
        if removed:
            self._segmenter.remove(removed)
        for track_id in removed:
            del self._tracks[track_id]
        timer.lap("memory")

        tracks, labels = self._output(
            propagated, prompted, everyone, states, reprompt, (height, width), timer
        )
        timer.lap("output")
        return StepResult(frame_index, tracks, timer.result(), labels)

    # --- steps ---------------------------------------------------------------------
    def _check_propagated(
        self, propagated: SegmentOutput, height: int, width: int
    ) -> list[_TrackRecord]:
        """The tracks in the order of the segmenter's outputs, after checking them."""
        ids = list(propagated.object_ids)
        if sorted(ids) != sorted(self._tracks):
            raise SegmenterContractError(
                f"segmenter propagated objects {sorted(ids)}, but the tracker holds"
                f" {sorted(self._tracks)}"
            )
        expected = (len(ids), height, width)
        if tuple(propagated.masks.shape) != expected:
            raise SegmenterContractError(
                f"segmenter masks have shape {tuple(propagated.masks.shape)}, expected {expected}"
            )
        return [self._tracks[i] for i in ids]

    def _prepare_detections(
        self, detections: Detections, height: int, width: int
    ) -> _FrameDetections:
        """Kept detections: above their class's threshold, with a box that still has
        pixels after clipping to the image and rounding to pixel edges."""
        config = self._config
        class_ids = list(detections.class_ids)
        thresholds = np.array(
            [config.thresholds(c).detection_threshold for c in class_ids], dtype=np.float32
        )
        boxes = detections.boxes.copy()
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        pixel_boxes = np.floor(boxes + 0.5).astype(np.int64)
        keep = (
            (detections.scores >= thresholds)
            & (pixel_boxes[:, 2] > pixel_boxes[:, 0])
            & (pixel_boxes[:, 3] > pixel_boxes[:, 1])
        )
        masks = None
        if detections.masks is not None:
            masks = np.asarray(detections.masks, dtype=bool)
            if masks.shape[1:] != (height, width):
                raise InvalidInputError(
                    f"detection masks have shape {masks.shape[1:]}, the image {height}x{width}"
                )
            masks = masks[keep]
        index = np.flatnonzero(keep)
        return _FrameDetections(
            boxes=boxes[index],
            pixel_boxes=pixel_boxes[index],
            scores=detections.scores[index],
            class_ids=[class_ids[i] for i in index],
            masks=masks,
        )

    def _associate(
        self,
        records: list[_TrackRecord],
        dets: _FrameDetections,
        geometry: mask_ops.FrameGeometry,
    ) -> dict[int, int]:
        """Track row -> detection column for the matched pairs."""
        if not records or not len(dets.scores):
            return {}
        pairs = PairGeometry(
            iou=geometry.iou,
            centroid_distance=geometry.centroid_distance,
            detection_scores=dets.scores,
            detection_boxes=dets.boxes,
        )
        cost = np.asarray(self._cost(pairs, self._config), dtype=np.float64)
        if cost.shape != geometry.iou.shape:
            raise ValueError(
                f"association cost has shape {cost.shape}, expected {geometry.iou.shape}"
            )
        # A detection mostly outside a track's mask may not match it: the IoU gate alone
        # (0.1) let a detection lying 83% outside a pending track match it, so no track
        # started and the track was re-prompted onto the neighbour (issue 11, defect 3).
        # A pair needs at least 1 - addition_threshold of the box inside the mask (the
        # new-track test would not call the detection new because of this track), or at
        # least min_mask_in_box of the mask inside the box (a mask that shrank or lagged
        # inside its object, which the box still holds; a neighbour's box holds only a
        # sliver of it). We keep matching before the new-track test, rather than the
        # reference's order, so that a shrunken pending track is re-prompted instead of
        # duplicated and a re-prompted track's box can count as covered in the new-track
        # test (defect 7). The per-class addition threshold, not one fixed fraction,
        # because masks fill their boxes unevenly: a pedestrian's about half, a car's
        # most of it.
        config = self._config
        min_coverage = [1.0 - config.thresholds(c).addition_threshold for c in dets.class_ids]
        allowed = association_gate(
            geometry.iou,
            config.min_association_iou,
            [r.class_id for r in records],
            dets.class_ids,
            config.match_across_classes,
            containment=(
                geometry.box_coverage,
                geometry.mask_in_box,
                np.array(min_coverage),
                config.min_mask_in_box,
            ),
        )
        # Two-stage cascade (module docstring): visible tracks first, then lost tracks
        # over the detections left.
        lost = np.array([_lost(float(v), config) for v in geometry.logits], dtype=bool)
        matched = dict(associate(cost, allowed & ~lost[:, None]))
        if lost.any():
            taken = np.zeros(len(dets.scores), dtype=bool)
            taken[list(matched.values())] = True
            matched.update(associate(cost, allowed & lost[:, None] & ~taken[None, :]))
        return matched

    def _reinforcement(
        self,
        records: list[_TrackRecord],
        dets: _FrameDetections,
        geometry: mask_ops.FrameGeometry,
        matched: dict[int, int],
    ) -> list[int]:
        """Rows to re-prompt: Seg2Track-SAM2's reinforcement rule, one rule only.

        A matched track whose predicted IoU is below reinforcement_quality (or not
        finite), matched to a detection scoring at least its class's
        reinforcement_detection_score; every matched row for segmenters that only know
        what they are prompted with. The object-score logit plays no part (config.py
        says why SAM2MOT's logit rule is not added to it).
        """
        if self._segmenter.prompts_every_match:
            return sorted(matched)
        config = self._config
        rows = []
        for row, col in sorted(matched.items()):
            score = float(geometry.mask_scores[row])
            poor = not math.isfinite(score) or score < config.reinforcement_quality
            needed = config.thresholds(records[row].class_id).reinforcement_detection_score
            if poor and dets.scores[col] >= needed:
                rows.append(row)
        return rows

    def _select_new_tracks(
        self,
        num_tracks: int,
        dets: _FrameDetections,
        geometry: mask_ops.FrameGeometry,
        matched_cols: set[int],
        reprompt_cols: list[int],
    ) -> list[int]:
        """Unmatched detections, best first, whose box is mostly uncovered by track masks,
        by the boxes re-prompted tracks get on this frame and by the boxes of tracks
        started earlier on this frame.

        A re-prompted track's box covers like a new track's: both become that track's
        mask on this frame. Without it, two detections of one pending object gave one
        re-prompt plus a duplicate track (issue 11, defect 7).
        """
        config = self._config
        capacity = config.max_tracks - num_tracks
        candidates = sorted(
            (c for c in range(len(dets.scores)) if c not in matched_cols),
            key=lambda c: (-float(dets.scores[c]), c),
        )
        boxed = np.zeros(geometry.grid_covered.shape, dtype=bool)
        for col in reprompt_cols:
            boxed[geometry.grid_span(dets.pixel_boxes[col])] = True
        accepted: list[int] = []
        for col in candidates:
            if len(accepted) >= capacity:
                break
            box = dets.pixel_boxes[col]
            uncovered = 1.0 - geometry.covered_fraction(box, boxed)
            if uncovered > config.thresholds(dets.class_ids[col]).addition_threshold:
                accepted.append(col)
                boxed[geometry.grid_span(box)] = True
        return accepted

    def _new_record(self, dets: _FrameDetections, col: int) -> _TrackRecord:
        track_id = self._ids.take()
        return _TrackRecord(
            track_id=track_id,
            class_id=dets.class_ids[col],
            detection_score=float(dets.scores[col]),
            existence=self._config.birth_existence,
            logit_history=deque(maxlen=self._config.occlusion_history),
        )

    def _prompt(
        self, ids: list[int], dets: _FrameDetections, cols: list[int]
    ) -> tuple[SegmentOutput | None, dict[int, float], dict[int, float]]:
        """One prompt call for every new and re-prompted track; their scores on the host."""
        if not ids:
            return None, {}, {}
        masks = dets.masks[cols] if dets.masks is not None else None
        out = self._segmenter.prompt(ids, dets.boxes[cols], masks=masks)
        if sorted(out.object_ids) != sorted(ids):
            raise SegmenterContractError(
                f"segmenter answered prompt {sorted(ids)} with {sorted(out.object_ids)}"
            )
        (host,) = mask_ops.to_host(
            torch.cat((out.mask_scores.float(), out.object_score_logits.float()))
        )
        count = len(out.object_ids)
        scores = dict(zip(out.object_ids, host[:count].tolist(), strict=True))
        logits = dict(zip(out.object_ids, host[count:].tolist(), strict=True))
        return out, scores, logits

    def _gather_evidence(
        self,
        records: list[_TrackRecord],
        new_records: list[_TrackRecord],
        geometry: mask_ops.FrameGeometry,
        dets: _FrameDetections,
        matched: dict[int, int],
        reprompt: list[int],
        prompt_scores: dict[int, float],
        prompt_logits: dict[int, float],
    ) -> list[_Evidence]:
        """Per track (existing rows, then new tracks): this frame's scores and match."""
        evidence = []
        reprompted = set(reprompt)
        for row, record in enumerate(records):
            col = matched.get(row)
            det_score = None if col is None else float(dets.scores[col])
            if row in reprompted:
                ev = _Evidence(
                    prompt_scores[record.track_id],
                    prompt_logits[record.track_id],
                    det_score,
                    prompted=True,
                )
            else:
                ev = _Evidence(
                    float(geometry.mask_scores[row]), float(geometry.logits[row]), det_score
                )
            evidence.append(ev)
        for record in new_records:
            evidence.append(
                _Evidence(
                    prompt_scores[record.track_id],
                    prompt_logits[record.track_id],
                    record.detection_score,
                    prompted=True,
                )
            )
        return evidence

    def _occluded_rows(
        self, records: list[_TrackRecord], evidence: list[_Evidence], mask_iou: np.ndarray
    ) -> set[int]:
        """SAM2MOT cross-object rule over pairs of propagated masks with IoU > occlusion_iou
        (all pairs at once: with many overlapping tracks there are O(N^2) of them)."""
        config = self._config
        rows_i, rows_j = np.nonzero(np.triu(mask_iou > config.occlusion_iou, k=1))
        if not len(rows_i):
            return set()
        ids = np.array([r.track_id for r in records], dtype=np.int64)
        logits = np.array([e.logit for e in evidence], dtype=np.float64)
        spread = np.array(
            [np.var(r.logit_history) if r.logit_history else 0.0 for r in records],
            dtype=np.float64,
        )
        victims = _occlusion_victims(
            ids, logits, spread, rows_i, rows_j, config.occlusion_logit_margin
        )
        return {int(row) for row in victims if not evidence[row].prompted}

    def _output(
        self,
        propagated: SegmentOutput,
        prompted: SegmentOutput | None,
        everyone: list[_TrackRecord],
        states: list[TrackState | None],
        reprompt: list[int],
        size: tuple[int, int],
        timer: _PhaseTimer,
    ) -> tuple[list[Track], np.ndarray]:
        """The surviving tracks (ascending id) and the frame's label image.

        On the device: the label image (contested pixels to the higher logit, never to an
        OCCLUDED track; no pixels for LOST tracks) and
        the tracks' tight boxes; then one copy of both to the host. No per-track mask
        reaches the host: each Track's mask is a view of the label image.
        """
        num_propagated = len(propagated.object_ids)
        prompt_row = (
            {track_id: num_propagated + k for k, track_id in enumerate(prompted.object_ids)}
            if prompted is not None
            else {}
        )
        reprompted = set(reprompt)
        order = sorted(
            (i for i, s in enumerate(states) if s is not None), key=lambda i: everyone[i].track_id
        )
        if not order:
            timer.lap("labels")
            return [], np.zeros(size, dtype=np.uint16)
        source = [
            prompt_row[everyone[i].track_id] if i >= num_propagated or i in reprompted else i
            for i in order
        ]
        masks = propagated.masks
        if prompted is not None:
            # On the prompt's device: the propagated output is empty (maybe a CPU
            # placeholder) when no track existed before this frame.
            masks = torch.cat((masks.to(prompted.masks.device), prompted.masks))
        # One rule decides occlusion and ownership of contested pixels: the object-score
        # logit (SAM2MOT's visibility), with OCCLUDED tracks after all others. Owners
        # used to be picked by predicted IoU while occlusion went by the logit, so a track
        # marked OCCLUDED (its memory neutralised) could own its occluder's pixels.
        ranked = sorted(
            range(len(order)),
            key=lambda k: (
                states[order[k]] is TrackState.OCCLUDED,
                -everyone[order[k]].logit,
                everyone[order[k]].track_id,
            ),
        )
        priority = np.empty(len(order), dtype=np.float32)
        priority[ranked] = np.arange(len(order), 0, -1, dtype=np.float32)
        # A LOST track is kept so that the segmenter can find it again and give it its
        # identity back, but it is output without pixels, as trackers keep lost tracks
        # unreported. Drawing its mask would report a stale or failed mask for up to
        # max_lost_frames (SAM2MOT's 25) frames.
        drawn = np.array([states[i] is not TrackState.LOST for i in order])
        index = torch.as_tensor(source, dtype=torch.long, device=masks.device)
        shown = masks[index] * torch.from_numpy(drawn).to(masks.device)[:, None, None]
        labels = mask_ops.label_image(
            shown, torch.from_numpy(priority).to(masks.device, non_blocking=True)
        )
        boxes, present = mask_ops.label_boxes(labels, len(order))
        labels, boxes, present = mask_ops.to_host(labels, boxes, present)
        labels = labels.view(np.uint16) if labels.dtype == np.int16 else labels.astype(np.uint16)
        timer.lap("labels")
        tracks = []
        for k, i in enumerate(order):
            record, state = everyone[i], states[i]
            assert state is not None
            tracks.append(
                Track(
                    track_id=record.track_id,
                    class_id=record.class_id,
                    state=state,
                    bbox=tuple(boxes[k].tolist()) if present[k] else None,
                    detection_score=record.detection_score,
                    mask_score=record.mask_score,
                    existence=record.existence,
                    age=record.age,
                    frames_since_detection=record.frames_since_detection,
                    label=k + 1,
                    labels=labels,
                )
            )
        return tracks, labels


# --- the state machine: the one place where track states change -----------------------
def _low_quality(mask_score: float, logit: float, config: TrackerConfig) -> bool:
    if not (math.isfinite(mask_score) and math.isfinite(logit)):
        return True
    return mask_score < config.removal_quality


def _lost(logit: float, config: TrackerConfig) -> bool:
    return not math.isfinite(logit) or logit <= config.lost_logit


def _advance(
    record: _TrackRecord,
    ev: _Evidence,
    existence: ExistenceFilter,
    config: TrackerConfig,
    newborn: bool,
) -> TrackState | None:
    """Update a track with this frame's evidence; its state, or None when it is removed.

    - weak frame (predicted IoU below removal_quality, or non-finite scores) and lost
      frame (logit <= lost_logit, or non-finite scores): LOST on this frame; each kind
      has its own count of consecutive frames, reset by a frame without it;
    - removed after max_weak_frames consecutive weak frames (Seg2Track-SAM2), after
      max_lost_frames consecutive lost frames (SAM2MOT), or with existence below
      min_existence;
    - existence at least confirm_existence after at least min_confirm_frames frames with
      an associated detection confirms the track for good;
    - existence: a miss of a confirmed track that the segmenter segments reliably
      (logit > reliable_logit, predicted IoU >= reinforcement_quality) leaves it as it
      is; every other frame is a predict + update (existence.py);
    - shown state: OCCLUDED > LOST > CONFIRMED / TENTATIVE.
    """
    if not newborn:
        record.age += 1
    record.mask_score, record.logit = ev.mask_score, ev.logit
    if ev.detection_score is None:
        record.frames_since_detection += 1
    else:
        record.detection_score = ev.detection_score
        record.frames_since_detection = 0
        record.detected_frames += 1

    weak = ev.corrupt or _low_quality(ev.mask_score, ev.logit, config)
    lost = ev.corrupt or _lost(ev.logit, config)
    record.weak_frames = record.weak_frames + 1 if weak else 0
    record.lost_frames = record.lost_frames + 1 if lost else 0
    # SAM 2's own evidence: a confirmed track it segments reliably is not doubted
    # because the detector missed it (existence.py).
    reliable = (
        not ev.corrupt
        and ev.logit > config.reliable_logit
        and ev.mask_score >= config.reinforcement_quality
    )
    record.existence = existence.step(
        record.existence, ev.logit, ev.detection_score, vouched=record.confirmed and reliable
    )
    record.confirmed = record.confirmed or (
        record.existence >= config.confirm_existence
        and record.detected_frames >= config.min_confirm_frames
    )

    if (
        record.weak_frames >= config.max_weak_frames
        or record.lost_frames >= config.max_lost_frames
        or record.existence < config.min_existence
    ):
        return None
    if ev.occluded:
        return TrackState.OCCLUDED
    if weak or lost:
        return TrackState.LOST
    return TrackState.CONFIRMED if record.confirmed else TrackState.TENTATIVE


def _occlusion_victims(
    ids: np.ndarray,
    logits: np.ndarray,
    spread: np.ndarray,
    rows_i: np.ndarray,
    rows_j: np.ndarray,
    margin: float,
) -> np.ndarray:
    """For each pair (rows_i[k], rows_j[k]) of heavily overlapping tracks, the row of the
    one that is occluded, given each row's track id, logit and logit variance over its
    history.

    The lower logit; when the logits are within ``margin``, the one whose logit varied more
    over its history (an occluded object's visibility flickers); then the lower logit; then
    the younger track (higher id).
    """
    logit_i, logit_j = logits[rows_i], logits[rows_j]
    spread_i, spread_j = spread[rows_i], spread[rows_j]
    lower_logit = np.where(logit_i < logit_j, rows_i, rows_j)
    younger = np.where(ids[rows_i] > ids[rows_j], rows_i, rows_j)
    tie_break = np.where(logit_i != logit_j, lower_logit, younger)
    by_spread = np.where(
        spread_i != spread_j, np.where(spread_i > spread_j, rows_i, rows_j), tie_break
    )
    return np.where(np.abs(logit_i - logit_j) >= margin, lower_logit, by_spread)


def _check_image(image: np.ndarray) -> tuple[int, int]:
    if not isinstance(image, np.ndarray):
        raise InvalidInputError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidInputError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise InvalidInputError(f"image must be uint8, got {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InvalidInputError(f"image is empty: shape {image.shape}")
    return int(image.shape[0]), int(image.shape[1])
