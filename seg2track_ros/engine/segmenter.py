"""The interface between the track manager and a segmenter (SAM 2, or a test double).

Per frame the tracker calls, in this order:

    segmenter.start_frame(image)                  # encode the image once
    out = segmenter.propagate()                   # every existing object on this frame
    out_new = segmenter.prompt(ids, boxes)        # new objects and re-prompted ones (optional)
    segmenter.finish_frame(neutralise=ids)        # write this frame into each object's memory

``prompt`` outputs the prompted objects on the same frame; for a re-prompted object its
output replaces the one ``propagate`` gave. ``finish_frame`` stores memory for every
object that has an output on this frame; objects in ``neutralise`` (occluded ones) get a
memory that says "not visible here", so they do not learn the occluder.

All tensors stay on the segmenter's device; the tracker decides when to copy to the host.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class SegmentOutput:
    """Outputs for K objects on the current frame, on the segmenter's device."""

    object_ids: list[int]
    masks: torch.Tensor  # (K, H, W) bool at the input image's resolution
    mask_scores: torch.Tensor  # (K,) float32 predicted IoU in [0, 1]
    object_score_logits: torch.Tensor  # (K,) float32 visibility logit (> 0: visible)

    @classmethod
    def empty(cls, height: int, width: int, device: torch.device | str = "cpu") -> SegmentOutput:
        return cls(
            object_ids=[],
            masks=torch.zeros((0, height, width), dtype=torch.bool, device=device),
            mask_scores=torch.zeros(0, dtype=torch.float32, device=device),
            object_score_logits=torch.zeros(0, dtype=torch.float32, device=device),
        )

    def __len__(self) -> int:
        return len(self.object_ids)


class Segmenter(ABC):
    """A per-frame, per-object segmenter with memory (see the module docstring)."""

    device: torch.device
    # True for segmenters with no propagation of their own (the detection-masks
    # segmenter): the tracker then re-prompts every matched track with its detection,
    # not only weak tracks matched to confident detections.
    prompts_every_match: bool = False

    @abstractmethod
    def start_frame(self, image: np.ndarray) -> None:
        """Begin a frame: an (H, W, 3) uint8 RGB image."""

    @abstractmethod
    def propagate(self) -> SegmentOutput:
        """Outputs for all objects the segmenter holds, on the current frame."""

    @abstractmethod
    def prompt(
        self,
        object_ids: Sequence[int],
        boxes: np.ndarray,
        masks: np.ndarray | None = None,
    ) -> SegmentOutput:
        """Prompt objects with boxes (K, 4) xyxy pixels on the current frame.

        Unknown ids start new objects; known ids are re-prompted. ``masks`` (K, H, W) are
        the detector's own masks where it has them (used by the detection-masks segmenter,
        ignored by SAM 2).
        """

    @abstractmethod
    def finish_frame(self, neutralise: Sequence[int] = ()) -> None:
        """Write the current frame into the memory of every object output on it."""

    @abstractmethod
    def remove(self, object_ids: Sequence[int]) -> None:
        """Forget objects and free their memory."""

    @abstractmethod
    def reset(self) -> None:
        """Forget all objects."""

    def memory_bytes(self) -> int:
        """Bytes held in stored per-object tensors (0 for stateless segmenters)."""
        return 0

    def new_stream(self) -> Segmenter | None:
        """A segmenter of the same kind for another stream (camera), holding no objects,
        that shares whatever this one can share (SAM 2: the model, loaded once); None
        when this segmenter cannot make one (the caller then builds another)."""
        return None

    def shares_model_with(self, other: Segmenter) -> bool:
        """True when this segmenter and ``other`` run one model whose calls can be
        batched over both streams (see sam2_stream.start_frames)."""
        return False
