"""Typed configuration of the engine: one place for every threshold, with per-class values.

Defaults are Seg2Track-SAM2's KITTI MOTS settings where the paper has one (detection
threshold 0.5, addition threshold car 0.6 / pedestrian 0.85, removal below quality 0.1
after 5 frames, reinforcement below quality 0.7) and SAM2MOT's object-score levels
(reliable > 8, lost <= 2) and lost tolerance (25 frames) for the visibility states. The
paper's 16-frame memory window has no setting here: SAM 2 itself attends to at most its
num_maskmem - 1 = 6 most recent frames, and the segmenter keeps only what attention can
still read (SegmenterConfig's memory bounds). Values that neither paper fixes
(association weights, existence filter) are ours and documented here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """An invalid configuration value; the message names the setting."""


@dataclass(frozen=True)
class ClassThresholds:
    """Thresholds that may differ per detector class."""

    # Detections scoring below this are ignored entirely.
    detection_threshold: float = 0.5
    # An unmatched detection starts a track when more than this fraction of its box lies
    # in the region no track covers (tracks started earlier on the same frame count as
    # covering their boxes).
    addition_threshold: float = 0.6
    # A weak track is re-prompted with a matched detection's box only when the
    # detection scores at least this (Seg2Track-SAM2 uses the addition threshold).
    reinforcement_detection_score: float = 0.6

    def validate(self, where: str) -> None:
        for name in ("detection_threshold", "addition_threshold", "reinforcement_detection_score"):
            _check_unit(f"{where}.{name}", getattr(self, name))


def _kitti_classes() -> dict[str, ClassThresholds]:
    return {
        "car": ClassThresholds(addition_threshold=0.6, reinforcement_detection_score=0.6),
        "pedestrian": ClassThresholds(addition_threshold=0.85, reinforcement_detection_score=0.85),
    }


@dataclass(frozen=True)
class TrackerConfig:
    """Track manager settings (Seg2Track-SAM2 + SAM2MOT + Seg2Track++ validation)."""

    # Thresholds for classes not listed in `classes`.
    default_class: ClassThresholds = field(default_factory=ClassThresholds)
    # Per-class thresholds keyed by the detector's class id string.
    classes: dict[str, ClassThresholds] = field(default_factory=_kitti_classes)

    # --- association (gated Hungarian) -----------------------------------------------
    # Pairs whose IoU(track mask, filled detection box) is below this are never matched.
    min_association_iou: float = 0.1
    # Nor are pairs where the detection lies mostly outside the track's mask: a pair
    # needs at least 1 - addition_threshold (of the detection's class) of the box inside
    # the mask, or at least min_mask_in_box of the mask inside the box (a mask that shrank
    # inside its object). A detection the new-track test calls new then never matches.
    min_mask_in_box: float = 0.5
    # cost = (iou_weight * (1 - IoU) + centroid_weight * d) * (1 + confidence_weight * (1 - s))
    # d: distance between the mask centroid and the box centre over the box diagonal
    # (capped at 1); s: detection score. Seg2Track++'s mask-centroid distance and
    # confidence-aware modulation; centroid_weight 0 and confidence_weight 0 give
    # Seg2Track-SAM2's plain 1 - IoU.
    iou_weight: float = 1.0
    centroid_weight: float = 0.5
    confidence_weight: float = 0.5
    # Seg2Track-SAM2 matches a detection to any track; by default we only match equal
    # class ids, so a pedestrian detection never feeds (or re-prompts) a car track.
    match_across_classes: bool = False

    # --- track quality and removal (Seg2Track-SAM2, SAM2MOT) -------------------------
    # Two rules, each from the paper it belongs to, each with its own consecutive-frame
    # counter (a frame that does not meet the rule resets it); the track is LOST on a
    # frame that meets either:
    # - Seg2Track-SAM2's quality rule: a frame whose predicted IoU is below
    #   removal_quality (or whose scores are not finite) is weak, and max_weak_frames
    #   consecutive weak frames remove the track (its 5 "tries");
    # - SAM2MOT's lost state: a frame whose object-score logit is at most lost_logit is
    #   lost (SAM 2 believes the object hidden), and the track is removed after
    #   max_lost_frames consecutive lost frames (SAM2MOT's 25), so occlusions up to about
    #   a second keep their identity; the quality rule still removes a track whose mask
    #   has failed.
    removal_quality: float = 0.1
    lost_logit: float = 2.0
    max_weak_frames: int = 5
    max_lost_frames: int = 25
    # Re-prompting (one rule: Seg2Track-SAM2's reinforcement). A matched track whose
    # predicted IoU is below reinforcement_quality, matched to a detection scoring at
    # least its class's reinforcement_detection_score, is re-prompted with the box.
    # SAM2MOT's quality reconstruction (re-prompt a "pending" track, logit <= 8) is not
    # added to it: the union of both re-prompted more than either paper does, and every
    # re-prompt becomes a conditioning frame (max_conditioning_frames; the first prompt
    # stays, the oldest re-prompt goes), so extra re-prompts push earlier anchors out of
    # memory. Seg2Track-SAM2's rule is the one this manager implements (its AssA is the
    # target), it reads the quantity a box prompt repairs (the mask's quality, not its
    # visibility), and SAM2MOT's logit levels come from an unofficial reimplementation.
    reinforcement_quality: float = 0.7
    # SAM2MOT's "reliable" level: a frame whose logit is above reliable_logit and whose
    # predicted IoU is at least reinforcement_quality is reliably segmented; a CONFIRMED
    # track missed by the detector on such a frame keeps its existence (below).
    reliable_logit: float = 8.0

    # --- occlusion between objects (SAM2MOT cross-object interaction) ----------------
    # Two tracks whose raw masks overlap with IoU above this: the one with the lower
    # logit is occluded; when the logits differ by less than occlusion_logit_margin, the
    # one whose logit varied more over the last occlusion_history frames is.
    occlusion_iou: float = 0.8
    occlusion_logit_margin: float = 1.0
    occlusion_history: int = 10

    # --- existence (Bernoulli filter, Seg2Track++ probabilistic track validation) ----
    # Predict r <- survival_probability * r; update with detection probability
    # p_D = detection_probability * sigmoid(object-score logit) and, for an associated
    # detection of score s, likelihood ratio l = s / (1 - s):
    #   r <- (1 - p_D + p_D * l) r / (1 - p_D r + p_D l r)   (l = 0 when unmatched)
    # SAM 2's evidence decides what a miss means: a CONFIRMED track that the segmenter
    # segments reliably on the frame (logit > reliable_logit and predicted IoU >=
    # reinforcement_quality) keeps its r through a missed detection (existence.py says
    # why); every other miss counts. detection_probability 0.5: each frame an unconfirmed
    # (or unreliably segmented) track goes undetected roughly halves its existence odds,
    # so an unconfirmed false positive is gone in about 6 frames.
    birth_existence: float = 0.5
    survival_probability: float = 0.99
    detection_probability: float = 0.5
    # TENTATIVE (not output) until existence reaches confirm_existence *and* the track
    # has been associated with a detection on at least min_confirm_frames frames (its
    # birth frame counts): then CONFIRMED for good. With 1, one confident detection
    # confirms a track at birth, so a single false positive is output; 2 asks the
    # detector to find the object again on a later frame first. A track whose existence
    # falls below min_existence is removed as a ghost.
    confirm_existence: float = 0.8
    min_confirm_frames: int = 2
    min_existence: float = 0.02

    # --- limits ----------------------------------------------------------------------
    # At most this many tracks at once; detections that would start more are ignored.
    max_tracks: int = 100

    def thresholds(self, class_id: str) -> ClassThresholds:
        return self.classes.get(class_id, self.default_class)

    def validate(self) -> TrackerConfig:
        self.default_class.validate("default_class")
        for name, thresholds in self.classes.items():
            thresholds.validate(f"classes.{name}")
        for name in (
            "min_association_iou",
            "min_mask_in_box",
            "removal_quality",
            "reinforcement_quality",
            "occlusion_iou",
            "birth_existence",
            "survival_probability",
            "detection_probability",
            "confirm_existence",
            "min_existence",
        ):
            _check_unit(name, getattr(self, name))
        for name in (
            "iou_weight",
            "centroid_weight",
            "confidence_weight",
            "occlusion_logit_margin",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if not isinstance(self.match_across_classes, bool):
            raise ConfigError(
                f"match_across_classes must be true or false, got {self.match_across_classes!r}"
            )
        if self.iou_weight + self.centroid_weight == 0:
            raise ConfigError("iou_weight and centroid_weight cannot both be 0")
        for name in (
            "max_weak_frames",
            "max_lost_frames",
            "min_confirm_frames",
            "occlusion_history",
            "max_tracks",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if self.max_tracks > 65535:
            # Output labels are uint16 (0 = background).
            raise ConfigError(f"max_tracks must be at most 65535, got {self.max_tracks}")
        if self.lost_logit >= self.reliable_logit:
            raise ConfigError(
                f"lost_logit ({self.lost_logit}) must be below"
                f" reliable_logit ({self.reliable_logit})"
            )
        if self.min_existence >= self.confirm_existence:
            raise ConfigError("min_existence must be below confirm_existence")
        return self


# Beyond this the image encoder's memory and time explode for no gain (the official models
# are trained at 1024; a run at 8192 went on for over 10 minutes in 5.7 GB on 2 CPU
# cores, issue 12).
MAX_IMAGE_SIZE = 4096


@dataclass(frozen=True)
class SegmenterConfig:
    """SAM 2 streaming segmenter settings."""

    # SAM 2.1 size: tiny, small, base_plus, large.
    model: str = "small"
    # Checkpoint path; "" = the default cache location for `model`; "random" = random
    # weights (masks are meaningless: tests and benchmarks only).
    checkpoint: str = ""
    # auto (cuda when available), cpu, cuda or cuda:N.
    device: str = "auto"
    # Side of the square image SAM 2 sees (the official models use 1024).
    image_size: int = 1024
    # bf16 autocast on CUDA (ignored on the CPU).
    bf16: bool = True
    # torch.compile the image encoder and the per-frame heads (CUDA).
    compile: bool = False
    # Memory bounds per object: the most recent frames (SAM 2's num_maskmem - 1 = 6 are
    # used by attention), prompted (conditioning) frames kept (the first stays, the
    # oldest re-prompt goes first) and
    # object pointers attended to (SAM 2 uses up to 16; at least 2, since pointer
    # distances are scaled by 1 / (max_object_pointers - 1)).
    max_conditioning_frames: int = 4
    max_object_pointers: int = 16
    # At most this many objects per SAM 2 call (memory attention, mask decoder, memory
    # encoder); 0 = auto: all objects in one call on CUDA, CPU_OBJECTS_PER_CALL on the
    # CPU, where smaller calls keep their keys and values in cache.
    objects_per_call: int = 0

    def validate(self) -> SegmenterConfig:
        if self.model not in MODEL_SIZES:
            raise ConfigError(f"model must be one of {', '.join(MODEL_SIZES)}, got {self.model!r}")
        if not (
            self.device in ("auto", "cpu", "cuda")
            or (self.device.startswith("cuda:") and self.device[5:].isdigit())
        ):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if not (
            isinstance(self.image_size, int)
            and 64 <= self.image_size <= MAX_IMAGE_SIZE
            and self.image_size % 64 == 0
        ):
            raise ConfigError(
                f"image_size must be a multiple of 64 in [64, {MAX_IMAGE_SIZE}], got"
                f" {self.image_size!r} (the official models use 1024)"
            )
        if not (
            isinstance(self.max_conditioning_frames, int) and self.max_conditioning_frames >= 1
        ):
            raise ConfigError("max_conditioning_frames must be an integer >= 1")
        if not (isinstance(self.max_object_pointers, int) and 2 <= self.max_object_pointers <= 64):
            # SAM 2 scales pointer distances by 1 / (max_object_pointers - 1): with 1 that
            # divides by zero, every memory-attention output becomes NaN and so does every
            # score (issue 11, defect 6).
            raise ConfigError(
                "max_object_pointers must be an integer in [2, 64],"
                f" got {self.max_object_pointers!r}"
            )
        if not (isinstance(self.objects_per_call, int) and 0 <= self.objects_per_call <= 1024):
            raise ConfigError("objects_per_call must be an integer in [0, 1024] (0: auto)")
        return self


MODEL_SIZES = ("tiny", "small", "base_plus", "large")
# objects_per_call's automatic value on the CPU (see BENCHMARKS.md, CPU section).
CPU_OBJECTS_PER_CALL = 4


@dataclass(frozen=True)
class EngineConfig:
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)

    def validate(self) -> EngineConfig:
        self.tracker.validate()
        self.segmenter.validate()
        return self


def _check_unit(name: str, value: Any) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}")


def replace_from_mapping(config: Any, values: Mapping[str, Any], where: str = "") -> Any:
    """A copy of a config dataclass with fields replaced from a (nested) mapping.

    Unknown keys raise ConfigError naming them, so a typo in a YAML file never passes
    silently. ``classes`` maps class ids to ClassThresholds fields.
    """
    fields = {f.name: f for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{where}{key}"
        if key not in fields:
            raise ConfigError(f"unknown setting '{path}' (known: {', '.join(sorted(fields))})")
        current = getattr(config, key)
        if key == "classes":
            if not isinstance(value, Mapping):
                raise ConfigError(f"'{path}' must map class ids to thresholds")
            classes = dict(current)
            for class_id, class_values in value.items():
                base = classes.get(str(class_id), config.default_class)
                classes[str(class_id)] = replace_from_mapping(
                    base, class_values, f"{path}.{class_id}."
                )
            changes[key] = classes
        elif dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"'{path}' must be a mapping")
            changes[key] = replace_from_mapping(current, value, f"{path}.")
        else:
            changes[key] = _coerce(path, current, value)
    return dataclasses.replace(config, **changes)


def _coerce(path: str, current: Any, value: Any) -> Any:
    """Convert a value to the type of the field's current value, or raise ConfigError."""
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"'{path}' must be true or false, got {value!r}")
    if isinstance(current, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"'{path}' must be an integer, got {value!r}")
    if isinstance(current, float):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"'{path}' must be a number, got {value!r}")
    if isinstance(current, str):
        if isinstance(value, str):
            return value
        raise ConfigError(f"'{path}' must be a string, got {value!r}")
    return value
