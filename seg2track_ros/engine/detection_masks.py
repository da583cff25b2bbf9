"""A segmenter that uses the detector's own masks instead of SAM 2.

For instance-segmentation detectors (Mask R-CNN, TrackR-CNN, YOLO-seg, ...), and for
evaluating the track manager alone: no model, no GPU. A prompted object's mask is the
detection's mask (or its filled box when the detector gives none: always so in
tracker_node, since vision_msgs/Detection2D carries no mask). Between detections
an object keeps its last mask ("coasting") while its visibility logit falls by
`logit_decay` per frame from `prompt_logit`, so the track manager marks it weak and
removes it when the detector stops finding it. Because it cannot propagate, the
tracker re-prompts every matched track (``prompts_every_match``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from seg2track_ros.engine.config import SegmenterConfig
from seg2track_ros.engine.segmenter import Segmenter, SegmentOutput
from seg2track_ros.engine.types import InvalidInputError


@dataclass
class _Object:
    mask: torch.Tensor  # (H, W) bool
    prompted_frame: int


class DetectionMaskSegmenter(Segmenter):
    prompts_every_match = True

    def __init__(
        self,
        *,
        prompt_logit: float = 10.0,
        logit_decay: float = 2.0,
        coast_quality: float = 0.5,
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.prompt_logit = float(prompt_logit)
        self.logit_decay = float(logit_decay)
        self.coast_quality = float(coast_quality)
        self._objects: dict[int, _Object] = {}
        self._frame = -1
        self._size: tuple[int, int] | None = None

    def start_frame(self, image: np.ndarray) -> None:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InvalidInputError(
                f"expected an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}"
            )
        self._frame += 1
        self._size = image.shape[:2]

    def propagate(self) -> SegmentOutput:
        height, width = self._require_size()
        ids = list(self._objects)
        if not ids:
            return SegmentOutput.empty(height, width, self.device)
        coasted = torch.tensor(
            [self._frame - self._objects[i].prompted_frame for i in ids], dtype=torch.float32
        )
        return SegmentOutput(
            object_ids=ids,
            masks=torch.stack([self._objects[i].mask for i in ids]),
            mask_scores=torch.full((len(ids),), self.coast_quality),
            object_score_logits=(self.prompt_logit - self.logit_decay * coasted).to(self.device),
        )

    def prompt(
        self, object_ids: Sequence[int], boxes: np.ndarray, masks: np.ndarray | None = None
    ) -> SegmentOutput:
        height, width = self._require_size()
        ids = [int(i) for i in object_ids]
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if len(ids) != len(boxes) or (masks is not None and len(masks) != len(ids)):
            raise InvalidInputError(f"{len(ids)} object ids for {len(boxes)} boxes / masks")
        if not ids:
            return SegmentOutput.empty(height, width, self.device)
        out = []
        for k, object_id in enumerate(ids):
            if masks is not None:
                mask = torch.from_numpy(np.asarray(masks[k], dtype=bool)).to(self.device)
                if tuple(mask.shape) != (height, width):
                    raise InvalidInputError(
                        f"detection mask {tuple(mask.shape)} for a {height}x{width} image"
                    )
            else:
                mask = _filled_box(boxes[k], height, width, self.device)
            self._objects[object_id] = _Object(mask, self._frame)
            out.append(mask)
        return SegmentOutput(
            object_ids=ids,
            masks=torch.stack(out),
            mask_scores=torch.ones(len(ids), device=self.device),
            object_score_logits=torch.full((len(ids),), self.prompt_logit, device=self.device),
        )

    def finish_frame(self, neutralise: Sequence[int] = ()) -> None:
        """Nothing to remember beyond the last masks."""

    def remove(self, object_ids: Sequence[int]) -> None:
        for object_id in object_ids:
            self._objects.pop(int(object_id), None)

    def reset(self) -> None:
        self._objects.clear()

    def memory_bytes(self) -> int:
        return sum(o.mask.numel() for o in self._objects.values())

    def new_stream(self) -> DetectionMaskSegmenter:
        """Another stream with the same settings (there is no model to share)."""
        return DetectionMaskSegmenter(
            prompt_logit=self.prompt_logit,
            logit_decay=self.logit_decay,
            coast_quality=self.coast_quality,
            device=self.device,
        )

    def _require_size(self) -> tuple[int, int]:
        if self._size is None:
            raise RuntimeError("start_frame() must be called before this")
        return self._size


def _filled_box(box: np.ndarray, height: int, width: int, device: torch.device) -> torch.Tensor:
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    mask = torch.zeros((height, width), dtype=torch.bool, device=device)
    mask[max(y0, 0) : max(min(y1, height), 0), max(x0, 0) : max(min(x1, width), 0)] = True
    return mask


def build_segmenter(config: SegmenterConfig | None = None) -> DetectionMaskSegmenter:
    """The factory registered as ``detection-masks`` (entry-point group
    ``seg2track_ros.segmenters``). It has no model: the SAM 2 settings in `config` do
    not apply, and masks stay on the CPU (there is nothing for a GPU to do)."""
    return DetectionMaskSegmenter()
